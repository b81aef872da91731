/// \file
/// The per-process records of an orchestrator run's report (parent/orchestrator side).
/// Side: parent.
#include "front/process_records.hpp"

#include "seam/worker_timeline.hpp"

#include <algorithm>
#include <tuple>

namespace corun::detail {

void ProcessRecords::account(const TaskRecord& record) {
  if (record.pid == 0) return;  // never reached a worker
  auto [it, added] = index_.try_emplace(record.pid, processes_.size());
  if (added) {
    WorkerProcessRecord& p = processes_.emplace_back();
    p.worker_id = record.worker_id;
    p.pid = record.pid;
  }
  if (record.started == TaskRecord::time_point{} || record.finished < record.started) return;
  WorkerProcessRecord& p = processes_[it->second];
  ++p.tasks;
  p.working += record.finished - record.started;
}

void ProcessRecords::add_timeline(const TaskService& service,
                                  std::chrono::steady_clock::time_point started,
                                  std::chrono::steady_clock::time_point end) {
  const auto* source = dynamic_cast<const WorkerTimelineSource*>(&service);
  if (source == nullptr || started == std::chrono::steady_clock::time_point{}) return;
  for (const WorkerProcessRecord& t : source->worker_timeline().overlapping(started, end)) {
    auto [it, added] = index_.try_emplace(t.pid, processes_.size());
    if (added) processes_.emplace_back();
    WorkerProcessRecord& p = processes_[it->second];
    // The timeline knows nothing of tasks: keep what the run counted.
    const std::size_t tasks = p.tasks;
    const auto working = p.working;
    p = t;
    p.tasks = tasks;
    p.working = working;
  }
  std::stable_sort(processes_.begin(), processes_.end(),
                   [](const WorkerProcessRecord& a, const WorkerProcessRecord& b) {
                     return std::tie(a.worker_id, a.launched) < std::tie(b.worker_id, b.launched);
                   });
}

}  // namespace corun::detail
