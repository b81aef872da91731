/// \file
/// One async_map operation: cuts the inputs into chunks as it goes (sized from the work times
/// workers measure), keeps a window of chunks in flight, delivers results in input order or as
/// they come, and ends on the first failure, on cancellation or when the inputs run out.
#include <corun/detail/map_engine.hpp>

#include <corun/detail/chunk_reply.hpp>

#include "base/demangle.hpp"
#include "front/front_end.hpp"
#include "front/progress_bar.hpp"

#include <asio/dispatch.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <unordered_set>
#include <utility>

namespace corun::detail {

namespace {

/// A chunk should keep its worker busy this long, so that the ~3 us a task costs in messages
/// and wake-ups is well under 1% of it...
constexpr double kTargetChunkNs = 2e6;
/// ...but hold no more inputs, nor results, than this, so that messages stay small.
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
    // Several chunks per worker fit in the byte window (each costs about three times its
    // bytes, see cost_of), so that each worker has its next one waiting.
    chunk_bytes_ =
        std::clamp<std::size_t>(settings_.max_bytes_in_flight / (8 * workers_), 1, kMaxChunkBytes);
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
    std::string results;
  };

  class ChunkDone final : public TaskCompletion {
   public:
    ChunkDone(std::shared_ptr<MapRun> run, Chunk of, std::string inputs, std::size_t weight)
        : chunk(of), argument(std::move(inputs)), cost(weight), run_(std::move(run)) {}
    void complete(TaskResult&& result) override { run_->on_result(*this, std::move(result)); }
    std::uint64_t id = 0;
    const Chunk chunk;
    /// The chunk's inputs, kept to send those it did not get to again.
    const std::string argument;
    const std::size_t cost;  ///< what it counts against max_bytes_in_flight

   private:
    std::shared_ptr<MapRun> run_;
  };

  /// The next chunk's size: fixed, or enough inputs for kTargetChunkNs of work at the cost per
  /// input measured so far, with results of at most chunk_bytes_, but never so many that fewer
  /// than about two chunks per worker remain (the last chunks shrink, so workers finish
  /// together).
  std::size_t next_chunk_size() const {
    if (settings_.chunk_size != 0) return settings_.chunk_size;
    std::size_t size = 1;  // the first chunks are probes: one input each
    if (ns_per_item_ > 0)
      size = static_cast<std::size_t>(std::clamp(kTargetChunkNs / ns_per_item_, 1.0, 1e9));
    if (result_bytes_per_item_ > 0)
      size = std::min(size, static_cast<std::size_t>(std::max(
                                1.0, static_cast<double>(result_cap()) / result_bytes_per_item_)));
    if (total_) {
      const std::size_t remaining = *total_ - std::min(*total_, next_index_);
      size = std::min(size, std::max<std::size_t>(1, remaining / (2 * workers_)));
    }
    return size;
  }

  /// The results one chunk should bring back at most.
  std::size_t result_cap() const noexcept { return std::min(chunk_bytes_, reply_limit_); }

  /// What a chunk is expected to hold at once in this process: its inputs three times (kept
  /// here, in the pool's task, in the frame being written to the worker) and its results twice
  /// (the reply being read, the payload delivered).
  std::size_t cost_of(std::size_t count, std::size_t argument_bytes) const noexcept {
    return 3 * argument_bytes +
           2 * static_cast<std::size_t>(result_bytes_per_item_ * static_cast<double>(count));
  }

  /// Whether another chunk may go out: the window has room in chunks and in bytes (one chunk is
  /// always allowed, so that a single large input still runs).
  bool window_open() const noexcept {
    return in_window_ < window_ &&
           (in_window_ == 0 || bytes_in_window_ < settings_.max_bytes_in_flight);
  }

  void fill() {
    while (!stop_.stopping() && !exhausted_ && window_open()) {
      // Until a time came back, keep one probe per worker; more would be guesses.
      if (settings_.chunk_size == 0 && measured_ == 0 && active_ >= workers_) break;
      std::string argument;
      const std::size_t count = source_->encode_next(next_chunk_size(), chunk_bytes_, argument);
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
      submit(chunk, std::move(argument));
    }
    maybe_finish();
  }

  void submit(Chunk chunk, std::string argument) {
    ++in_window_;
    ++active_;
    const std::size_t cost = cost_of(chunk.count, argument.size());
    bytes_in_window_ += cost;
    std::string sent = argument;
    auto done = std::make_unique<ChunkDone>(shared_from_this(), chunk, std::move(argument), cost);
    ChunkDone* raw = done.get();
    raw->id = service_->submit(spec_, Slice{chunk.first, chunk.first + chunk.count},
                               std::move(sent), std::move(done));
    outstanding_.add(raw->id);
  }

  void on_result(const ChunkDone& done, TaskResult&& result) {
    const Chunk chunk = done.chunk;
    --active_;
    outstanding_.remove(done.id);
    bytes_in_window_ -= done.cost;
    if (result.error) {
      --in_window_;
      if (result.task_error) {
        failed(chunk.count, std::move(*result.task_error));
        skip(chunk);
      } else if (!stop_.stopping() || !is_aborted(result.error)) {
        fatal(is_aborted(result.error)
                  ? std::make_exception_ptr(Error(
                        errc::pool_closed, "corun: the process pool was terminated during the map"))
                  : result.error);
      }
    } else if (!stop_.stopping()) {
      on_reply(done, result);
    } else {
      --in_window_;
    }
    if (bar_) bar_->update(done_items_ + failed_items_, failed_items_);
    fill();
  }

  /// A chunk's reply: its results, maybe for only the first inputs; the failed input, if one
  /// failed; the rest of the inputs go out again as a chunk of their own.
  void on_reply(const ChunkDone& done, TaskResult& result) {
    const Chunk chunk = done.chunk;
    ChunkEnd end;
    std::string_view results;
    try {
      results = split_chunk_reply(result.payload, end);
      if (end.done > chunk.count || end.consumed > done.argument.size() ||
          (end.stop == ChunkStop::complete) != (end.done == chunk.count) ||
          (end.stop == ChunkStop::result_budget && end.done == 0))
        throw std::invalid_argument("corun map reply: " + std::to_string(end.done) + " of " +
                                    std::to_string(chunk.count) + " inputs done, " +
                                    std::to_string(end.consumed) + " bytes consumed");
    } catch (...) {
      --in_window_;
      return fatal(std::current_exception());
    }
    learn(end, results.size(), result.record);
    const std::size_t results_bytes = results.size();
    if (end.done != 0) {
      result.payload.resize(results_bytes);
      accept(Chunk{chunk.first, end.done}, std::move(result.payload));
    } else {
      --in_window_;
    }
    std::size_t next = chunk.first + end.done;
    if (end.stop == ChunkStop::input_failed) {
      failed(1, failure_of(result.record, next, std::move(end)));
      skip(Chunk{next, 1});
      ++next;
    } else if (end.stop == ChunkStop::result_budget) {
      // The worker's max_result_bytes: later chunks are sized to stay below it.
      reply_limit_ = std::min(reply_limit_, std::max<std::size_t>(results_bytes, 1));
    }
    const std::size_t end_of_chunk = chunk.first + chunk.count;
    if (next < end_of_chunk && !stop_.stopping())
      submit(Chunk{next, end_of_chunk - next}, done.argument.substr(end.consumed));
  }

  /// The TaskError of input `index`, which threw in the worker.
  TaskError failure_of(const TaskRecord& record, std::size_t index, ChunkEnd end) const {
    TaskError error;
    error.kind = TaskErrorKind::exception;
    error.worker = spec_->worker_name;
    error.slice = Slice{index, index + 1};
    error.pid = record.pid;
    error.exception_type = std::move(end.failure_type);
    error.message = "input " + std::to_string(index) + ": " + end.failure_message;
    error.attempts = std::max(record.attempts, 1);
    error.rank = record.rank;
    return error;
  }

  void failed(std::size_t inputs, TaskError error) {
    failed_items_ += inputs;
    failures_.push_back(std::move(error));
    if (settings_.on_error == ErrorPolicy::fail_fast) stop(CancelMode::drain);
  }

  /// Updates the cost per input from the time the worker spent on the chunk, and the bytes of
  /// a result from those it sent.
  void learn(const ChunkEnd& end, std::size_t results_bytes, const TaskRecord& record) {
    if (end.done == 0) return;
    const double done = static_cast<double>(end.done);
    const double bytes = static_cast<double>(results_bytes) / done;
    result_bytes_per_item_ = replies_ == 0 ? bytes : 0.5 * result_bytes_per_item_ + 0.5 * bytes;
    ++replies_;
    // A process's first chunk of the map also decoded the params and made the state: a fixed
    // cost that, counted per input, would cut the next chunks down to one input each.
    if (warmed_.insert({record.rank, record.pid}).second) return;
    if (record.finished > record.started) {
      const double ns =
          std::chrono::duration<double, std::nano>(record.finished - record.started).count() / done;
      ns_per_item_ = measured_ == 0 ? ns : 0.5 * ns_per_item_ + 0.5 * ns;
    }
    ++measured_;
  }

  /// Delivers a result now (unordered, or it is the next in order) or keeps it until the
  /// chunks before it arrived. A kept result still counts against the window, in chunks and in
  /// bytes, so what is buffered is bounded by what may be in flight.
  void accept(Chunk chunk, std::string results) {
    if (!settings_.ordered || chunk.first == next_delivery_) {
      deliver(chunk, results);
      if (settings_.ordered) deliver_waiting();
      return;
    }
    bytes_in_window_ += results.size();
    waiting_.emplace(chunk.first, Waiting{chunk.count, std::move(results)});
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
        bytes_in_window_ -= w.results.size();
        if (!stop_.stopping())
          deliver(Chunk{next_delivery_, w.count}, w.results);
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

  void deliver(Chunk chunk, std::string_view results) {
    --in_window_;
    next_delivery_ = chunk.first + chunk.count;
    if (stop_.stopping()) return;
    try {
      sink_->deliver(chunk.first, chunk.count, results);
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
    if (!error && !failures_.empty()) {
      // By input, whatever order the chunks came back in.
      std::stable_sort(
          failures_.begin(), failures_.end(),
          [](const TaskError& a, const TaskError& b) { return a.slice.start < b.slice.start; });
      error = std::make_exception_ptr(RunError(std::move(failures_)));
    }
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
  std::size_t chunk_bytes_ = kMaxChunkBytes;  ///< inputs, and results, one chunk may hold
  std::size_t reply_limit_ = SIZE_MAX;        ///< the most a worker sent when it stopped early
  std::optional<std::size_t> total_;
  std::size_t next_index_ = 0;       ///< the first input of the next chunk from the source
  std::size_t next_delivery_ = 0;    ///< the first input whose result is not delivered yet
  std::size_t in_window_ = 0;        ///< chunks in flight or waiting for delivery
  std::size_t bytes_in_window_ = 0;  ///< their costs, and the bytes of the waiting results
  std::size_t active_ = 0;           ///< chunks at the service
  std::size_t done_items_ = 0;       ///< delivered
  std::size_t failed_items_ = 0;     ///< inputs that failed, alone or with their chunk
  std::size_t measured_ = 0;
  double ns_per_item_ = 0;
  double result_bytes_per_item_ = 0;
  std::size_t replies_ = 0;                 ///< replies with results, for result_bytes_per_item_
  std::set<std::pair<int, pid_t>> warmed_;  ///< (rank, pid) of the processes that ran a chunk
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
  if (settings.max_bytes_in_flight == 0)
    throw std::invalid_argument(
        "corun::MapOptions::max_bytes_in_flight = 0: must be at least 1 (64 MiB by default)");
  auto run = std::make_shared<MapRun>(service, std::move(spec), settings, std::move(source),
                                      std::move(sink));
  run->bind_cancellation();
  asio::dispatch(service->executor(), [run] { run->start(); });
}

}  // namespace corun::detail
