/// \file
/// WorkerOrchestrator: one run's slices, backpressure, callbacks, failures and cancellation.
#include <corun/orchestrator.hpp>

#include <corun/cpu_monitor.hpp>

#include "front/front_end.hpp"
#include "front/progress_bar.hpp"
#include "seam/worker_timeline.hpp"

#include <asio/dispatch.hpp>

#include <algorithm>
#include <deque>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

namespace corun {

namespace detail {

struct RunAccess {
  static const std::shared_ptr<const TaskSpec>& spec(const WorkerRef& w) { return w.spec_; }
  static void deliver(const WorkerRef& w, const std::string& payload, const Slice& slice) {
    w.deliver_(w.object_, payload, slice);
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
        next_slice_(workers_.size(), 0),
        order_(options_.ordered ? workers_.size() : 0) {
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
    bar_ = TerminalProgress::open(options_.progress_bar, service_->executor(),
                                  progress_->total.load(), "slices");
    fill();
  }

  void on_result(std::size_t worker, std::uint64_t id, std::size_t index, Slice slice,
                 TaskResult&& result) {
    --active_;
    outstanding_.remove(id);
    result.record.worker_index = worker;
    account(result.record);
    bool deliverable = false;
    if (result.error) {
      if (result.task_error) {
        ++report_.tasks_failed;
        ++progress_->failed;
        report_.failures.push_back(std::move(*result.task_error));
        if (options_.on_error == ErrorPolicy::fail_fast) stop(CancelMode::drain);
      } else if (!stop_.stopping() || !is_aborted(result.error)) {
        // The pool failed, closed or was terminated under the run: the run cannot complete.
        fatal(is_aborted(result.error) ? terminated_error() : result.error);
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
    bool arrived = false;
    bool deliverable = false;  // false: its task failed; the order skips it
    Slice slice;
    std::string payload;
  };
  struct Order {
    std::size_t next = 0;   // the index of the slice whose result is due
    std::deque<Held> held;  // from `next` on
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
  void arrive(std::size_t worker, std::size_t index, Slice slice, bool deliverable,
              std::string payload) {
    Order& order = order_[worker];
    const std::size_t offset = index - order.next;
    if (order.held.size() <= offset) order.held.resize(offset + 1);
    order.held[offset] = Held{true, deliverable, slice, std::move(payload)};
    ++held_;
    while (!stop_.stopping() && !order.held.empty() && order.held.front().arrived) {
      Held due = std::move(order.held.front());
      order.held.pop_front();
      ++order.next;
      --held_;
      if (due.deliverable) deliver(worker, due.payload, due.slice);
    }
  }

  /// Adds a task's work to the record of the process that ran it.
  void account(const TaskRecord& record) {
    if (record.pid == 0) return;  // never reached a worker
    auto [it, added] = process_index_.try_emplace(record.pid, report_.processes.size());
    if (added) {
      WorkerProcessRecord& p = report_.processes.emplace_back();
      p.worker_id = record.worker_id;
      p.pid = record.pid;
    }
    if (record.started == TaskRecord::time_point{} || record.finished < record.started) return;
    WorkerProcessRecord& p = report_.processes[it->second];
    ++p.tasks;
    p.working += record.finished - record.started;
  }

  /// What the pool knows of its processes' start-up (a service without a timeline: nothing).
  void add_timeline(std::chrono::steady_clock::time_point end) {
    const auto* source = dynamic_cast<const WorkerTimelineSource*>(service_.get());
    if (source == nullptr || report_.started == std::chrono::steady_clock::time_point{}) return;
    for (const WorkerProcessRecord& t :
         source->worker_timeline().overlapping(report_.started, end)) {
      auto [it, added] = process_index_.try_emplace(t.pid, report_.processes.size());
      if (added) report_.processes.emplace_back();
      WorkerProcessRecord& p = report_.processes[it->second];
      const std::size_t tasks = p.tasks;
      const auto working = p.working;
      p = t;
      p.tasks = tasks;
      p.working = working;
    }
    std::stable_sort(report_.processes.begin(), report_.processes.end(),
                     [](const WorkerProcessRecord& a, const WorkerProcessRecord& b) {
                       return std::tie(a.worker_id, a.launched) < std::tie(b.worker_id, b.launched);
                     });
  }

  static std::exception_ptr terminated_error() {
    return std::make_exception_ptr(
        Error(errc::pool_closed, "corun: the process pool was terminated during the run"));
  }

  void fill() {
    while (!stop_.stopping() && active_ + held_ < window_) {
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
      const std::size_t index = next_slice_[chosen]++;
      const Slice slice = spec->iterator.slice(index);
      auto done = std::make_unique<TaskDone>(shared_from_this(), chosen, index, slice);
      TaskDone* raw = done.get();
      ++active_;
      raw->id = service_->submit(spec, slice, {}, std::move(done));
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
    for (Order& order : order_) order.held.clear();
    held_ = 0;
    outstanding_.cancel_all(*service_, mode);
  }

  void maybe_finish() {
    if (finished_ || active_ != 0) return;
    if (!stop_.stopping())
      for (std::size_t w = 0; w < workers_.size(); ++w)
        if (next_slice_[w] < RunAccess::spec(workers_[w])->iterator.slice_count()) return;
    finished_ = true;
    const auto end = std::chrono::steady_clock::now();
    report_.wall_time = end - report_.started;
    add_timeline(end);
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
  std::shared_ptr<RunProgress> progress_;
  std::unique_ptr<RunCompletion> done_;
  std::vector<std::size_t> next_slice_;
  std::vector<Order> order_;  // per worker object, when ordered
  std::size_t held_ = 0;      // results held back in order_
  std::size_t round_robin_ = 0;
  std::size_t window_ = 1;
  std::size_t active_ = 0;
  OutstandingTasks outstanding_;
  RunStop stop_;
  bool finished_ = false, started_ = false;
  RunReport report_;
  std::unordered_map<pid_t, std::size_t> process_index_;  // into report_.processes
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
}

std::size_t WorkerOrchestrator::slice_count() const {
  std::size_t total = 0;
  for (const auto& w : workers_) total += w.data_iterator().slice_count();
  return total;
}

}  // namespace corun
