#pragma once
/// \file
/// corun's error codes, the error category, and the exceptions that carry task failures.
/// Side: both.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/slice.hpp>

#include <sys/types.h>
#include <string>
#include <system_error>
#include <vector>

namespace corun {

/// Error codes of corun operations; their category is corun::error_category().
enum class errc {
  /// A shared-memory segment of that name does not exist.
  segment_not_found = 1,
  /// A segment is smaller than the shape and element type say it must be.
  segment_too_small,
  /// /dev/shm has less free space than the array needs.
  not_enough_shared_memory,
  /// A segment of that name exists already (creation is exclusive).
  segment_exists,
  /// The element type in the metadata is not the element type the code reads.
  dtype_mismatch,
  /// The worker type was never passed to CORUN_REGISTER_WORKER.
  worker_not_registered,
  /// A message between parent and worker was malformed.
  protocol_error,
  /// A task's encoded result is larger than PoolOptions::max_result_bytes.
  result_too_large,
  /// `process` threw an exception.
  task_exception,
  /// The worker process died (signal or exit) while running the task.
  worker_crashed,
  /// The task ran longer than PoolOptions::task_timeout; its worker was killed.
  task_timeout,
  /// A worker process could not be started or did not complete its handshake.
  worker_start_failed,
  /// The pool is shutting down or was terminated.
  pool_closed,
  /// A shared-memory segment exists but this process may not open it (its mode or owner).
  permission_denied,
  /// A CpuSeries with no PU columns was exported: nothing ever sampled into it.
  no_cpu_samples,
  /// A task went past PoolOptions::worker_memory_limit (its allocation failed in the worker).
  memory_exceeded,
  /// The cluster rank that held or ran the task was lost (ClusterOptions::failure_timeout).
  rank_lost,
};

/// The category of corun::errc values.
CORUN_API const std::error_category& error_category() noexcept;

/// Makes an errc a std::error_code of corun::error_category() (found by argument-dependent
/// lookup, so `std::error_code ec = errc::pool_closed;` works).
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

/// An error raised by corun, with its code and a message naming the bad value.
class CORUN_API Error : public std::system_error {
 public:
  /// `what` names the bad value; code() is `code` in corun::error_category().
  Error(errc code, const std::string& what) : std::system_error(make_error_code(code), what) {}
};

/// How a task failed.
enum class TaskErrorKind {
  exception,  ///< `process` threw; `exception_type` and `message` say what.
  crashed,    ///< the worker process died: `signal` or `exit_code` say how.
  timeout,    ///< the task exceeded PoolOptions::task_timeout and its worker was killed.
  protocol,   ///< the task could not be run: unregistered worker, bad metadata, oversize result.
  /// The task went past PoolOptions::worker_memory_limit: `message` names the limit.
  memory_exceeded,
  /// On a cluster: the rank that ran the task, or held its rows, was lost (not heard from for
  /// ClusterOptions::failure_timeout); `rank` names it and `message` the rows whose data went
  /// with it. async_map's chunks never fail so: they are sent again to a surviving rank.
  rank_lost,
};

/// The enumerator's name: "exception", "crashed", "timeout", "protocol", "memory_exceeded" or
/// "rank_lost".
CORUN_API const char* to_string(TaskErrorKind kind) noexcept;

/// One failed task: which worker type, which slice, which process, and why.
struct CORUN_API TaskError {
  /// How it failed: says which of the fields below are set.
  TaskErrorKind kind = TaskErrorKind::exception;
  std::string worker;          ///< registered name of the worker type
  Slice slice;                 ///< the slice the task was running
  pid_t pid = 0;               ///< the worker process (0 in the serial pool... or when unknown)
  std::string exception_type;  ///< demangled type of the exception thrown by `process`
  std::string message;         ///< what() of that exception, or a description of the failure
  int signal = 0;              ///< the signal that killed the worker (kind crashed)
  int exit_code = -1;          ///< the worker's exit status (kind crashed, when it exited)
  int attempts = 1;            ///< how many times the task ran, retries included
  int rank = -1;               ///< MPI rank that ran it on a cluster; -1 otherwise

  /// One line naming the kind, worker, slice and cause.
  std::string describe() const;
};

/// A task failed; thrown at the `co_await` of pool.async_execute().
class CORUN_API TaskFailed : public Error {
 public:
  /// Its code is errc::task_exception, worker_crashed, task_timeout, protocol_error,
  /// memory_exceeded or rank_lost, by
  /// `error.kind`; its what() is error.describe().
  explicit TaskFailed(TaskError error);
  /// The failed task.
  const TaskError& error() const noexcept { return error_; }

 private:
  TaskError error_;
};

/// A run stopped on failure (OrchestratorOptions::on_error = fail_fast): carries the failures.
class CORUN_API RunError : public std::runtime_error {
 public:
  /// `errors` are the failed tasks (async_map: one per failed input, sorted by input); what()
  /// counts them and describes the first.
  explicit RunError(std::vector<TaskError> errors);
  /// The failed tasks.
  const std::vector<TaskError>& errors() const noexcept { return errors_; }

 private:
  std::vector<TaskError> errors_;
};

}  // namespace corun

template <>
struct std::is_error_code_enum<corun::errc> : std::true_type {};
