/// \file
/// Task records and task errors from what a worker reported, or how it ended.
/// Side: parent.
#include "pool/task_outcome.hpp"

#include "pool/child_process.hpp"

#include <corun/error.hpp>

#include <sys/wait.h>
#include <cstdio>
#include <string>
#include <utility>

namespace corun::detail {

namespace {
TaskError error_for(const PoolTask& task, const WorkerSlot& slot) {
  TaskError e;
  e.worker = task.spec->worker_name;
  e.slice = task.slice;
  e.pid = slot.pid();
  e.attempts = task.attempts;
  return e;
}
}  // namespace

TaskRecord record_of(const PoolTask& task, const WorkerSlot& slot) {
  TaskRecord rec;
  rec.worker = task.spec->worker_name;
  rec.slice = task.slice;
  rec.worker_id = slot.index();
  rec.pid = slot.pid();
  rec.submitted = task.submitted;
  rec.attempts = task.attempts;
  return rec;
}

TaskRecord record_of(const PoolTask& task, const WorkerSlot& slot, const proto::ResultHead& head) {
  using Clock = std::chrono::steady_clock;
  TaskRecord rec = record_of(task, slot);
  rec.started = Clock::time_point(std::chrono::nanoseconds(head.started_ns));
  rec.finished = Clock::time_point(std::chrono::nanoseconds(head.finished_ns));
  rec.cpu_start = head.cpu_start;
  rec.cpu_end = head.cpu_end;
  rec.cpu_time = std::chrono::nanoseconds(head.cpu_time_ns);
  return rec;
}

std::string bytes_and_mib(std::uint64_t bytes) {
  const std::uint64_t mib = std::uint64_t{1} << 20;
  std::string text = std::to_string(bytes) + " bytes (";
  if (bytes % mib == 0) {
    text += std::to_string(bytes / mib);
  } else {
    char mibs[32];
    std::snprintf(mibs, sizeof mibs, "%.1f", static_cast<double>(bytes) / static_cast<double>(mib));
    text += mibs;
  }
  return text + " MiB)";
}

TaskError error_of(const PoolTask& task, const WorkerSlot& slot, const proto::Result& result,
                   std::uint64_t memory_limit) {
  TaskError error = error_for(task, slot);
  error.exception_type = result.exception_type;
  error.message = result.message;
  switch (result.head.status) {
    case proto::Status::out_of_memory:
      if (memory_limit == 0) {
        error.kind = TaskErrorKind::exception;  // a bad_alloc like any other exception
        break;
      }
      error.kind = TaskErrorKind::memory_exceeded;
      error.message = "an allocation failed (" + result.exception_type + ": " + result.message +
                      ") under PoolOptions::worker_memory_limit = " + bytes_and_mib(memory_limit) +
                      ", a limit on the worker's address space that shared arrays it maps count "
                      "towards; raise PoolOptions::worker_memory_limit, or make the task use less "
                      "memory";
      break;
    case proto::Status::protocol:
      error.kind = TaskErrorKind::protocol;
      break;
    default:
      error.kind = TaskErrorKind::exception;
      break;
  }
  return error;
}

TaskError error_of(const PoolTask& task, const WorkerSlot& slot, const SlotEnd& end,
                   std::chrono::milliseconds task_timeout) {
  TaskError error = error_for(task, slot);
  if (end.reason == EndReason::timed_out) {
    error.kind = TaskErrorKind::timeout;
    error.message =
        "exceeded task_timeout of " + std::to_string(task_timeout.count()) + " ms; worker killed";
  } else if (end.reason == EndReason::protocol_violation) {
    error.kind = TaskErrorKind::protocol;
    error.message = "protocol violation: " + end.detail;
  } else {
    error.kind = TaskErrorKind::crashed;
    if (WIFSIGNALED(end.wait_status)) error.signal = WTERMSIG(end.wait_status);
    if (WIFEXITED(end.wait_status)) error.exit_code = WEXITSTATUS(end.wait_status);
    error.message = "worker process " + describe_wait_status(end.wait_status);
  }
  return error;
}

}  // namespace corun::detail
