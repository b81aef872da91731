#pragma once
/// \file
/// WorkerSlot: one worker of the pool (a process, or the serial stand-in) as a state machine
/// with the tasks sent to it, and SlotEvents, what it tells the pool.
/// Side: parent.

#include "protocol/protocol.hpp"

#include <corun/detail/task_service.hpp>

#include <sys/types.h>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

namespace corun::detail {

/// starting -> initializing -> ready <-> busy -> stopping -> ended; any state may end.
enum class SlotState {
  starting,      ///< launched; waiting for the worker's hello
  initializing,  ///< worker_init is running in the worker
  ready,         ///< idle
  busy,          ///< tasks are at the worker; the first one is running
  stopping,      ///< asked to run worker_exit and exit
  ended,
};

/// Why a worker ended: the first cause wins.
enum class EndReason {
  exited,              ///< it exited by itself (after a shutdown: cleanly)
  crashed,             ///< a signal or a non-zero exit while it had work or was starting
  killed,              ///< the pool killed it: cancellation with CancelMode::kill, or terminate
  timed_out,           ///< the pool killed it: its task exceeded task_timeout
  handshake_timeout,   ///< it did not say hello within handshake_timeout
  init_failed,         ///< worker_init threw
  init_timeout,        ///< the pool killed it: worker_init ran past worker_init_timeout
  exit_timeout,        ///< the pool killed it: its exit hooks ran past worker_exit_timeout
  protocol_violation,  ///< it sent a malformed or unexpected message
  launch_failed,       ///< the process could not be started at all
};

/// A task at a worker.
struct SlotTask {
  std::uint64_t id = 0;
  std::shared_ptr<const TaskSpec> spec;
  Slice slice;
  std::shared_ptr<const std::string> argument;  ///< null when the task has none
};

/// How a slot ended, with the tasks still at it (the first had started, the others had not).
struct SlotEnd {
  EndReason reason = EndReason::exited;
  int wait_status = 0;       ///< as waitpid reports it (0 when there was no process)
  std::string detail;        ///< the init exception, the protocol error, the launch error
  bool had_started = false;  ///< it reached ready: a failure now is not a failure to start
  SlotState was = SlotState::starting;  ///< its state when it ended
  std::deque<SlotTask> unfinished;
};

class WorkerSlot;

/// What a slot tells the pool. Always called from a handler on the pool's strand, never from
/// inside a call the pool made into the slot.
class SlotEvents {
 public:
  virtual void on_slot_ready(WorkerSlot& slot) = 0;
  /// A task's result arrived; it is no longer at the slot.
  virtual void on_task_result(WorkerSlot& slot, SlotTask task, const proto::Result& result) = 0;
  virtual void on_slot_ended(WorkerSlot& slot, SlotEnd end) = 0;

 protected:
  ~SlotEvents() = default;
};

class WorkerSlot {
 public:
  WorkerSlot(int index, SlotEvents& events) : index_(index), events_(&events) {}
  virtual ~WorkerSlot() = default;
  WorkerSlot(const WorkerSlot&) = delete;
  WorkerSlot& operator=(const WorkerSlot&) = delete;

  int index() const noexcept { return index_; }
  SlotState state() const noexcept { return state_; }
  /// The worker process (this process for the serial stand-in; 0 before it exists).
  pid_t pid() const noexcept { return pid_; }
  const std::deque<SlotTask>& tasks() const noexcept { return tasks_; }
  bool accepting() const noexcept {
    return state_ == SlotState::ready || state_ == SlotState::busy;
  }

  /// Starts the worker; success or failure is told through SlotEvents.
  virtual void start() = 0;
  /// Sends a task; only while accepting().
  virtual void run(SlotTask task) = 0;
  /// Kills the worker if task `id` is the one running (CancelMode::kill); true if it did.
  virtual bool kill_running(std::uint64_t id) = 0;
  /// Graceful end: the worker runs worker_exit and exits once its tasks are done. Only while
  /// accepting() and idle.
  virtual void stop() = 0;
  /// Ends at once without telling SlotEvents anything more (the pool is going away).
  virtual void detach() noexcept = 0;

 protected:
  void set_state(SlotState state) noexcept { state_ = state; }
  SlotEvents* events() const noexcept { return events_; }
  void forget_events() noexcept { events_ = nullptr; }

  const int index_;
  pid_t pid_ = 0;
  std::deque<SlotTask> tasks_;

 private:
  SlotEvents* events_;
  SlotState state_ = SlotState::starting;
};

}  // namespace corun::detail
