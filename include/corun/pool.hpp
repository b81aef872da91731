#pragma once
/// \file
/// ProcessPool: persistent worker processes driven from an Asio executor.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/data_iterator.hpp>
#include <corun/error.hpp>
#include <corun/worker.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/dispatch.hpp>
#include <asio/error.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>

#include <sys/types.h>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
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

/// What a worker hook learns about its process.
struct WorkerInfo {
  int worker_id = 0;  ///< the slot in the pool, 0..workers-1
  pid_t pid = 0;
};

/// A function run in each worker process once after it starts (worker_init) or before it exits
/// (worker_exit). A plain function, so that a re-executed worker can find it again.
using WorkerHook = void (*)(const WorkerInfo&);

/// What happens to tasks already running when their operation is cancelled.
enum class CancelMode {
  drain,  ///< let them finish, discard their results
  kill,   ///< kill their worker processes (they are replaced)
};

struct PoolOptions {
  /// Worker processes; 0 means one per physical core (hwloc).
  std::size_t workers = 0;
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
  /// Largest encoded result a task may return.
  std::size_t max_result_bytes = std::size_t{64} << 20;
  /// Times a failed task (exception, crash, timeout) is run again before it is reported.
  unsigned retries = 0;
  WorkerHook worker_init = nullptr;
  WorkerHook worker_exit = nullptr;
};

/// How a task ended.
enum class TaskOutcome { ok, exception, crashed, timeout, protocol, cancelled };
CORUN_API const char* to_string(TaskOutcome outcome) noexcept;

/// What happened to one task: where and when it ran, and how it ended.
struct TaskRecord {
  using time_point = std::chrono::steady_clock::time_point;
  std::string worker;            ///< registered name of the worker type
  std::size_t worker_index = 0;  ///< index of the worker object in the orchestrator's list
  Slice slice;
  int worker_id = -1;                    ///< pool slot of the process that ran it
  pid_t pid = 0;                         ///< worker process (the parent's pid in a serial pool)
  int cpu_start = -1;                    ///< PU (OS index) at the start of process (sched_getcpu)
  int cpu_end = -1;                      ///< PU at its end
  time_point submitted{};                ///< when the pool accepted the task
  time_point started{};                  ///< when process began, in the worker
  time_point finished{};                 ///< when process returned, in the worker
  std::chrono::nanoseconds cpu_time{0};  ///< CPU time the worker thread spent in process
  TaskOutcome outcome = TaskOutcome::ok;
  int attempts = 0;
};

namespace detail {

/// Everything a worker process needs to know about the work, encoded once per worker object.
struct TaskSpec {
  std::string worker_name;
  DataIterator iterator;
  std::optional<ArrayInfo> output;
  std::uint64_t input_inode = 0;   // which segments the names meant when the spec was made,
  std::uint64_t output_inode = 0;  // so workers need not revalidate their mappings per task
  std::string encoded;
};
CORUN_API std::shared_ptr<const TaskSpec> make_task_spec(std::string worker_name,
                                                         DataIterator iterator,
                                                         std::optional<ArrayInfo> output);

struct TaskResult {
  std::exception_ptr error;  ///< TaskFailed, corun::Error, or std::system_error(operation_aborted)
  std::optional<TaskError> task_error;
  std::string payload;
  TaskRecord record;
};

/// Receives a task's result on the pool's executor.
class CORUN_API TaskCompletion {
 public:
  virtual ~TaskCompletion() = default;
  virtual void complete(TaskResult&& result) = 0;
};

class PoolCore;
using PoolCorePtr = std::shared_ptr<PoolCore>;

/// The pool's internal (strand) executor; submit and cancel must run on it.
CORUN_API asio::any_io_executor core_executor(const PoolCore& core);
/// Queues a task; `done` is called exactly once. Returns the task id.
CORUN_API std::uint64_t submit_task(PoolCore& core, std::shared_ptr<const TaskSpec> spec,
                                    Slice slice, std::unique_ptr<TaskCompletion> done);
CORUN_API void cancel_task(PoolCore& core, std::uint64_t task_id, CancelMode mode);
CORUN_API std::exception_ptr aborted_error();

template <class R>
R decode_result(const std::string& payload) {
  return codec<R>::decode(payload);
}

inline CancelMode cancel_mode_of(asio::cancellation_type type) noexcept {
  return (type & asio::cancellation_type::terminal) != asio::cancellation_type::none
             ? CancelMode::kill
             : CancelMode::drain;
}

/// Owns a completion handler until it runs: keeps its executor busy meanwhile, connects its
/// cancellation slot, and invokes it on its associated executor.
template <class Handler>
class HandlerHolder {
 public:
  HandlerHolder(Handler handler, const asio::any_io_executor& fallback)
      : handler_(std::move(handler)), work_(asio::get_associated_executor(handler_, fallback)) {}

  /// Calls `on_cancel(CancelMode)` when the handler's cancellation slot is emitted.
  template <class OnCancel>
  void on_cancellation(OnCancel on_cancel) {
    auto slot = asio::get_associated_cancellation_slot(handler_);
    if (!slot.is_connected()) return;
    slot.assign([on_cancel = std::move(on_cancel)](asio::cancellation_type type) mutable {
      on_cancel(cancel_mode_of(type));
    });
  }

  template <class... Args>
  void invoke(Args... args) {
    auto slot = asio::get_associated_cancellation_slot(handler_);
    if (slot.is_connected()) slot.clear();
    asio::dispatch(work_.get_executor(),
                   [h = std::move(handler_), ... a = std::move(args)]() mutable {
                     std::move(h)(std::move(a)...);
                   });
    work_.reset();
  }

 private:
  Handler handler_;
  asio::executor_work_guard<asio::associated_executor_t<Handler, asio::any_io_executor>> work_;
};

/// Adapts a completion handler of signature void(std::exception_ptr[, R]) to TaskCompletion.
template <class R, class Handler>
class HandlerCompletion final : public TaskCompletion {
 public:
  HandlerCompletion(Handler handler, PoolCorePtr core)
      : holder_(std::move(handler), core_executor(*core)), core_(std::move(core)) {}

  void bind_cancellation(std::uint64_t task_id) {
    holder_.on_cancellation([core = core_, task_id](CancelMode mode) {
      asio::dispatch(core_executor(*core),
                     [core, task_id, mode] { cancel_task(*core, task_id, mode); });
    });
  }

  void complete(TaskResult&& result) override {
    std::exception_ptr error = std::move(result.error);
    if constexpr (std::is_void_v<R>) {
      holder_.invoke(error);
    } else {
      R value{};
      if (!error) {
        try {
          value = decode_result<R>(result.payload);
        } catch (...) {
          error = std::current_exception();
        }
      }
      holder_.invoke(error, std::move(value));
    }
  }

 private:
  HandlerHolder<Handler> holder_;
  PoolCorePtr core_;
};

template <class R>
struct execute_signature {
  using type = void(std::exception_ptr, R);
};
template <>
struct execute_signature<void> {
  using type = void(std::exception_ptr);
};

CORUN_API PoolCorePtr make_pool_core(asio::any_io_executor executor, PoolOptions options);
CORUN_API void async_wait_ready_impl(const PoolCorePtr& core,
                                     std::unique_ptr<TaskCompletion> done);  // error only
CORUN_API void async_shutdown_impl(const PoolCorePtr& core, std::unique_ptr<TaskCompletion> done);
CORUN_API void terminate_pool(PoolCore& core) noexcept;
CORUN_API std::size_t pool_size(const PoolCore& core) noexcept;
CORUN_API std::vector<pid_t> pool_worker_pids(const PoolCore& core);
CORUN_API const PoolOptions& pool_options(const PoolCore& core) noexcept;

template <class R, class Handler>
void start_task(const PoolCorePtr& core, std::shared_ptr<const TaskSpec> spec, Slice slice,
                Handler&& handler) {
  auto done = std::make_unique<HandlerCompletion<R, std::decay_t<Handler>>>(
      std::forward<Handler>(handler), core);
  auto* raw = done.get();
  asio::dispatch(core_executor(*core), [core, spec = std::move(spec), slice, done = std::move(done),
                                        raw]() mutable {
    const std::uint64_t id = submit_task(*core, std::move(spec), slice, std::move(done));
    if (id != 0) raw->bind_cancellation(id);
  });
}

}  // namespace detail

/// Persistent worker processes, reused across runs. Thread-safe: its state lives on a strand of
/// the executor it was given.
class CORUN_API ProcessPool {
 public:
  using executor_type = asio::any_io_executor;

  /// Starts the worker processes without blocking: tasks submitted before they are ready wait.
  /// Throws std::invalid_argument for bad options.
  ProcessPool(executor_type executor, PoolOptions options = {});
  /// Kills and reaps any worker still running (call async_shutdown first for a graceful end).
  ~ProcessPool();
  ProcessPool(const ProcessPool&) = delete;
  ProcessPool& operator=(const ProcessPool&) = delete;

  executor_type get_executor() const noexcept { return executor_; }
  /// Number of worker slots.
  std::size_t size() const noexcept { return detail::pool_size(*core_); }
  const PoolOptions& options() const noexcept { return detail::pool_options(*core_); }
  /// Process ids of the live workers (empty for a serial pool).
  std::vector<pid_t> worker_pids() const { return detail::pool_worker_pids(*core_); }

  /// Runs worker type W's `process` on `slice` of the array `iterator` describes.
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
    return async_execute_spec<W>(
        detail::make_task_spec(detail::require_registered(typeid(W)), iterator, std::nullopt),
        slice, std::forward<Token>(token));
  }
  /// The same, with the worker object's iterator and output array.
  template <class W, class Token = asio::default_completion_token_t<executor_type>>
  auto async_execute(const W& worker, Slice slice, Token&& token = {}) {
    return async_execute_spec<W>(detail::make_task_spec(detail::require_registered(typeid(W)),
                                                        worker.data_iterator(), worker.output()),
                                 slice, std::forward<Token>(token));
  }

  /// Completes when every worker has started (or one failed to: the exception says why).
  /// Completion signature: `void(std::exception_ptr)`.
  template <class Token = asio::default_completion_token_t<executor_type>>
  auto async_wait_ready(Token&& token = {}) {
    return asio::async_initiate<Token, void(std::exception_ptr)>(
        [](auto handler, detail::PoolCorePtr core) {
          detail::async_wait_ready_impl(
              core, std::make_unique<detail::HandlerCompletion<void, decltype(handler)>>(
                        std::move(handler), core));
        },
        token, core_);
  }

  /// Graceful shutdown: new tasks are refused, queued and running ones finish, then each
  /// worker runs its worker_exit hook and exits. Completion signature: `void(std::exception_ptr)`.
  template <class Token = asio::default_completion_token_t<executor_type>>
  auto async_shutdown(Token&& token = {}) {
    return asio::async_initiate<Token, void(std::exception_ptr)>(
        [](auto handler, detail::PoolCorePtr core) {
          detail::async_shutdown_impl(
              core, std::make_unique<detail::HandlerCompletion<void, decltype(handler)>>(
                        std::move(handler), core));
        },
        token, core_);
  }

  /// Kills every worker at once (SIGKILL) and reaps it; queued and running tasks complete with
  /// operation_aborted. The pool accepts no more tasks.
  void terminate() noexcept { detail::terminate_pool(*core_); }

  /// The shared state behind the pool (for WorkerOrchestrator).
  const detail::PoolCorePtr& core() const noexcept { return core_; }

 private:
  template <class W, class Token>
  auto async_execute_spec(std::shared_ptr<const detail::TaskSpec> spec, Slice slice,
                          Token&& token) {
    using R = detail::worker_result_t<W>;
    static_assert(std::is_void_v<R> || std::is_default_constructible_v<R>,
                  "async_execute completes with (exception_ptr, R): R must be default "
                  "constructible, as the value that accompanies an error");
    return asio::async_initiate<Token, typename detail::execute_signature<R>::type>(
        [](auto handler, detail::PoolCorePtr core, std::shared_ptr<const detail::TaskSpec> s,
           Slice sl) { detail::start_task<R>(core, std::move(s), sl, std::move(handler)); },
        token, core_, std::move(spec), slice);
  }

  executor_type executor_;
  detail::PoolCorePtr core_;
};

}  // namespace corun
