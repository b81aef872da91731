#pragma once
/// \file
/// SlotStarter: how the local pool, in the parent process, starts its worker slots: the
/// workers launched ahead by the pool's constructor, a fresh slot for every start (the first
/// one and each replacement), and the backoff before a slot that failed to start is tried
/// again. PoolCore decides when a slot starts and what its tasks do; this decides how.
/// Side: parent.

#include "pool/child_process.hpp"
#include "pool/launcher.hpp"
#include "pool/process_slot.hpp"
#include "pool/worker_slot.hpp"
#include "seam/worker_timeline.hpp"

#include <corun/pool.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace corun::detail {

class SlotStarter {
 public:
  /// Launches every worker process at once, so that their pids are known when the pool's
  /// constructor returns. `options`, `events`, `children` and `timeline` must outlive it.
  SlotStarter(const asio::any_io_executor& strand, const PoolOptions& options, SlotEvents& events,
              ChildRegistry& children, WorkerTimeline& timeline);
  // The process slots keep a reference to the config held here.
  SlotStarter(const SlotStarter&) = delete;
  SlotStarter& operator=(const SlotStarter&) = delete;

  /// A new slot for worker `index`, not started yet: the pool records it first, since a slot
  /// may report to it as soon as it starts. It adopts the process launched ahead for it, if any.
  std::shared_ptr<WorkerSlot> make(int index);
  /// Starts a slot that make() returned.
  void start(WorkerSlot& slot);

  /// A slot started: the failures before it no longer count towards giving up.
  void started() noexcept { failed_starts_ = 0; }
  /// Counts a failed start; false once PoolOptions::start_attempts starts in a row failed, when
  /// the pool is to give up.
  bool failed() noexcept;
  unsigned failed_starts() const noexcept { return failed_starts_; }
  /// Why the pool gives up, after failed() said so; `why` is the last failure.
  std::string give_up_message(const std::string& why) const;
  /// Why `slot` failed to start, for the user: with a hint when a spawned worker never said
  /// hello, the usual cause being a main() that does not let it in.
  std::string start_failure(const WorkerSlot& slot, const SlotEnd& end) const;

  /// Calls `restart` on the strand after a backoff that grows with the failures in a row,
  /// unless cancel_restarts() came first.
  void restart_later(int index, std::function<void()> restart);
  void cancel_restarts();

 private:
  asio::any_io_executor strand_;
  const PoolOptions& options_;
  SlotEvents& events_;
  WorkerTimeline& timeline_;
  ProcessSlotConfig slot_config_;
  std::vector<std::optional<LaunchedWorker>> prelaunched_;  // until each slot's first start
  std::vector<std::unique_ptr<asio::steady_timer>> restart_timers_;
  unsigned failed_starts_ = 0;  // consecutive, over all slots
};

}  // namespace corun::detail
