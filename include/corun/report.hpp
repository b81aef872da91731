#pragma once
/// \file
/// What a run reports: one TaskRecord per task, the failures, the wall time and the CPU series.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/cpu_monitor.hpp>
#include <corun/error.hpp>
#include <corun/slice.hpp>

#include <sys/types.h>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace corun {

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
  int rank = -1;  ///< MPI rank that ran it on a cluster (corun::ClusterPool); -1 otherwise
};

/// The outcome of a run.
struct RunReport {
  std::vector<TaskRecord> tasks;    ///< one per task, in completion order (if record_tasks)
  std::vector<TaskError> failures;  ///< the tasks that failed
  std::size_t tasks_done = 0;       ///< tasks whose result reached process_callback
  std::size_t tasks_failed = 0;
  std::chrono::steady_clock::time_point started{};
  std::chrono::system_clock::time_point started_wall{};
  std::chrono::nanoseconds wall_time{0};
  /// Per-PU utilisation while the run was in flight (empty unless monitor_cpu_usage).
  CpuSeries cpu;

  double wall_seconds() const { return std::chrono::duration<double>(wall_time).count(); }
};

/// Writes one row per task of a run: task, worker, slice_start, slice_end, pid, pu,
/// t_start, t_end (seconds since the run started), outcome. Atomic: a temporary file beside
/// `path` is renamed over it; throws std::system_error naming the path when it cannot be written.
CORUN_API void write_tasks_csv(const RunReport& report, const std::filesystem::path& path);

}  // namespace corun
