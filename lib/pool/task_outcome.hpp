#pragma once
/// \file
/// PoolTask, one entry of the pool's task table, and how the way it ended at a worker becomes
/// what its front-end hears: the TaskRecord, and the TaskError of a failure.
/// Side: parent.

#include "pool/worker_slot.hpp"

#include <corun/detail/task_service.hpp>

#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace corun::detail {

struct PoolTask {
  std::shared_ptr<const TaskSpec> spec;
  Slice slice;
  std::shared_ptr<const std::string> argument;  ///< shared with the slot it is sent to
  std::unique_ptr<TaskCompletion> done;
  std::chrono::steady_clock::time_point submitted;
  int attempts = 0;
  bool abandoned = false;  ///< cancelled while at a worker: its result is discarded
  int worker = -1;         ///< the slot it was sent to
  int priority = 0;
  std::shared_ptr<const RetryPolicy> retry;  ///< null: PoolOptions::retries
  /// Set while the task waits out a backoff (neither queued nor at a worker).
  std::unique_ptr<asio::steady_timer> backoff;
};

/// Where and when it ran, as far as the parent knows.
TaskRecord record_of(const PoolTask& task, const WorkerSlot& slot);
/// The same, with the times the worker measured.
TaskRecord record_of(const PoolTask& task, const WorkerSlot& slot, const proto::ResultHead& head);
/// A result message that reports a failure (`process` threw, or the task could not run). A
/// std::bad_alloc under a `memory_limit` (PoolOptions::worker_memory_limit; 0: none) is
/// memory_exceeded.
TaskError error_of(const PoolTask& task, const WorkerSlot& slot, const proto::Result& result,
                   std::uint64_t memory_limit);
/// "268435456 bytes (256 MiB)".
std::string bytes_and_mib(std::uint64_t bytes);
/// The running task of a worker that ended.
TaskError error_of(const PoolTask& task, const WorkerSlot& slot, const SlotEnd& end,
                   std::chrono::milliseconds task_timeout);

}  // namespace corun::detail
