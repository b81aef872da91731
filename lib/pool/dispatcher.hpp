#pragma once
/// \file
/// Dispatcher: which worker gets the next task. The queue of waiting tasks, each worker's load
/// and its pipeline depth, as plain data: no I/O, no processes, no executor.
/// Side: parent.

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
  };
  struct Assignment {
    std::uint64_t task = 0;
    std::size_t worker = 0;
  };

  Dispatcher(std::size_t workers, Depth depth);

  /// A new task waits at the back.
  void enqueue(std::uint64_t task);
  /// A task to run again (a retry, or one that never started at a worker that died) goes first.
  void requeue(std::uint64_t task);
  /// Takes a waiting task out (it was cancelled); false when it is not waiting.
  bool remove(std::uint64_t task);
  std::size_t waiting() const noexcept { return queue_.size(); }
  /// Forgets every waiting task (the pool failed them all).
  void clear_waiting() noexcept { queue_.clear(); }

  /// Whether worker `w` takes tasks (it is ready or busy).
  void set_accepting(std::size_t w, bool accepting);
  /// The front task and the accepting worker with the fewest tasks below its depth (the lowest
  /// index on ties); nothing when no task waits or no worker has room. Counts the task at it.
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

  Depth depth_;
  std::vector<Load> workers_;
  std::deque<std::uint64_t> queue_;
};

}  // namespace corun::detail
