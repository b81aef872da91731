#pragma once
/// \file
/// The seam between what asks for tasks and what runs them.
/// Side: parent.
///
/// Front-ends (ProcessPool::async_execute, WorkerOrchestrator) describe one task as a TaskSpec
/// (which registered worker, which arrays) plus a Slice, hand it to a TaskService, and get
/// exactly one TaskResult back through its TaskCompletion. A TaskService decides where the task
/// runs: the local pool of worker processes, its serial stand-in, or (later) remote ranks. It
/// never knows which front-end asked, and a front-end never knows how tasks travel, so a new
/// transport or back-end plugs in here without touching the dispatcher or the orchestrator.
///
/// Threading: submit() and cancel() are called on executor() (a strand), and completions are
/// delivered there, one at a time.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/cancellation.hpp>
#include <corun/data_iterator.hpp>
#include <corun/detail/block_map.hpp>
#include <corun/error.hpp>
#include <corun/report.hpp>
#include <corun/retry.hpp>
#include <corun/slice.hpp>

#include <asio/any_io_executor.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>

namespace corun::detail {

/// Everything a worker needs to know about the work, encoded once per worker object (or per
/// async_map call).
struct TaskSpec {
  /// Unique in this process (make_task_spec and make_function_spec number them): a worker
  /// process receives a spec once and then knows it by this id.
  std::uint64_t id = 0;
  std::string worker_name;
  /// Whether tasks read rows of `iterator`'s array (a Worker), or only their argument (a
  /// function of async_map; then `iterator` is empty and slices number the inputs).
  bool reads_array = true;
  DataIterator iterator;
  std::optional<ArrayInfo> output;
  std::uint64_t input_inode = 0;   // which segments the names meant when the spec was made,
  std::uint64_t output_inode = 0;  // so workers need not revalidate their mappings per task
  std::string params;              ///< the encoded parameters every task of this spec sees
  /// Set on a cluster rank when `iterator` is the rank's segment of a distributed array: where
  /// its rows lie in the whole array, so that TaskContext::slice counts rows of the whole array.
  std::optional<BlockMap> block_map;
  std::string encoded;
};
/// Validates the metadata and encodes it; throws std::invalid_argument naming a bad field.
CORUN_API std::shared_ptr<const TaskSpec> make_task_spec(std::string worker_name,
                                                         DataIterator iterator,
                                                         std::optional<ArrayInfo> output,
                                                         std::string params = {},
                                                         std::optional<BlockMap> block_map = {});
/// A spec for a registered function that reads no array, only each task's argument.
CORUN_API std::shared_ptr<const TaskSpec> make_function_spec(std::string function_name,
                                                             std::string params = {});

/// How one task ended. `error` is null on success (then `payload` holds the encoded result), a
/// corun::TaskFailed (with `task_error` set), a corun::Error (the service failed or closed), or
/// std::system_error(operation_aborted) for a cancelled task.
struct TaskResult {
  std::exception_ptr error;
  std::optional<TaskError> task_error;
  std::string payload;
  TaskRecord record;
};

/// How one task is scheduled, beside what it runs: every TaskService honours these (the local
/// pool, its serial stand-in, and a cluster, which carries them to the rank that runs the task).
struct TaskOptions {
  /// Higher runs first among the tasks waiting for a worker (see lib/pool/dispatcher.hpp for
  /// the aging rule that keeps low priorities from starving).
  int priority = 0;
  /// How the task runs again when it fails; null: PoolOptions::retries (immediate, any kind but
  /// protocol). Validated by whoever made it.
  std::shared_ptr<const RetryPolicy> retry{};
  /// Waits this long before the task first queues (an async_map input that threw and is run
  /// again after its backoff); cancellable like a retry's backoff.
  std::chrono::milliseconds delay{0};
};

/// Receives a task's result on the service's executor.
class CORUN_API TaskCompletion {
 public:
  virtual ~TaskCompletion() = default;
  virtual void complete(TaskResult&& result) = 0;
};

/// Something that runs a task spec on a slice and can cancel it.
class CORUN_API TaskService {
 public:
  virtual ~TaskService() = default;
  /// The strand that submit(), cancel() and every completion run on.
  virtual asio::any_io_executor executor() const = 0;
  /// Queues a task: `spec` over `slice`, with `argument` (encoded bytes only this task sees,
  /// such as a chunk of async_map's inputs; empty for array workers), scheduled as `options`
  /// say. `done` is completed exactly once, never from inside this call. Returns the task's
  /// id, or 0 when the service is closed (then `done` gets the reason).
  virtual std::uint64_t submit(std::shared_ptr<const TaskSpec> spec, Slice slice,
                               std::string argument, const TaskOptions& options,
                               std::unique_ptr<TaskCompletion> done) = 0;
  /// Cancels a task: a queued one (or one waiting in a retry's backoff) completes with
  /// operation_aborted at once; a running one is drained (its result discarded) or its worker
  /// killed. Unknown ids are ignored.
  virtual void cancel(std::uint64_t task_id, CancelMode mode) = 0;
  /// How many tasks a front-end should keep submitted at once (backpressure).
  virtual std::size_t max_tasks_active() const = 0;
  /// How many tasks run at the same time (worker processes): what a front-end spreads work
  /// over to keep them balanced.
  virtual std::size_t concurrency() const = 0;
};

/// std::system_error(asio::error::operation_aborted).
CORUN_API std::exception_ptr aborted_error();
/// True for the exception aborted_error() makes.
CORUN_API bool is_aborted(const std::exception_ptr& error);
/// Turns `result` into the failure `error` describes: its outcome, task_error and a TaskFailed.
CORUN_API void mark_failed(TaskResult& result, TaskError error);

}  // namespace corun::detail
