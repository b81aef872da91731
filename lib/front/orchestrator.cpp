/// \file
/// WorkerOrchestrator: one run's slices, backpressure, callbacks, failures and cancellation.
/// Side: parent.
#include <corun/orchestrator.hpp>

#include <corun/cpu_monitor.hpp>

#include "front/front_end.hpp"
#include "front/in_order.hpp"
#include "front/process_records.hpp"
#include "front/progress_bar.hpp"
#include "front/slice_queue.hpp"

#include <asio/dispatch.hpp>

#include <stdexcept>

namespace corun {

namespace detail {

namespace {

class RunState : public std::enable_shared_from_this<RunState> {
 public:
  RunState(std::shared_ptr<TaskService> service, std::vector<WorkerRef> workers,
           OrchestratorOptions options, std::shared_ptr<RunProgress> progress,
           std::unique_ptr<RunCompletion> done)
      : service_(std::move(service)),
        workers_(std::move(workers)),
        options_(std::move(options)),
        progress_(std::move(progress)),
        done_(std::move(done)),
        queue_(slice_counts(workers_)),
        order_(options_.ordered ? workers_.size() : 0),
        records_(report_.processes) {
    window_ =
        options_.max_tasks_active != 0 ? options_.max_tasks_active : service_->max_tasks_active();
    task_options_.priority = options_.priority;
    if (options_.retry) task_options_.retry = std::make_shared<const RetryPolicy>(*options_.retry);
    progress_->total = queue_.total();
  }

  void start() {
    if (started_) return;  // cancelled before it started
    started_ = true;
    if (options_.monitor_cpu_usage) {
      monitor_ = std::make_unique<CpuMonitor>(service_->executor(), options_.sample_interval);
      monitor_->start();
    }
    report_.started = std::chrono::steady_clock::now();
    report_.started_wall = std::chrono::system_clock::now();
    bar_ = TerminalProgress::open(options_.progress_bar, service_->executor(),
                                  progress_->total.load(), "slices");
    fill();
  }

  void on_result(std::size_t worker, std::uint64_t id, std::size_t index, Slice slice,
                 TaskResult&& result) {
    --active_;
    outstanding_.remove(id);
    result.record.worker_index = worker;
    records_.account(result.record);
    bool deliverable = false;
    if (result.error) {
      if (result.task_error) {
        ++report_.tasks_failed;
        ++progress_->failed;
        report_.failures.push_back(std::move(*result.task_error));
        if (options_.on_error == ErrorPolicy::fail_fast) stop(CancelMode::drain);
      } else if (auto failure = service_failure(stop_, result.error, "run")) {
        fatal(std::move(failure));
      }
    } else {
      deliverable = !stop_.stopping();
    }
    if (options_.ordered) {
      if (!stop_.stopping()) arrive(worker, index, slice, deliverable, std::move(result.payload));
    } else if (deliverable) {
      deliver(worker, result.payload, slice);
    }
    if (options_.record_tasks) report_.tasks.push_back(std::move(result.record));
    if (bar_) bar_->update(progress_->done + progress_->failed, progress_->failed);
    fill();
  }

 private:
  class TaskDone final : public TaskCompletion {
   public:
    TaskDone(std::shared_ptr<RunState> run, std::size_t worker, std::size_t index, Slice slice)
        : run_(std::move(run)), worker_(worker), index_(index), slice_(slice) {}
    void complete(TaskResult&& result) override {
      run_->on_result(worker_, id, index_, slice_, std::move(result));
    }
    std::uint64_t id = 0;

   private:
    std::shared_ptr<RunState> run_;
    std::size_t worker_;
    std::size_t index_;  // of the slice in its worker's iterator
    Slice slice_;
  };

  /// A result of an ordered run that finished before the ones ahead of it.
  struct Held {
    Slice slice;
    std::string payload;
  };

  void deliver(std::size_t worker, const std::string& payload, const Slice& slice) {
    try {
      RunAccess::deliver(workers_[worker], payload, slice);
      ++report_.tasks_done;
      ++progress_->done;
    } catch (...) {
      fatal(std::current_exception());
    }
  }

  /// Ordered runs: holds the result of slice `index` until the ones before it were delivered.
  /// A failed slice is skipped; stop() clears every order, which ends the release.
  void arrive(std::size_t worker, std::size_t index, Slice slice, bool deliverable,
              std::string payload) {
    InOrder<Held>& order = order_[worker];
    if (deliverable)
      order.hold(index, 1, Held{slice, std::move(payload)});
    else
      order.skip(index, 1);
    order.release(
        [&](std::size_t, std::size_t, Held due) { deliver(worker, due.payload, due.slice); });
  }

  /// Results held back in order_, which count against the window like those in flight.
  std::size_t held() const noexcept {
    std::size_t held = 0;
    for (const InOrder<Held>& order : order_) held += order.held();
    return held;
  }

  static std::vector<std::size_t> slice_counts(const std::vector<WorkerRef>& workers) {
    std::vector<std::size_t> counts;
    for (const auto& w : workers) counts.push_back(w.data_iterator().slice_count());
    return counts;
  }

  void fill() {
    while (!stop_.stopping() && active_ + held() < window_) {
      const std::optional<SliceQueue::Next> next = queue_.pop();
      if (!next) break;
      const auto& spec = RunAccess::spec(workers_[next->worker]);
      const Slice slice = spec->iterator.slice(next->index);
      auto done = std::make_unique<TaskDone>(shared_from_this(), next->worker, next->index, slice);
      TaskDone* raw = done.get();
      ++active_;
      raw->id = service_->submit(spec, slice, {}, task_options_, std::move(done));
      outstanding_.add(raw->id);
    }
    maybe_finish();
  }

  // Public for start_run and forward_cancellation; the rest below is private.
 public:
  void bind_cancellation() {
    done_->bind_cancellation(
        forward_cancellation(weak_from_this(), service_->executor(), options_.on_cancel));
  }

  void cancel(CancelMode mode) {
    if (finished_) {
      return;
    }
    if (!started_) {  // cancelled before start(): complete without dispatching anything
      started_ = true;
      stop_.note_cancelled();
      stop_.begin(mode);
      maybe_finish();
      return;
    }
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
    if (!stop_.begin(mode)) return;
    // Held results are never delivered now.
    for (InOrder<Held>& order : order_) order.clear();
    outstanding_.cancel_all(*service_, mode);
  }

  void maybe_finish() {
    if (finished_ || active_ != 0) return;
    if (!stop_.stopping() && !queue_.empty()) return;
    finished_ = true;
    const auto end = std::chrono::steady_clock::now();
    report_.wall_time = end - report_.started;
    records_.add_timeline(*service_, report_.started, end);
    if (bar_) {
      bar_->update(progress_->done + progress_->failed, progress_->failed);
      bar_->finish();
      bar_.reset();
    }
    if (monitor_) {
      monitor_->stop();
      report_.cpu = monitor_->take_series();
      monitor_.reset();
    }
    std::exception_ptr error = stop_.error();
    if (!error && options_.on_error == ErrorPolicy::fail_fast && !report_.failures.empty())
      error = std::make_exception_ptr(RunError(report_.failures));
    auto done = std::move(done_);
    done->complete(error, std::move(report_));
  }

  std::shared_ptr<TaskService> service_;
  std::vector<WorkerRef> workers_;
  OrchestratorOptions options_;
  TaskOptions task_options_;  // of every task of the run
  std::shared_ptr<RunProgress> progress_;
  std::unique_ptr<RunCompletion> done_;
  SliceQueue queue_;
  std::vector<InOrder<Held>> order_;  // per worker object, when ordered
  std::size_t window_ = 1;
  std::size_t active_ = 0;
  OutstandingTasks outstanding_;
  RunStop stop_;
  bool finished_ = false, started_ = false;
  RunReport report_;
  ProcessRecords records_;  // of report_.processes
  std::unique_ptr<CpuMonitor> monitor_;
  std::shared_ptr<TerminalProgress> bar_;
};

}  // namespace

void start_run(const std::shared_ptr<TaskService>& service, std::vector<WorkerRef> workers,
               OrchestratorOptions options, std::shared_ptr<RunProgress> progress,
               std::unique_ptr<RunCompletion> done) {
  auto run = std::make_shared<RunState>(service, std::move(workers), std::move(options),
                                        std::move(progress), std::move(done));
  run->bind_cancellation();
  asio::dispatch(service->executor(), [run] { run->start(); });
}

}  // namespace detail

WorkerOrchestrator::WorkerOrchestrator(ProcessPool& pool, std::vector<WorkerRef> workers,
                                       OrchestratorOptions options)
    : WorkerOrchestrator(detail::PoolAccess::service(pool), std::move(workers),
                         std::move(options)) {}

WorkerOrchestrator::WorkerOrchestrator(std::shared_ptr<detail::TaskService> service,
                                       std::vector<WorkerRef> workers, OrchestratorOptions options)
    : service_(std::move(service)), workers_(std::move(workers)), options_(std::move(options)) {
  if (options_.sample_interval < std::chrono::milliseconds(10))
    throw std::invalid_argument("corun::OrchestratorOptions::sample_interval = " +
                                std::to_string(options_.sample_interval.count()) +
                                " ms: the minimum is 10 ms");
  if (options_.retry) options_.retry->validate();
}

std::size_t WorkerOrchestrator::slice_count() const {
  std::size_t total = 0;
  for (const auto& w : workers_) total += w.data_iterator().slice_count();
  return total;
}

}  // namespace corun
