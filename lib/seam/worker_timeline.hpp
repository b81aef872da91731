#pragma once
/// \file
/// WorkerTimeline: when each worker process of a pool was launched, said hello, was ready and
/// ended, for RunReport::insights(). WorkerTimelineSource: what a task service that keeps one
/// offers (the orchestrator finds it by a cross-cast, so the TaskService seam stays as it is).
/// Side: parent.

#include <corun/report.hpp>

#include <sys/types.h>
#include <chrono>
#include <cstddef>
#include <deque>
#include <mutex>
#include <vector>

namespace corun::detail {

/// Any thread may call it. launched() starts an entry; the other calls complete the newest
/// entry of that pid which has not ended (starting one if there is none). Beyond `capacity`
/// entries, the oldest ended one is dropped.
class WorkerTimeline {
 public:
  using Clock = std::chrono::steady_clock;

  explicit WorkerTimeline(std::size_t capacity = 1024) : capacity_(capacity) {}

  void launched(pid_t pid, Clock::time_point when);
  void hello(pid_t pid, int worker_id, Clock::time_point when = Clock::now());
  void ready(pid_t pid, int worker_id, Clock::time_point when = Clock::now());
  void ended(pid_t pid, Clock::time_point when = Clock::now());

  /// The processes whose life overlaps [from, to]: launched by `to`, not ended before `from`.
  std::vector<WorkerProcessRecord> overlapping(Clock::time_point from, Clock::time_point to) const;

 private:
  WorkerProcessRecord& append(pid_t pid);
  WorkerProcessRecord& entry(pid_t pid);

  mutable std::mutex mutex_;
  std::size_t capacity_;
  std::deque<WorkerProcessRecord> entries_;
};

class WorkerTimelineSource {
 public:
  virtual const WorkerTimeline& worker_timeline() const noexcept = 0;

 protected:
  ~WorkerTimelineSource() = default;
};

}  // namespace corun::detail
