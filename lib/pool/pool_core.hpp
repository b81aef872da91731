#pragma once
/// \file
/// PoolCore: the local pool behind ProcessPool. It owns the task table, cancellation, the
/// pool's lifecycle (running, closing, closed, failed, terminated) and its waiters; the
/// dispatcher decides where tasks go, the slot starter how a worker slot starts, and the worker
/// slots run the tasks.
/// Side: parent.

#include "pool/child_process.hpp"
#include "pool/dispatcher.hpp"
#include "pool/slot_starter.hpp"
#include "pool/task_outcome.hpp"
#include "pool/worker_slot.hpp"
#include "seam/worker_timeline.hpp"

#include <corun/detail/task_service.hpp>
#include <corun/pool.hpp>

#include <asio/strand.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace corun::detail {

class PoolCore final : public TaskService,
                       public SlotEvents,
                       public WorkerTimelineSource,
                       public std::enable_shared_from_this<PoolCore> {
 public:
  /// `options` are validated, with defaults resolved. Launches the worker processes at once
  /// (so their pids are known when it returns); call start() next, on the strand.
  PoolCore(asio::any_io_executor executor, PoolOptions options);
  ~PoolCore() override;

  /// Starts every worker, from the strand.
  void start();
  const PoolOptions& options() const noexcept { return options_; }

  asio::any_io_executor executor() const override { return strand_; }
  std::uint64_t submit(std::shared_ptr<const TaskSpec> spec, Slice slice, std::string argument,
                       const TaskOptions& options, std::unique_ptr<TaskCompletion> done) override;
  void cancel(std::uint64_t task_id, CancelMode mode) override;
  std::size_t max_tasks_active() const override { return options_.max_tasks_active; }
  std::size_t concurrency() const override { return options_.workers; }

  /// On the strand: completes `done` once every worker is ready, or the pool failed.
  void wait_ready(std::unique_ptr<TaskCompletion> done);
  /// On the strand: refuses new tasks, lets queued ones finish, then stops the workers.
  void shutdown(std::unique_ptr<TaskCompletion> done);
  /// Any thread: kills and reaps every worker now; the strand fails what is left.
  void terminate() noexcept;
  /// The rest of terminate(), on the strand: every task and waiter completes with
  /// operation_aborted.
  void terminate_on_strand() noexcept;
  /// Instead of terminate_on_strand(), when the executor will never run it (its io_context is
  /// being destroyed): every task's and waiter's completion is destroyed without being called.
  void release_completions() noexcept;
  /// Any thread: the pids of the live worker processes.
  std::vector<pid_t> worker_pids() const { return children_.pids(); }
  /// Any thread: a snapshot of the workers' readiness.
  PoolHealth health() const;
  /// Any thread: when each worker process was launched, said hello, was ready and ended.
  const WorkerTimeline& worker_timeline() const noexcept override { return timeline_; }

 private:
  enum class State { running, closing, closed, failed, terminated };

  using Task = PoolTask;

  void on_slot_ready(WorkerSlot& slot) override;
  void on_task_result(WorkerSlot& slot, SlotTask done, const proto::Result& result) override;
  void on_slot_ended(WorkerSlot& slot, SlotEnd end) override;

  /// Whether worker `index` has been sent PoolOptions::worker_lifespan tasks, or asked to be
  /// replaced (PoolOptions::worker_max_rss, a task out of memory under worker_memory_limit).
  bool spent(std::size_t index) const noexcept;
  /// Stops a spent worker once its last task is done; a fresh one replaces it.
  void retire_if_spent(WorkerSlot& slot);
  void start_slot(int index);
  /// A slot failed to start: start it again after a backoff, or fail the pool.
  void retry_start(int index, const std::string& why);
  void pump();
  Task take(std::uint64_t id);
  void finish(Task task, TaskResult result);
  void fail_or_retry(std::uint64_t id, Task task, TaskError error, TaskResult result);
  /// Whether a task that failed with `error` runs again: its RetryPolicy decides, or else
  /// PoolOptions::retries (any kind but protocol).
  bool wants_retry(const Task& task, const TaskError& error) const;
  /// Puts task `id` (in tasks_) back in the queue after `wait` on a timer of the strand.
  void requeue_after(std::uint64_t id, Task& task, std::chrono::milliseconds wait);
  void handle_unfinished(WorkerSlot& slot, SlotEnd& end);
  /// Completes `done` from a fresh handler, never from inside the caller's stack.
  void complete_later(std::unique_ptr<TaskCompletion> done, std::exception_ptr error);
  std::exception_ptr closed_error() const;
  void fail_pool(const std::string& message);
  /// Ends the pool (failed or terminated): slots detached, every task and waiter completed.
  void end_for_good(State final_state, const std::exception_ptr& task_error,
                    const std::exception_ptr& shutdown_result);
  void fail_everything(const std::exception_ptr& error);
  void notify_ready();
  void check_shutdown();

  asio::strand<asio::any_io_executor> strand_;
  PoolOptions options_;
  WorkerTimeline timeline_;  // before starter_, which points to it
  ChildRegistry children_;   // before starter_, which launches into it
  Dispatcher dispatcher_;
  SlotStarter starter_;  // before slots_, which point to its config
  std::vector<std::shared_ptr<WorkerSlot>> slots_;
  std::vector<std::size_t> tasks_sent_;  // to each worker process, for worker_lifespan
  std::vector<bool> asked_to_retire_;    // each worker process, for worker_max_rss
  /// Updates the snapshot health() reads.
  void publish_health();

  std::atomic<std::size_t> ready_workers_{0};
  std::atomic<unsigned> published_failed_starts_{0};
  std::atomic<bool> published_failed_{false};
  std::unordered_map<std::uint64_t, Task> tasks_;
  std::uint64_t next_id_ = 1;
  std::size_t backing_off_ = 0;  // tasks in tasks_ waiting out a backoff
  State state_ = State::running;
  std::exception_ptr failure_;
  std::vector<std::unique_ptr<TaskCompletion>> ready_waiters_, shutdown_waiters_;
};

}  // namespace corun::detail
