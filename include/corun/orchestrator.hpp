#pragma once
/// \file
/// WorkerOrchestrator: runs every slice of one or more workers over a ProcessPool, and streams
/// results into each worker's `process_callback` on the pool's executor.
/// Side: parent.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/cancellation.hpp>
#include <corun/detail/run_completion.hpp>
#include <corun/detail/task_service.hpp>
#include <corun/detail/worker_ref.hpp>
#include <corun/error.hpp>
#include <corun/error_policy.hpp>
#include <corun/pool.hpp>
#include <corun/progress.hpp>
#include <corun/report.hpp>
#include <corun/retry.hpp>

#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/use_awaitable.hpp>

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <vector>

namespace corun {

/// How a WorkerOrchestrator runs: sampling, failures, cancellation, backpressure and what
/// the report keeps.
struct OrchestratorOptions {
  /// Sample per-PU utilisation while the run is in flight (RunReport::cpu).
  bool monitor_cpu_usage = false;
  /// Time between CPU samples when monitor_cpu_usage (10 ms at least, else the constructor
  /// throws std::invalid_argument).
  std::chrono::milliseconds sample_interval{200};
  /// Whether the first failed task stops the run (fail_fast) or every slice runs (collect).
  ErrorPolicy on_error = ErrorPolicy::fail_fast;
  /// What cancellation does with tasks already at a worker.
  CancelMode on_cancel = CancelMode::drain;
  /// Tasks kept submitted at once (backpressure); 0: PoolOptions::max_tasks_active.
  std::size_t max_tasks_active = 0;
  /// Keep a TaskRecord per task in the report (turn off for runs of millions of tiny slices).
  bool record_tasks = true;
  /// Call each worker object's process_callback in slice order, holding back results that
  /// finish early. Held results count against max_tasks_active, so at most that many results
  /// are in flight or held at once. Results of failed tasks are skipped in the order.
  bool ordered = false;
  /// A terminal progress bar of the run's slices on stderr (see corun/progress.hpp).
  ProgressBar progress_bar = ProgressBar::off;
  /// How the run's failed slices run again; unset: PoolOptions::retries (immediate, any kind
  /// but protocol). Checked by the constructor (RetryPolicy::validate).
  std::optional<RetryPolicy> retry{};
  /// The run's slices wait for a worker ahead of those of lower priority (higher first; other
  /// runs and maps on the pool default to 0). Within a priority, first come first served; a
  /// lower priority still gets one dispatch in every 33 while it waits (the README's
  /// "Retries and priorities" says how).
  int priority = 0;
};

/// Slices finished so far and in all, readable from any thread while a run is in flight.
struct RunProgress {
  /// Slices whose result reached process_callback.
  std::atomic<std::size_t> done{0};
  /// Slices that failed (see RunReport::failures).
  std::atomic<std::size_t> failed{0};
  /// Slices of the run, set when it starts.
  std::atomic<std::size_t> total{0};
};

namespace detail {

CORUN_API void start_run(const std::shared_ptr<TaskService>& service,
                         std::vector<WorkerRef> workers, OrchestratorOptions options,
                         std::shared_ptr<RunProgress> progress,
                         std::unique_ptr<RunCompletion> done);
}  // namespace detail

/// Runs all slices of its workers over a pool. Each result triggers the worker's
/// `process_callback` on the pool's executor, one at a time, as results arrive.
class CORUN_API WorkerOrchestrator {
 public:
  /// Throws corun::Error (worker_not_registered) and std::invalid_argument for bad workers.
  WorkerOrchestrator(ProcessPool& pool, std::vector<WorkerRef> workers,
                     OrchestratorOptions options = {});
  /// The same over another pool-like object (corun::ClusterPool): anything exposing the
  /// detail::TaskService that runs its tasks as `task_service()`.
  template <class PoolLike>
  requires requires(const PoolLike& p) {
    { p.task_service() } -> std::convertible_to<std::shared_ptr<detail::TaskService>>;
  }
  WorkerOrchestrator(PoolLike& pool, std::vector<WorkerRef> workers,
                     OrchestratorOptions options = {})
      : WorkerOrchestrator(pool.task_service(), std::move(workers), std::move(options)) {}
  /// The same over a TaskService directly.
  WorkerOrchestrator(std::shared_ptr<detail::TaskService> service, std::vector<WorkerRef> workers,
                     OrchestratorOptions options = {});

  /// Runs every slice of every worker, interleaved over the pool.
  ///
  /// Completion signature: `void(std::exception_ptr, RunReport)`. With ErrorPolicy::fail_fast
  /// the exception is a corun::RunError carrying the failures; an exception thrown by a
  /// `process_callback` ends the run and is passed on as it is.
  ///
  /// Cancellation: dispatch stops; tasks at workers are drained (results discarded) or their
  /// workers killed (OrchestratorOptions::on_cancel, or `cancellation_type::terminal`); then
  /// the operation completes with std::system_error(asio::error::operation_aborted). The pool
  /// remains usable. A pool terminated or destroyed under a run fails the run the same way.
  template <class Token = asio::default_completion_token_t<ProcessPool::executor_type>>
  auto async_run(Token&& token = {}) {
    progress_ = std::make_shared<RunProgress>();
    return asio::async_initiate<Token, void(std::exception_ptr, RunReport)>(
        [](auto handler, std::shared_ptr<detail::TaskService> service,
           std::vector<WorkerRef> workers, OrchestratorOptions options,
           std::shared_ptr<RunProgress> progress) {
          auto done = std::make_unique<detail::HandlerRunCompletion<decltype(handler)>>(
              std::move(handler), service->executor());
          detail::start_run(service, std::move(workers), std::move(options), std::move(progress),
                            std::move(done));
        },
        token, service_, workers_, options_, progress_);
  }

  /// `co_await orch.run()`: async_run for coroutines; throws on failure.
  asio::awaitable<RunReport> run() { return async_run(asio::use_awaitable); }

  /// Total slices of all workers.
  std::size_t slice_count() const;
  /// Progress of the latest run (null before the first).
  std::shared_ptr<const RunProgress> progress() const { return progress_; }

 private:
  std::shared_ptr<detail::TaskService> service_;
  std::vector<WorkerRef> workers_;
  OrchestratorOptions options_;
  std::shared_ptr<RunProgress> progress_;
};

}  // namespace corun
