/// \file
/// One async_map operation: cuts the inputs into chunks as it goes (sized from the work times
/// workers measure), keeps a window of chunks in flight, delivers results in input order or as
/// they come, and ends on the first failure, on cancellation or when the inputs run out.
/// Side: parent.
#include <corun/detail/map_engine.hpp>

#include <corun/detail/chunk_reply.hpp>

#include "base/demangle.hpp"
#include "front/chunk_sizer.hpp"
#include "front/front_end.hpp"
#include "front/in_order.hpp"
#include "front/map_failures.hpp"
#include "front/map_window.hpp"
#include "front/progress_bar.hpp"

#include <asio/dispatch.hpp>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <unordered_map>
#include <utility>

namespace corun::detail {

namespace {

class MapRun : public std::enable_shared_from_this<MapRun> {
 public:
  MapRun(std::shared_ptr<TaskService> service, std::shared_ptr<const TaskSpec> spec,
         MapSettings settings, std::unique_ptr<MapSource> source, std::unique_ptr<MapSink> sink)
      : service_(std::move(service)),
        spec_(std::move(spec)),
        settings_(settings),
        source_(std::move(source)),
        sink_(std::move(sink)),
        workers_(std::max<std::size_t>(service_->concurrency(), 1)),
        sizer_(settings_.chunk_size, settings_.max_bytes_in_flight, workers_),
        window_(settings_.max_tasks_active != 0 ? settings_.max_tasks_active
                                                : service_->max_tasks_active(),
                settings_.max_bytes_in_flight),
        total_(source_->size()) {
    task_options_.priority = settings_.priority;
    task_options_.retry = settings_.retry;
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

  void cancel(CancelMode mode) {
    if (finished_) return;
    stop_.note_cancelled();
    stop(mode);
    maybe_finish();
  }

 private:
  struct Chunk {
    std::size_t first = 0;
    std::size_t count = 0;
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

  void fill() {
    while (!stop_.stopping() && !exhausted_ && window_.open()) {
      if (sizer_.awaiting_probes(active_)) break;
      std::string argument;
      const std::size_t count = source_->encode_next(sizer_.next_size(total_, next_index_),
                                                     sizer_.chunk_bytes(), argument);
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

  /// Sends a chunk; `delay`: after that wait (an input that threw, run again after its backoff).
  void submit(Chunk chunk, std::string argument,
              std::chrono::milliseconds delay = std::chrono::milliseconds{0}) {
    ++active_;
    const std::size_t cost = sizer_.cost_of(chunk.count, argument.size());
    window_.enter(cost);
    std::string sent = argument;
    auto done = std::make_unique<ChunkDone>(shared_from_this(), chunk, std::move(argument), cost);
    ChunkDone* raw = done.get();
    TaskOptions delayed;
    if (delay.count() > 0) {
      delayed = task_options_;
      delayed.delay = delay;
    }
    raw->id =
        service_->submit(spec_, Slice{chunk.first, chunk.first + chunk.count}, std::move(sent),
                         delay.count() > 0 ? delayed : task_options_, std::move(done));
    outstanding_.add(raw->id);
  }

  void on_result(const ChunkDone& done, TaskResult&& result) {
    const Chunk chunk = done.chunk;
    --active_;
    outstanding_.remove(done.id);
    window_.remove(done.cost);
    if (result.error) {
      window_.leave();
      if (result.task_error) {
        failed(chunk.count, std::move(*result.task_error));
        skip(chunk);
      } else if (auto failure = service_failure(stop_, result.error, "map")) {
        fatal(std::move(failure));
      }
    } else if (!stop_.stopping()) {
      on_reply(done, result);
    } else {
      window_.leave();
    }
    if (bar_) bar_->update(done_items_ + failures_.inputs(), failures_.inputs());
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
      window_.leave();
      return fatal(std::current_exception());
    }
    sizer_.learn(end.done, results.size(), result.record.rank, result.record.pid,
                 result.record.finished - result.record.started);
    const std::size_t results_bytes = results.size();
    if (!input_runs_.empty())  // inputs that threw before and have now been mapped
      for (std::size_t i = chunk.first; i < chunk.first + end.done; ++i) input_runs_.erase(i);
    if (end.done != 0) {
      result.payload.resize(results_bytes);
      accept(Chunk{chunk.first, end.done}, std::move(result.payload));
    } else {
      window_.leave();
    }
    std::size_t next = chunk.first + end.done;
    if (end.stop == ChunkStop::input_failed) {
      const std::string_view input =
          std::string_view(done.argument).substr(end.failed_from, end.consumed - end.failed_from);
      TaskError error =
          MapFailures::of_input(spec_->worker_name, result.record, next, std::move(end));
      if (!retry_input(next, error, input)) {
        failed(1, std::move(error));
        skip(Chunk{next, 1});
      }
      ++next;
    } else if (end.stop == ChunkStop::result_budget) {
      sizer_.limit_replies(results_bytes);
    }
    const std::size_t end_of_chunk = chunk.first + chunk.count;
    if (next < end_of_chunk && !stop_.stopping())
      submit(Chunk{next, end_of_chunk - next}, done.argument.substr(end.consumed));
  }

  /// Input `index` threw with `error`: runs it again, alone and after its backoff, when the
  /// map's RetryPolicy says so (true); else sets error.attempts to the runs it had.
  bool retry_input(std::size_t index, TaskError& error, std::string_view input) {
    const auto it = input_runs_.find(index);
    error.attempts = (it == input_runs_.end() ? 0 : it->second) + 1;
    if (!settings_.retry || stop_.stopping() || !settings_.retry->should_retry(error)) {
      if (it != input_runs_.end()) input_runs_.erase(it);
      return false;
    }
    input_runs_[index] = error.attempts;
    submit(Chunk{index, 1}, std::string(input), settings_.retry->backoff.delay(error.attempts));
    return true;
  }

  void failed(std::size_t inputs, TaskError error) {
    failures_.add(inputs, std::move(error));
    if (settings_.on_error == ErrorPolicy::fail_fast) stop(CancelMode::drain);
  }

  /// Delivers a result now (unordered) or once the chunks before it arrived (ordered). A held
  /// result still counts against the window, in chunks and in bytes, so what is buffered is
  /// bounded by what may be in flight.
  void accept(Chunk chunk, std::string results) {
    if (!settings_.ordered) return deliver(chunk, results);
    window_.add(results.size());
    order_.hold(chunk.first, chunk.count, std::move(results));
    release();
  }

  /// A failed chunk's inputs get no result: ordered delivery goes on after them.
  void skip(Chunk chunk) {
    if (!settings_.ordered) return;
    order_.skip(chunk.first, chunk.count);
    release();
  }

  /// Once stopping, what is released is only dropped from the window.
  void release() {
    order_.release([this](std::size_t first, std::size_t count, std::string results) {
      window_.remove(results.size());
      if (!stop_.stopping())
        deliver(Chunk{first, count}, results);
      else
        window_.leave();
    });
  }

  void deliver(Chunk chunk, std::string_view results) {
    window_.leave();
    if (stop_.stopping()) return;
    try {
      sink_->deliver(chunk.first, chunk.count, results);
      done_items_ += chunk.count;
    } catch (...) {
      fatal(std::current_exception());
    }
  }

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
      bar_->update(done_items_ + failures_.inputs(), failures_.inputs());
      bar_->finish();
      bar_.reset();
    }
    std::exception_ptr error = stop_.error();
    if (!error) error = failures_.take_error();
    auto sink = std::move(sink_);
    sink->complete(error);
  }

  std::shared_ptr<TaskService> service_;
  std::shared_ptr<const TaskSpec> spec_;
  MapSettings settings_;
  std::unique_ptr<MapSource> source_;
  std::unique_ptr<MapSink> sink_;
  std::size_t workers_ = 1;
  ChunkSizer sizer_;
  MapWindow window_;
  std::optional<std::size_t> total_;
  std::size_t next_index_ = 0;  ///< the first input of the next chunk from the source
  std::size_t active_ = 0;      ///< chunks at the service
  std::size_t done_items_ = 0;  ///< delivered
  TaskOptions task_options_;    // of every chunk
  /// Runs so far of the inputs that threw and are being run again (MapOptions::retry).
  std::unordered_map<std::size_t, int> input_runs_;
  OutstandingTasks outstanding_;
  InOrder<std::string> order_;  ///< ordered: results waiting for the chunks before them
  MapFailures failures_;
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
