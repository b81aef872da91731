#pragma once
/// \file
/// What a run reports: one TaskRecord per task, the failures, the wall time and the CPU series.
/// Side: parent.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/cpu_series.hpp>
#include <corun/error.hpp>
#include <corun/slice.hpp>

#include <sys/types.h>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace corun {

/// How a task ended.
enum class TaskOutcome {
  ok,
  exception,
  crashed,
  timeout,
  protocol,
  cancelled,
  memory_exceeded,
  rank_lost,
};
/// The enumerator's name ("ok", "timeout", ...), as the tasks CSV writes it.
CORUN_API const char* to_string(TaskOutcome outcome) noexcept;

/// What happened to one task: where and when it ran, and how it ended.
struct TaskRecord {
  /// Times on std::chrono::steady_clock (RunReport::started is the run's start).
  using time_point = std::chrono::steady_clock::time_point;
  std::string worker;            ///< registered name of the worker type
  std::size_t worker_index = 0;  ///< index of the worker object in the orchestrator's list
  /// The rows it ran (rows of the whole DistributedArray on a cluster).
  Slice slice;
  int worker_id = -1;                    ///< pool slot of the process that ran it
  pid_t pid = 0;                         ///< worker process (the parent's pid in a serial pool)
  int cpu_start = -1;                    ///< PU (OS index) at the start of process (sched_getcpu)
  int cpu_end = -1;                      ///< PU at its end
  time_point submitted{};                ///< when the pool accepted the task
  time_point started{};                  ///< when process began, in the worker
  time_point finished{};                 ///< when process returned, in the worker
  std::chrono::nanoseconds cpu_time{0};  ///< CPU time the worker thread spent in process
  /// How its last attempt ended.
  TaskOutcome outcome = TaskOutcome::ok;
  /// How many times it ran, retries included.
  int attempts = 0;
  int rank = -1;  ///< MPI rank that ran it on a cluster (corun::ClusterPool); -1 otherwise
};

/// One worker process as a run saw it: when the pool started it (from the pool's own record;
/// a default time_point when the pool does not know) and what it did for the run.
struct WorkerProcessRecord {
  /// Times on std::chrono::steady_clock, as TaskRecord's.
  using time_point = std::chrono::steady_clock::time_point;
  int worker_id = -1;  ///< pool slot
  /// Its process id.
  pid_t pid = 0;
  time_point launched{};  ///< the pool started launching it
  time_point hello{};     ///< it reported to the pool (start-up = hello - launched)
  time_point ready{};     ///< worker_init returned (init = ready - hello)
  time_point ended{};     ///< it ended; {} while it lives
  std::size_t tasks = 0;  ///< tasks of the run it ran to the end (a result or an exception)
  std::chrono::nanoseconds working{0};  ///< their time in `process`, measured in the worker
};

/// One row of RunInsights: a worker process during a run.
struct WorkerInsight {
  /// Pool slot.
  int worker_id = -1;
  /// Its process id.
  pid_t pid = 0;
  std::optional<std::chrono::nanoseconds> start_up;  ///< launch to hello, if the pool knows
  std::optional<std::chrono::nanoseconds> init;      ///< hello to ready (worker_init), if known
  /// Tasks of the run it ran to the end (a result or an exception).
  std::size_t tasks = 0;
  std::chrono::nanoseconds working{0};  ///< in `process`
  /// Alive and ready during the run, but not in `process`: waiting for work, or for the
  /// parent to send, receive and call back.
  std::chrono::nanoseconds waiting{0};
};

/// mpire's worker insights for a corun run: where each worker process's time went.
struct CORUN_API RunInsights {
  std::vector<WorkerInsight> workers;  ///< by worker_id, then by launch
  std::size_t worker_slots = 0;        ///< distinct worker_ids
  /// The run's wall time (RunReport::wall_time).
  std::chrono::nanoseconds wall_time{0};
  std::chrono::nanoseconds working{0};  ///< sum over the workers
  std::chrono::nanoseconds waiting{0};  ///< sum over the workers
  /// working / (wall_time x worker_slots): the share of the pool's capacity spent in
  /// `process` (0 when the run took no time).
  double efficiency = 0;

  /// A table, one row per worker process, then the totals and the efficiency.
  std::string to_string() const;
};

/// The outcome of a run.
struct RunReport {
  std::vector<TaskRecord> tasks;    ///< one per task, in completion order (if record_tasks)
  std::vector<TaskError> failures;  ///< the tasks that failed
  std::size_t tasks_done = 0;       ///< tasks whose result reached process_callback
  /// Tasks that failed (as many as `failures`).
  std::size_t tasks_failed = 0;
  /// When the run started: time 0 of the tasks CSV.
  std::chrono::steady_clock::time_point started{};
  /// The same instant on the wall clock.
  std::chrono::system_clock::time_point started_wall{};
  /// From the start of the run to its completion.
  std::chrono::nanoseconds wall_time{0};
  /// Per-PU utilisation while the run was in flight (empty unless monitor_cpu_usage).
  CpuSeries cpu;
  /// The worker processes that were alive during the run or ran its tasks (kept even
  /// without record_tasks).
  std::vector<WorkerProcessRecord> processes;

  /// wall_time in seconds.
  double wall_seconds() const { return std::chrono::duration<double>(wall_time).count(); }
  /// Per worker process: start-up and init time, tasks, time working and waiting; efficiency.
  CORUN_API RunInsights insights() const;
};

/// Writes one row per task of a run: task, worker, slice_start, slice_end, pid, pu,
/// t_start, t_end (seconds since the run started), outcome. Atomic: a temporary file beside
/// `path` is renamed over it; throws std::system_error naming the path when it cannot be written.
CORUN_API void write_tasks_csv(const RunReport& report, const std::filesystem::path& path);

}  // namespace corun
