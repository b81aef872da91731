#pragma once
/// \file
/// The per-process part of an orchestrator run's RunReport (parent/orchestrator side): the
/// tasks and working time of each worker process, merged with what the pool's timeline knows
/// of its start-up, since RunReport::insights() reads both off one record per process.
/// Side: parent.

#include <corun/detail/task_service.hpp>
#include <corun/report.hpp>

#include <sys/types.h>
#include <chrono>
#include <cstddef>
#include <unordered_map>
#include <vector>

namespace corun::detail {

/// One WorkerProcessRecord per pid in `processes`, filled as the run's tasks come back.
class ProcessRecords {
 public:
  explicit ProcessRecords(std::vector<WorkerProcessRecord>& processes) : processes_(processes) {}

  /// Adds a task's work to the record of the process that ran it.
  void account(const TaskRecord& record);

  /// Adds what `service` knows of the start-up of its processes alive in [started, end] (a
  /// service without a timeline: nothing), then sorts the records by slot and launch.
  void add_timeline(const TaskService& service, std::chrono::steady_clock::time_point started,
                    std::chrono::steady_clock::time_point end);

 private:
  std::vector<WorkerProcessRecord>& processes_;
  std::unordered_map<pid_t, std::size_t> index_;  ///< pid: into processes_
};

}  // namespace corun::detail
