#pragma once
/// \file
/// Dispatcher: which worker gets the next task. The queue of waiting tasks, each worker's load
/// and its pipeline depth, as plain data: no I/O, no processes, no executor.
/// Side: parent.
///
/// Priorities: every waiting task has an integer priority (OrchestratorOptions::priority,
/// MapOptions::priority; 0 by default). next() takes the front task of the highest priority
/// that waits, first come first served within a priority, with one exception that keeps any
/// priority from starving: each priority that has tasks waiting counts the dispatches that went
/// to another priority since it last got one (its bypass count), and once that count reaches
/// Depth::max_bypass the next dispatch goes to it instead (when several are due, to the one
/// passed over most, the higher priority on a tie). So a waiting task at the front of its
/// priority gets a worker after at most max_bypass + (priorities waiting - 1) dispatches, and a
/// low-priority batch still advances by one task in max_bypass + 1 while a higher one runs. A
/// priority whose queue empties forgets its count.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace corun::detail {

class Dispatcher {
 public:
  /// Tasks kept at one worker lie in [min_depth, max_depth]: enough for `queued_work` of its
  /// recent task times, so tiny tasks cost little more than their syscalls while long tasks
  /// stay at min_depth and balance over the workers.
  struct Depth {
    std::size_t min = 2;
    std::size_t max = 32;
    std::chrono::nanoseconds queued_work = std::chrono::microseconds(250);
    /// Dispatches to other priorities a waiting priority lets pass before it gets the next one
    /// (the aging rule above); at least 1.
    std::size_t max_bypass = 32;
  };
  struct Assignment {
    std::uint64_t task = 0;
    std::size_t worker = 0;
  };

  Dispatcher(std::size_t workers, Depth depth);

  /// A new task waits at the back of its priority.
  void enqueue(std::uint64_t task, int priority = 0);
  /// A task to run again (a retry, or one that never started at a worker that died) goes first
  /// within its priority.
  void requeue(std::uint64_t task, int priority = 0);
  /// Takes a waiting task out (it was cancelled); false when it is not waiting.
  bool remove(std::uint64_t task);
  std::size_t waiting() const noexcept { return waiting_; }
  /// Forgets every waiting task (the pool failed them all).
  void clear_waiting() noexcept;

  /// Whether worker `w` takes tasks (it is ready or busy).
  void set_accepting(std::size_t w, bool accepting);
  /// The task due (see the priorities above) and the accepting worker with the fewest tasks
  /// below its depth (the lowest index on ties); nothing when no task waits or no worker has
  /// room. Counts the task at it.
  std::optional<Assignment> next();
  /// A task at `w` finished after running for `took`.
  void finished(std::size_t w, std::chrono::nanoseconds took);
  /// `w` is a new process: no tasks, no history, not accepting until it is ready.
  void reset(std::size_t w);

  std::size_t at_worker(std::size_t w) const { return workers_.at(w).tasks; }
  /// How many tasks worker `w` may hold now.
  std::size_t depth(std::size_t w) const;

 private:
  struct Load {
    bool accepting = false;
    std::size_t tasks = 0;
    std::chrono::nanoseconds mean_task_time{0};  // moving average of its recent tasks
  };

  /// The tasks of one priority, and how many dispatches passed them by.
  struct Level {
    int priority = 0;
    std::deque<std::uint64_t> queue;
    std::size_t bypassed = 0;
  };

  /// The level of `priority`, made when missing; levels_ stays sorted, highest first.
  Level& level(int priority);
  /// The level next() takes from: the highest, unless one passed over max_bypass times is due.
  std::size_t due_level() const noexcept;

  Depth depth_;
  std::vector<Load> workers_;
  /// Highest priority first. Empty levels are kept (a queue that empties and refills, as the
  /// default priority's does all the time, costs no allocation) until there are many.
  std::vector<Level> levels_;
  std::size_t waiting_ = 0;
};

}  // namespace corun::detail
