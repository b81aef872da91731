/// \file
/// One async_map operation: cuts the inputs into chunks as it goes (sized from the work times
/// workers measure), keeps a window of chunks in flight, delivers results in input order or as
/// they come, and ends on the first failure, on cancellation or when the inputs run out.
#include <corun/detail/map_engine.hpp>

#include "demangle.hpp"
#include "front_end.hpp"
#include "progress_bar.hpp"

#include <asio/dispatch.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <unordered_set>
#include <utility>

namespace corun::detail {

ItemFailure::ItemFailure(std::size_t index, const std::type_info& type, const char* what)
    : std::runtime_error(what), index_(index), type_name_(demangle(type.name())) {}

const char* register_function(const std::type_info& type, TaskInvoker invoker) {
  const std::string name = demangle(type.name());
  register_worker(name.c_str(), type, invoker);
  return registered_name(type);
}

namespace {

/// A chunk should keep its worker busy this long, so that the ~3 us a task costs in messages
/// and wake-ups is well under 1% of it...
constexpr double kTargetChunkNs = 2e6;
/// ...but hold no more inputs than this, so that messages stay small.
constexpr std::size_t kMaxChunkBytes = std::size_t{16} << 20;

class MapRun : public std::enable_shared_from_this<MapRun> {
 public:
  MapRun(std::shared_ptr<TaskService> service, std::shared_ptr<const TaskSpec> spec,
         MapSettings settings, std::unique_ptr<MapSource> source, std::unique_ptr<MapSink> sink)
      : service_(std::move(service)),
        spec_(std::move(spec)),
        settings_(settings),
        source_(std::move(source)),
        sink_(std::move(sink)) {
    window_ =
        settings_.max_tasks_active != 0 ? settings_.max_tasks_active : service_->max_tasks_active();
    window_ = std::max<std::size_t>(window_, 1);
    workers_ = std::max<std::size_t>(service_->concurrency(), 1);
    total_ = source_->size();
  }

  void bind_cancellation() {
    sink_->bind_cancellation(
        forward_cancellation(weak_from_this(), service_->executor(), settings_.on_cancel));
  }

  void start() {
    if (finished_) return;  // cancelled before it started
    bar_ = TerminalProgress::open(settings_.progress_bar, service_->executor(), total_, "items");
    fill();
  }

 private:
  struct Chunk {
    std::size_t first = 0;
    std::size_t count = 0;
  };
  /// A result waiting for the chunks before it (ordered delivery).
  struct Waiting {
    std::size_t count = 0;
    std::string payload;
  };

  class ChunkDone final : public TaskCompletion {
   public:
    ChunkDone(std::shared_ptr<MapRun> run, Chunk chunk) : run_(std::move(run)), chunk_(chunk) {}
    void complete(TaskResult&& result) override { run_->on_result(id, chunk_, std::move(result)); }
    std::uint64_t id = 0;

   private:
    std::shared_ptr<MapRun> run_;
    Chunk chunk_;
  };

  /// The next chunk's size: fixed, or enough inputs for kTargetChunkNs of work at the cost per
  /// input measured so far, but never so many that fewer than about two chunks per worker
  /// remain (the last chunks shrink, so workers finish together).
  std::size_t next_chunk_size() const {
    if (settings_.chunk_size != 0) return settings_.chunk_size;
    std::size_t size = 1;  // the first chunks are probes: one input each
    if (ns_per_item_ > 0)
      size = static_cast<std::size_t>(std::clamp(kTargetChunkNs / ns_per_item_, 1.0, 1e9));
    if (total_) {
      const std::size_t remaining = *total_ - std::min(*total_, next_index_);
      size = std::min(size, std::max<std::size_t>(1, remaining / (2 * workers_)));
    }
    return size;
  }

  void fill() {
    while (!stop_.stopping() && !exhausted_ && in_window_ < window_) {
      // Until a time came back, keep one probe per worker; more would be guesses.
      if (settings_.chunk_size == 0 && measured_ == 0 && active_ >= workers_) break;
      std::string argument;
      const std::size_t count = source_->encode_next(next_chunk_size(), kMaxChunkBytes, argument);
      if (count == 0) {
        exhausted_ = true;
        if (!total_) {
          total_ = next_index_;
          if (bar_) bar_->set_total(total_);
        }
        break;
      }
      const Chunk chunk{next_index_, count};
      next_index_ += count;
      ++in_window_;
      ++active_;
      auto done = std::make_unique<ChunkDone>(shared_from_this(), chunk);
      ChunkDone* raw = done.get();
      raw->id = service_->submit(spec_, Slice{chunk.first, chunk.first + chunk.count},
                                 std::move(argument), std::move(done));
      outstanding_.add(raw->id);
    }
    maybe_finish();
  }

  void on_result(std::uint64_t id, Chunk chunk, TaskResult&& result) {
    --active_;
    outstanding_.remove(id);
    if (result.error) {
      --in_window_;
      if (result.task_error) {
        failed_items_ += chunk.count;
        failures_.push_back(std::move(*result.task_error));
        if (settings_.on_error == ErrorPolicy::fail_fast) stop(CancelMode::drain);
        skip(chunk);
      } else if (!stop_.stopping() || !is_aborted(result.error)) {
        fatal(is_aborted(result.error)
                  ? std::make_exception_ptr(Error(
                        errc::pool_closed, "corun: the process pool was terminated during the map"))
                  : result.error);
      }
    } else if (!stop_.stopping()) {
      learn(chunk, result.record);
      accept(chunk, std::move(result.payload));
    } else {
      --in_window_;
    }
    if (bar_) bar_->update(done_items_ + failed_items_, failed_items_);
    fill();
  }

  /// Updates the cost per input from the time the worker spent on the chunk.
  void learn(Chunk chunk, const TaskRecord& record) {
    if (record.finished <= record.started) return;
    const double ns =
        std::chrono::duration<double, std::nano>(record.finished - record.started).count() /
        static_cast<double>(chunk.count);
    ns_per_item_ = measured_ == 0 ? ns : 0.5 * ns_per_item_ + 0.5 * ns;
    ++measured_;
  }

  /// Delivers a result now (unordered, or it is the next in order) or keeps it until the
  /// chunks before it arrived. A kept result still counts against the window, so what is
  /// buffered is bounded by what may be in flight.
  void accept(Chunk chunk, std::string payload) {
    if (!settings_.ordered || chunk.first == next_delivery_) {
      deliver(chunk, payload);
      if (settings_.ordered) deliver_waiting();
      return;
    }
    waiting_.emplace(chunk.first, Waiting{chunk.count, std::move(payload)});
  }

  /// A failed chunk's inputs get no result: ordered delivery goes on after them.
  void skip(Chunk chunk) {
    if (!settings_.ordered) return;
    skipped_.emplace(chunk.first, chunk.count);
    deliver_waiting();
  }

  void deliver_waiting() {
    for (;;) {
      if (auto it = waiting_.find(next_delivery_); it != waiting_.end()) {
        Waiting w = std::move(it->second);
        waiting_.erase(it);
        if (!stop_.stopping())
          deliver(Chunk{next_delivery_, w.count}, w.payload);
        else {
          --in_window_;
          next_delivery_ += w.count;
        }
      } else if (auto s = skipped_.find(next_delivery_); s != skipped_.end()) {
        next_delivery_ += s->second;
        skipped_.erase(s);
      } else {
        return;
      }
    }
  }

  void deliver(Chunk chunk, std::string_view payload) {
    --in_window_;
    next_delivery_ = chunk.first + chunk.count;
    if (stop_.stopping()) return;
    try {
      sink_->deliver(chunk.first, chunk.count, payload);
      done_items_ += chunk.count;
    } catch (...) {
      fatal(std::current_exception());
    }
  }

 public:
  void cancel(CancelMode mode) {
    if (finished_) return;
    stop_.note_cancelled();
    stop(mode);
    maybe_finish();
  }

 private:
  void fatal(std::exception_ptr e) {
    stop_.note_fatal(std::move(e));
    stop(CancelMode::drain);
  }

  void stop(CancelMode mode) {
    if (stop_.begin(mode)) outstanding_.cancel_all(*service_, mode);
  }

  void maybe_finish() {
    if (finished_ || active_ != 0) return;
    if (!stop_.stopping() && !exhausted_) return;
    finished_ = true;
    if (bar_) {
      bar_->update(done_items_ + failed_items_, failed_items_);
      bar_->finish();
      bar_.reset();
    }
    std::exception_ptr error = stop_.error();
    if (!error && !failures_.empty())
      error = std::make_exception_ptr(RunError(std::move(failures_)));
    auto sink = std::move(sink_);
    sink->complete(error);
  }

  std::shared_ptr<TaskService> service_;
  std::shared_ptr<const TaskSpec> spec_;
  MapSettings settings_;
  std::unique_ptr<MapSource> source_;
  std::unique_ptr<MapSink> sink_;
  std::size_t window_ = 1;
  std::size_t workers_ = 1;
  std::optional<std::size_t> total_;
  std::size_t next_index_ = 0;     ///< the first input of the next chunk
  std::size_t next_delivery_ = 0;  ///< the first input whose result is not delivered yet
  std::size_t in_window_ = 0;      ///< chunks in flight or waiting for delivery
  std::size_t active_ = 0;         ///< chunks at the service
  std::size_t done_items_ = 0;     ///< delivered
  std::size_t failed_items_ = 0;   ///< in chunks that failed
  std::size_t measured_ = 0;
  double ns_per_item_ = 0;
  OutstandingTasks outstanding_;
  std::map<std::size_t, Waiting> waiting_;
  std::map<std::size_t, std::size_t> skipped_;
  std::vector<TaskError> failures_;
  RunStop stop_;
  std::shared_ptr<TerminalProgress> bar_;
  bool exhausted_ = false, finished_ = false;
};

}  // namespace

void start_map(const std::shared_ptr<TaskService>& service, std::shared_ptr<const TaskSpec> spec,
               MapSettings settings, std::unique_ptr<MapSource> source,
               std::unique_ptr<MapSink> sink) {
  auto run = std::make_shared<MapRun>(service, std::move(spec), settings, std::move(source),
                                      std::move(sink));
  run->bind_cancellation();
  asio::dispatch(service->executor(), [run] { run->start(); });
}

}  // namespace corun::detail
