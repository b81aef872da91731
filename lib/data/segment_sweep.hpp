#pragma once
/// \file
/// Sweeping after a segment owner died (a worker, when its parent is gone): the public
/// sweep_stale_segments() (corun/shared_array.hpp), retried while the dead owner's names remain.
/// Side: both.

#include <sys/types.h>
#include <chrono>

namespace corun::detail {

/// Removes every segment whose owner died, then keeps sweeping for up to `patience` while
/// segments named for `owner` remain (still locked by a child it forked, for a moment).
void sweep_after_owner_died(pid_t owner, std::chrono::milliseconds patience);

}  // namespace corun::detail
