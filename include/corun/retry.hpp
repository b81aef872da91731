#pragma once
/// \file
/// RetryPolicy: how often a failed task runs again, how long it waits first, and which failures
/// are worth another run. Given per orchestrator (OrchestratorOptions::retry) and per map
/// (MapOptions::retry); without one, a task follows the pool's PoolOptions::retries.
/// Side: parent.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/error.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace corun {

/// How long a failed task waits before it runs again: `initial` before its second run, then
/// `factor` times longer before each next one, never longer than `max`. The wait is a timer on
/// the pool's strand: no worker and no thread is held while a task waits.
struct Backoff {
  std::chrono::milliseconds initial{100};  ///< before the second run (0: at once)
  double factor = 2.0;                     ///< growth per further run; at least 1
  std::chrono::milliseconds max{10'000};   ///< the longest wait; at least `initial`

  /// The wait before re-run number `retry` (1: the second run): min(initial * factor^(retry-1),
  /// max). Zero for retry < 1.
  CORUN_API std::chrono::milliseconds delay(int retry) const noexcept;
};

/// Which failures a RetryPolicy runs again. TaskErrorKind::protocol (the task cannot run at all:
/// an unregistered worker, bad metadata, an oversize result) is never retried: it would fail the
/// same way each time. Nor is TaskErrorKind::rank_lost: the rows a lost cluster rank held are
/// gone with it (async_map's chunks, which carry their inputs, are sent again to a surviving
/// rank without a policy, and do not count as attempts).
struct RetryOn {
  /// The kinds retried: any of exception, crashed, timeout and memory_exceeded.
  std::vector<TaskErrorKind> kinds{TaskErrorKind::exception, TaskErrorKind::crashed,
                                   TaskErrorKind::timeout, TaskErrorKind::memory_exceeded};
  /// For kind exception: the exception types retried, as TaskError::exception_type names them
  /// (the demangled name of the thrown object's dynamic type, e.g. "std::runtime_error" or
  /// "app::Transient"); compared exactly, so a base class does not match its derived types.
  /// Empty: every exception.
  std::vector<std::string> exception_types{};

  /// Whether `error` is of a kind (and, for an exception, of a type) this retries.
  CORUN_API bool matches(const TaskError& error) const;
};

/// How a failed task runs again. `attempts` counts runs, the first one included, as
/// TaskError::attempts does: `attempts = 3` runs a task at most three times (two retries), the
/// same as PoolOptions::retries = 2 with no backoff. A task that still fails, or fails in a way
/// `retry_on` does not pick, is reported with TaskError::attempts = the runs it had.
///
/// A task waiting in its backoff holds no worker; cancelling it completes it with
/// operation_aborted at once, and a pool's shutdown waits for it (terminate does not). A crashed
/// or timed-out task's next run is on a fresh worker process (its old one is dead). A retried
/// task keeps its priority and goes first among the tasks of that priority.
///
/// \code
/// corun::OrchestratorOptions options{
///     .retry = corun::RetryPolicy{.attempts = 3,
///                                 .backoff = {.initial = 50ms, .factor = 2, .max = 1s},
///                                 .retry_on = {.kinds = {corun::TaskErrorKind::exception},
///                                              .exception_types = {"app::Transient"}}}};
/// \endcode
struct RetryPolicy {
  int attempts = 3;    ///< runs in all, the first included; at least 1 (1: never retried)
  Backoff backoff{};   ///< the wait before each re-run
  RetryOn retry_on{};  ///< which failures are re-run

  /// Whether a task that failed with `error` after `error.attempts` runs runs again.
  CORUN_API bool should_retry(const TaskError& error) const;
  /// Throws std::invalid_argument naming the first bad value: attempts < 1, a negative initial,
  /// a factor below 1 (or not a number), max < initial, an empty or protocol kind, an empty type
  /// name. The orchestrator's and the map's constructors call it.
  CORUN_API void validate() const;
};

}  // namespace corun
