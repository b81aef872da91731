#pragma once
/// \file
/// WaitMode: how a pool's processes wait for each other (PoolOptions::wait): asleep in the
/// kernel (the default), or spinning on shared memory first, for the lowest round trip.
/// Side: both.

#include <corun/detail/config.hpp>

#include <chrono>

namespace corun {

/// How a worker waits for its next task, and the parent for results while tasks are out.
///
/// `WaitMode::blocking()` (the default): both sleep in the kernel (a socket read, epoll) and are
/// woken by the other side's write, so an idle pool costs no CPU; each handoff pays the wake-up
/// of a sleeping process (tens of microseconds on a VM, a few on bare metal).
///
/// `WaitMode::spin(d)`: after the handshake, frames go through two shared-memory rings per
/// worker (one each way) beside the socket. A worker waiting for a task, and the parent while
/// tasks are out, watch the ring for up to `d` since the last frame before they go to sleep on
/// the socket (the other side then rings once). The parent's watching is a handler that looks
/// once and posts itself again: it never blocks its executor, whose other handlers and timers
/// run between its looks. With fewer cores than workers + 1, every look yields the core
/// (sched_yield) instead of pausing, so that spinning takes no core from a process with work.
/// Costs CPU while tasks flow and for `d` after, and a segment of 2 x 1 MiB per worker.
struct WaitMode {
  /// Sleep at once (the default).
  static constexpr WaitMode blocking() noexcept { return {}; }
  /// Spin for up to `budget` before sleeping; a budget of 0 is blocking().
  static constexpr WaitMode spin(std::chrono::nanoseconds budget) noexcept { return {budget}; }

  /// How long to spin; 0: blocking.
  std::chrono::nanoseconds spin_for{0};

  /// Whether this mode spins (a positive budget).
  constexpr bool spins() const noexcept { return spin_for.count() > 0; }
  /// The same budget.
  friend constexpr bool operator==(const WaitMode&, const WaitMode&) = default;
};

}  // namespace corun
