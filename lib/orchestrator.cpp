/// \file
/// WorkerOrchestrator: one run's slices, backpressure, callbacks, failures and cancellation.
#include <corun/orchestrator.hpp>

#include <corun/cpu_monitor.hpp>

#include <asio/dispatch.hpp>

#include <stdexcept>
#include <unordered_set>

namespace corun {

namespace detail {

struct RunAccess {
  static const std::shared_ptr<const TaskSpec>& spec(const WorkerRef& w) { return w.spec_; }
  static void deliver(const WorkerRef& w, const std::string& payload) {
    w.deliver_(w.object_, payload);
  }
};

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
        next_slice_(workers_.size(), 0) {
    window_ =
        options_.max_tasks_active != 0 ? options_.max_tasks_active : service_->max_tasks_active();
    std::size_t total = 0;
    for (const auto& w : workers_) total += RunAccess::spec(w)->iterator.slice_count();
    progress_->total = total;
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
    fill();
  }

  void on_result(std::size_t worker, std::uint64_t id, TaskResult&& result) {
    --active_;
    outstanding_.erase(id);
    result.record.worker_index = worker;
    if (result.error) {
      if (result.task_error) {
        ++report_.tasks_failed;
        ++progress_->failed;
        report_.failures.push_back(std::move(*result.task_error));
        if (options_.on_error == ErrorPolicy::fail_fast) stop(CancelMode::drain);
      } else if (!stopping_ || !is_aborted(result.error)) {
        // The pool failed, closed or was terminated under the run: the run cannot complete.
        fatal(is_aborted(result.error) ? terminated_error() : result.error);
      }
    } else if (!stopping_) {
      try {
        RunAccess::deliver(workers_[worker], result.payload);
        ++report_.tasks_done;
        ++progress_->done;
      } catch (...) {
        fatal(std::current_exception());
      }
    }
    if (options_.record_tasks) report_.tasks.push_back(std::move(result.record));
    fill();
  }

 private:
  class TaskDone final : public TaskCompletion {
   public:
    TaskDone(std::shared_ptr<RunState> run, std::size_t worker)
        : run_(std::move(run)), worker_(worker) {}
    void complete(TaskResult&& result) override { run_->on_result(worker_, id, std::move(result)); }
    std::uint64_t id = 0;

   private:
    std::shared_ptr<RunState> run_;
    std::size_t worker_;
  };

  static std::exception_ptr terminated_error() {
    return std::make_exception_ptr(
        Error(errc::pool_closed, "corun: the process pool was terminated during the run"));
  }

  void fill() {
    while (!stopping_ && active_ < window_) {
      std::size_t chosen = workers_.size();
      for (std::size_t k = 0; k < workers_.size(); ++k) {
        const std::size_t w = (round_robin_ + k) % workers_.size();
        if (next_slice_[w] < RunAccess::spec(workers_[w])->iterator.slice_count()) {
          chosen = w;
          break;
        }
      }
      if (chosen == workers_.size()) break;
      round_robin_ = chosen + 1;
      const auto& spec = RunAccess::spec(workers_[chosen]);
      const Slice slice = spec->iterator.slice(next_slice_[chosen]++);
      auto done = std::make_unique<TaskDone>(shared_from_this(), chosen);
      TaskDone* raw = done.get();
      ++active_;
      raw->id = service_->submit(spec, slice, std::move(done));
      if (raw->id != 0) outstanding_.insert(raw->id);
    }
    maybe_finish();
  }

  // Public for start_run; the rest below is private.
 public:
  /// Connects the handler's cancellation slot at initiation, so a cancellation emitted before
  /// the run reaches the pool's strand is not lost. `terminal` always kills; other types use
  /// OrchestratorOptions::on_cancel.
  void bind_cancellation() {
    std::weak_ptr<RunState> weak = weak_from_this();
    auto executor = service_->executor();
    const CancelMode configured = options_.on_cancel;
    done_->bind_cancellation([weak, executor, configured](CancelMode requested) {
      const CancelMode mode = requested == CancelMode::kill ? CancelMode::kill : configured;
      asio::dispatch(executor, [weak, mode] {
        if (auto self = weak.lock()) self->cancel(mode);
      });
    });
  }

 private:
  void cancel(CancelMode mode) {
    if (finished_) {
      return;
    }
    if (!started_) {  // cancelled before start(): complete without dispatching anything
      started_ = true;
      cancelled_ = true;
      stopping_ = true;
      maybe_finish();
      return;
    }
    cancelled_ = true;
    stop(mode);
    maybe_finish();
  }

  void fatal(std::exception_ptr e) {
    if (!fatal_) fatal_ = std::move(e);
    stop(CancelMode::drain);
  }

  void stop(CancelMode mode) {
    if (stopping_ && mode == CancelMode::drain) return;
    stopping_ = true;
    const std::vector<std::uint64_t> ids(outstanding_.begin(), outstanding_.end());
    for (std::uint64_t id : ids) service_->cancel(id, mode);
  }

  void maybe_finish() {
    if (finished_ || active_ != 0) return;
    if (!stopping_)
      for (std::size_t w = 0; w < workers_.size(); ++w)
        if (next_slice_[w] < RunAccess::spec(workers_[w])->iterator.slice_count()) return;
    finished_ = true;
    report_.wall_time = std::chrono::steady_clock::now() - report_.started;
    if (monitor_) {
      monitor_->stop();
      report_.cpu = monitor_->take_series();
      monitor_.reset();
    }
    std::exception_ptr error;
    if (cancelled_)
      error = aborted_error();
    else if (fatal_)
      error = fatal_;
    else if (options_.on_error == ErrorPolicy::fail_fast && !report_.failures.empty())
      error = std::make_exception_ptr(RunError(report_.failures));
    auto done = std::move(done_);
    done->complete(error, std::move(report_));
  }

  std::shared_ptr<TaskService> service_;
  std::vector<WorkerRef> workers_;
  OrchestratorOptions options_;
  std::shared_ptr<RunProgress> progress_;
  std::unique_ptr<RunCompletion> done_;
  std::vector<std::size_t> next_slice_;
  std::size_t round_robin_ = 0;
  std::size_t window_ = 1;
  std::size_t active_ = 0;
  std::unordered_set<std::uint64_t> outstanding_;
  bool stopping_ = false, cancelled_ = false, finished_ = false, started_ = false;
  std::exception_ptr fatal_;
  RunReport report_;
  std::unique_ptr<CpuMonitor> monitor_;
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
}

std::size_t WorkerOrchestrator::slice_count() const {
  std::size_t total = 0;
  for (const auto& w : workers_) total += w.data_iterator().slice_count();
  return total;
}

}  // namespace corun
