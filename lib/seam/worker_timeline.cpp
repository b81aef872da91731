/// \file
/// The start-up record of a pool's worker processes.
/// Side: parent.
#include "seam/worker_timeline.hpp"

#include <algorithm>

namespace corun::detail {

WorkerProcessRecord& WorkerTimeline::append(pid_t pid) {
  if (entries_.size() >= capacity_) {
    const auto done = std::find_if(entries_.begin(), entries_.end(),
                                   [](const auto& r) { return r.ended != Clock::time_point{}; });
    entries_.erase(done != entries_.end() ? done : entries_.begin());
  }
  WorkerProcessRecord& r = entries_.emplace_back();
  r.pid = pid;
  return r;
}

WorkerProcessRecord& WorkerTimeline::entry(pid_t pid) {
  // The newest process of that pid that has not ended (the kernel reuses pids).
  const auto live = std::find_if(entries_.rbegin(), entries_.rend(), [pid](const auto& r) {
    return r.pid == pid && r.ended == Clock::time_point{};
  });
  return live != entries_.rend() ? *live : append(pid);
}

void WorkerTimeline::launched(pid_t pid, Clock::time_point when) {
  const std::lock_guard lock(mutex_);
  append(pid).launched = when;
}

void WorkerTimeline::hello(pid_t pid, int worker_id, Clock::time_point when) {
  if (pid <= 0) return;  // a slot whose process never started
  const std::lock_guard lock(mutex_);
  WorkerProcessRecord& r = entry(pid);
  r.worker_id = worker_id;
  r.hello = when;
}

void WorkerTimeline::ready(pid_t pid, int worker_id, Clock::time_point when) {
  if (pid <= 0) return;  // a slot whose process never started
  const std::lock_guard lock(mutex_);
  WorkerProcessRecord& r = entry(pid);
  r.worker_id = worker_id;
  r.ready = when;
}

void WorkerTimeline::ended(pid_t pid, Clock::time_point when) {
  if (pid <= 0) return;  // a slot whose process never started
  const std::lock_guard lock(mutex_);
  entry(pid).ended = when;
}

std::vector<WorkerProcessRecord> WorkerTimeline::overlapping(Clock::time_point from,
                                                             Clock::time_point to) const {
  const std::lock_guard lock(mutex_);
  std::vector<WorkerProcessRecord> out;
  for (const WorkerProcessRecord& r : entries_) {
    const Clock::time_point began = r.launched != Clock::time_point{} ? r.launched : r.ready;
    if (began > to) continue;
    if (r.ended != Clock::time_point{} && r.ended < from) continue;
    out.push_back(r);
  }
  return out;
}

}  // namespace corun::detail
