#pragma once
/// \file
/// ProcessPool: persistent worker processes driven from an Asio executor.
/// Side: parent.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/cancellation.hpp>
#include <corun/data_iterator.hpp>
#include <corun/detail/completion.hpp>
#include <corun/detail/task_service.hpp>
#include <corun/error.hpp>
#include <corun/report.hpp>
#include <corun/wait_mode.hpp>
#include <corun/worker.hpp>
#include <corun/worker_info.hpp>
#include <corun/worker_output.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>

#include <sys/types.h>
#include <chrono>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

namespace corun {

/// How worker processes are started.
enum class StartMethod {
  /// Re-execute the running program (`main` must call enter_worker_if_spawned first). Safe
  /// from a multithreaded host. The default.
  spawn,
  /// fork() without exec: faster, for programs that build their pool before starting threads.
  fork,
  /// No processes: tasks run one at a time on the pool's executor, for debugging and unit
  /// tests of worker logic. Same API; no timeouts, a crash takes the program down.
  serial,
};

/// How a ProcessPool starts, feeds, times and replaces its worker processes.
struct PoolOptions {
  /// Worker processes; 0 means one per physical core (hwloc).
  std::size_t workers = 0;
  /// How worker processes are started (see StartMethod).
  StartMethod start_method = StartMethod::spawn;
  /// Bind worker i to core i (modulo the core count) with hwloc.
  bool cpu_pinning = false;
  /// Tasks queued at one worker, so its next task is there when it finishes one.
  std::size_t pipeline_depth = 2;
  /// When a worker's tasks are short, more are queued at it, up to this many, so that about
  /// 250 us of work waits there: tiny tasks then cost little more than their syscalls, while
  /// long tasks stay at pipeline_depth and balance over the workers. Set it equal to
  /// pipeline_depth for a fixed depth.
  std::size_t max_pipeline_depth = 32;
  /// Bound on tasks an orchestrator run keeps submitted; 0 means 2 * workers *
  /// max_pipeline_depth.
  std::size_t max_tasks_active = 0;
  /// A task running longer is stopped by killing its worker (which is replaced); 0: no limit.
  std::chrono::milliseconds task_timeout{0};
  /// A started worker must report within this time (else: did main() call
  /// enter_worker_if_spawned?).
  std::chrono::milliseconds handshake_timeout{1000};
  /// Largest encoded result a task may return; a larger one fails its task (kind protocol)
  /// and the worker lives on. The protocol carries results of up to 4293918719 bytes (4 GiB
  /// less 1 MiB, less 1): SIZE_MAX means that largest size; any other value above it is
  /// rejected by the ProcessPool constructor (std::invalid_argument naming both).
  std::size_t max_result_bytes = std::size_t{64} << 20;
  /// Times a failed task (exception, crash, timeout, memory_exceeded; never protocol) is run
  /// again, at once, before it is reported; OrchestratorOptions::retry and MapOptions::retry
  /// (a RetryPolicy with backoff and a choice of failures) override it for their tasks.
  unsigned retries = 0;
  /// A worker that fails to start (it cannot be launched, worker_init throws, it does not
  /// report) is started again after a backoff of 10 ms, doubling up to 1 s; after this many
  /// consecutive failed starts the pool fails with errc::worker_start_failed.
  unsigned start_attempts = 5;
  /// Runs in each worker process once it has started, before its first task; an exception
  /// from it is a failed start.
  WorkerHook worker_init = nullptr;
  /// Runs in each worker process before it exits (graceful shutdown, worker_lifespan).
  WorkerHook worker_exit = nullptr;
  /// A worker process is replaced after running this many tasks (0: never), to contain leaks
  /// in user code: it gets no more tasks, finishes those it has, runs its exit hooks and
  /// exits; a fresh process (with its init hooks) takes its place. Not a crash, not a failed
  /// start, and no task is lost.
  std::size_t worker_lifespan = 0;
  /// Empty (the default): workers inherit the parent's stdout and stderr and write straight to
  /// them, as the program's own output does. Set: each worker's stdout and stderr are pipes the
  /// parent reads without blocking its loop; every line (WorkerOutputLine: worker id, pid,
  /// stream, text) goes to this handler on the pool's executor, a final line without a newline
  /// when the worker exits or crashes included, before the pool reports the worker's end (its
  /// task's failure, async_shutdown's completion). Lines longer than kWorkerOutputLineBytes
  /// (64 KiB) come in pieces; the parent holds at most that much per stream, and a worker that
  /// writes faster than the handler takes its lines waits in write(2) (the pipe is full), never
  /// the parent. A captured worker's C stdout is line-buffered, so printf("...\n") and
  /// std::cout << "...\n" arrive as they are written. A serial pool has no worker processes:
  /// its tasks write to the program's own streams and the handler is never called.
  WorkerOutputHandler worker_output = nullptr;
  /// Resident memory, in bytes, past which a worker process is replaced (0: no bound), to
  /// contain memory that grows in user code (caches, leaks, fragmentation). The worker reads its
  /// resident size (/proc/self/statm) after each task; past the bound it is replaced as
  /// worker_lifespan replaces a spent worker: it gets no more tasks, finishes those it has,
  /// runs its exit hooks and exits, and a fresh process takes its place. No task is lost or
  /// failed, and it is not a failed start. Costs one pread(2) per task (a few microseconds)
  /// when set, nothing when not. Not a hard limit: a task that allocates past it completes (see
  /// worker_memory_limit). A serial pool ignores it.
  std::size_t worker_max_rss = 0;
  /// A hard limit, in bytes, on each worker process's address space (0: none), set with
  /// setrlimit(RLIMIT_AS) in the worker before worker_init, so it covers the worker's whole
  /// life, its init included. A task whose allocation fails under it (std::bad_alloc) fails
  /// with TaskErrorKind::memory_exceeded (errc::memory_exceeded) naming the limit, and its
  /// worker is replaced once its other tasks are done (its heap may be left fragmented); the
  /// pool goes on. RLIMIT_AS counts virtual memory: the program's code and libraries, thread
  /// stacks, malloc's reserved arenas and every shared array the worker maps (a worker maps
  /// each array it reads or writes whole, however small its slice) count too, so the limit must
  /// leave room for them; a limit below what a worker needs to start fails its start. Memory
  /// that a task takes without an allocation that can fail (stack growth, a C library that
  /// does not check malloc) ends the worker with a signal instead, reported as a crash. Works
  /// on every Linux, unprivileged; costs nothing per task. Not applied under AddressSanitizer
  /// (a diagnostic says so) nor in a serial pool.
  std::size_t worker_memory_limit = 0;
  /// worker_init (and the worker's start up to it) must return within this time, else the
  /// worker is killed and the start counts as failed (see start_attempts; when they are spent
  /// the pool fails with errc::worker_start_failed naming this timeout). 0: no limit. The
  /// default, 60 s, is generous for loading a model or a vocabulary, and keeps a hung hook
  /// from hanging the pool's start for ever. A Worker type's own per-process worker_init
  /// (include/corun/worker.hpp) runs inside that type's first task at each worker: its time is
  /// the task's, which task_timeout bounds. A serial pool runs hooks on its executor, unbounded.
  std::chrono::milliseconds worker_init_timeout{60'000};
  /// A stopping worker (async_shutdown, worker_lifespan, worker_max_rss) must exit within this
  /// time of being asked, its exit hooks included (worker_exit and the Worker types'
  /// worker_exit); else it is killed, and corun's diagnostics handler (corun/diagnostics.hpp)
  /// gets one message naming the worker process and this timeout. So async_shutdown always
  /// completes. 0: no limit. The default, 10 s, leaves room for flushing files.
  std::chrono::milliseconds worker_exit_timeout{10'000};
  /// An explicit CPU set per worker (mpire's cpu_ids): PU numbers as the operating system
  /// numbers them (as in sched_getaffinity, taskset, hwloc's os_index). Empty (the default):
  /// no binding, or cpu_pinning's. One entry: every worker is bound to that set. As many
  /// entries as workers: worker i (TaskContext::worker_id, also after a replacement) is bound
  /// to entry i. The ProcessPool constructor throws std::invalid_argument for another number of
  /// entries, an empty entry, a PU the machine (hwloc's topology) does not have, or cpu_sets
  /// together with cpu_pinning; a worker that cannot be bound fails its start. A serial pool
  /// ignores it.
  std::vector<std::vector<unsigned>> cpu_sets = {};
  /// How workers wait for tasks and the parent for results: WaitMode::blocking() (the default,
  /// no CPU while idle) or WaitMode::spin(d) (shared-memory rings watched for up to d before
  /// sleeping: the lowest round trip, for CPU; see WaitMode). A negative budget is rejected by
  /// the ProcessPool constructor (std::invalid_argument). A serial pool ignores it.
  WaitMode wait = WaitMode::blocking();
};

/// A snapshot of a pool's workers, readable from any thread (for a health check).
struct PoolHealth {
  std::size_t workers = 0;     ///< worker slots
  std::size_t ready = 0;       ///< workers ready for tasks now
  unsigned failed_starts = 0;  ///< consecutive failed starts (0 once a start succeeds)
  bool failed = false;         ///< the pool gave up: every task fails (worker_start_failed)
  /// Some workers are missing (crashed, restarting after a failed start) but tasks still run.
  bool degraded() const noexcept { return !failed && ready < workers; }
};

namespace detail {
class PoolCore;
struct PoolAccess;

/// async_execute of every pool-like object: runs W's `process` per `spec` on `slice` through
/// `service`, completing with `(exception_ptr, R)`.
template <class W, class Token>
auto async_execute_task(std::shared_ptr<TaskService> service, std::shared_ptr<const TaskSpec> spec,
                        Slice slice, Token&& token) {
  using R = worker_result_t<W>;
  static_assert(std::is_void_v<R> || std::is_default_constructible_v<R>,
                "async_execute completes with (exception_ptr, R): R must be default "
                "constructible, as the value that accompanies an error");
  return asio::async_initiate<Token, typename value_signature<R>::type>(
      [](auto handler, std::shared_ptr<TaskService> s, std::shared_ptr<const TaskSpec> sp,
         Slice sl) { start_task<R>(std::move(s), std::move(sp), sl, std::move(handler)); },
      token, std::move(service), std::move(spec), slice);
}

/// The spec of an async_execute call: W with its default Params over `iterator`.
template <class W>
std::shared_ptr<const TaskSpec> default_task_spec(const DataIterator& iterator) {
  return make_task_spec(worker_name_of<W>(), iterator, std::nullopt, encoded_default_params<W>());
}
/// The spec of an async_execute call on a worker object: its iterator, Params and output.
template <class W>
std::shared_ptr<const TaskSpec> worker_task_spec(const W& worker) {
  return make_task_spec(worker_name_of<W>(), worker.data_iterator(), worker.output(),
                        encoded_params_of(worker));
}
}  // namespace detail

/// Persistent worker processes, reused across runs.
///
/// Threading: the pool's state lives on a strand of the executor it was given; every handler
/// of the pool runs there. Any thread may call its member functions: the async operations
/// post to the strand, size(), options() and worker_pids() read a snapshot, and terminate()
/// and the destructor kill and reap the workers synchronously and post the rest (completing
/// queued and running tasks with operation_aborted) to the strand, so they are safe while
/// other threads run the executor, and also when none does.
class CORUN_API ProcessPool {
 public:
  /// The executor given to the constructor; the pool's handlers run on a strand of it.
  using executor_type = asio::any_io_executor;

  /// Starts the worker processes without blocking: tasks submitted before they are ready wait.
  /// Throws std::invalid_argument for bad options.
  ProcessPool(executor_type executor, PoolOptions options = {});
  /// Kills and reaps any worker still running (call async_shutdown first for a graceful end).
  ~ProcessPool();
  ProcessPool(const ProcessPool&) = delete;
  ProcessPool& operator=(const ProcessPool&) = delete;

  /// The executor given to the constructor: async operations' default completion tokens use it.
  executor_type get_executor() const noexcept { return executor_; }
  /// Number of worker slots.
  std::size_t size() const noexcept { return options_.workers; }
  /// The options, with defaults resolved (workers, max_tasks_active).
  const PoolOptions& options() const noexcept { return options_; }
  /// Process ids of the live workers (empty for a serial pool).
  std::vector<pid_t> worker_pids() const;
  /// How many workers are ready, and whether starts are failing.
  PoolHealth health() const;

  /// Runs worker type W's `process` on `slice` of the array `iterator` describes, with
  /// value-initialised Params.
  ///
  /// Completion signature: `void(std::exception_ptr, R)` where R is the result type of
  /// `W::process` (`void(std::exception_ptr)` when it returns void). The exception is a
  /// corun::TaskFailed carrying the TaskError when the task failed.
  ///
  /// Cancellation: a queued task is removed; a running task is left to finish with its result
  /// discarded, or, for `cancellation_type::terminal`, its worker is killed and replaced. The
  /// operation then completes with std::system_error(asio::error::operation_aborted).
  template <class W, class Token = asio::default_completion_token_t<executor_type>>
  auto async_execute(const DataIterator& iterator, Slice slice, Token&& token = {}) {
    return detail::async_execute_task<W>(service_, detail::default_task_spec<W>(iterator), slice,
                                         std::forward<Token>(token));
  }
  /// The same, with the worker object's iterator, params and output array.
  template <class W, class Token = asio::default_completion_token_t<executor_type>>
  auto async_execute(const W& worker, Slice slice, Token&& token = {}) {
    return detail::async_execute_task<W>(service_, detail::worker_task_spec(worker), slice,
                                         std::forward<Token>(token));
  }

  /// Completes when every worker has started (or the pool failed: the exception says why).
  /// Completion signature: `void(std::exception_ptr)`.
  template <class Token = asio::default_completion_token_t<executor_type>>
  auto async_wait_ready(Token&& token = {}) {
    return async_lifecycle(&ProcessPool::wait_ready, std::forward<Token>(token));
  }

  /// Graceful shutdown: new tasks are refused, queued and running ones finish, then each
  /// worker runs its worker_exit hook and exits. Completion signature: `void(std::exception_ptr)`.
  template <class Token = asio::default_completion_token_t<executor_type>>
  auto async_shutdown(Token&& token = {}) {
    return async_lifecycle(&ProcessPool::shutdown, std::forward<Token>(token));
  }

  /// Kills every worker at once (SIGKILL) and reaps it before returning; queued and running
  /// tasks complete with operation_aborted on the pool's strand. The pool accepts no more
  /// tasks. Safe from any thread.
  void terminate() noexcept;

 private:
  friend struct detail::PoolAccess;

  using LifecycleOp = void (*)(const std::shared_ptr<detail::PoolCore>&,
                               std::unique_ptr<detail::TaskCompletion>);
  static void wait_ready(const std::shared_ptr<detail::PoolCore>& core,
                         std::unique_ptr<detail::TaskCompletion> done);
  static void shutdown(const std::shared_ptr<detail::PoolCore>& core,
                       std::unique_ptr<detail::TaskCompletion> done);

  /// An operation on the whole pool that completes with `void(std::exception_ptr)`.
  template <class Token>
  auto async_lifecycle(LifecycleOp op, Token&& token) {
    return asio::async_initiate<Token, void(std::exception_ptr)>(
        [](auto handler, LifecycleOp operation, std::shared_ptr<detail::PoolCore> core,
           std::shared_ptr<detail::TaskService> service) {
          operation(core, std::make_unique<detail::HandlerCompletion<void, decltype(handler)>>(
                              std::move(handler), std::move(service)));
        },
        token, op, core_, service_);
  }

  executor_type executor_;
  std::shared_ptr<detail::PoolCore> core_;
  std::shared_ptr<detail::TaskService> service_;  // core_, seen through the seam
  PoolOptions options_;
};

namespace detail {
/// What front-ends built on the pool may reach.
struct PoolAccess {
  static const std::shared_ptr<TaskService>& service(const ProcessPool& pool) noexcept {
    return pool.service_;
  }
};
}  // namespace detail

}  // namespace corun
