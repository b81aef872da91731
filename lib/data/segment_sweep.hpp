#pragma once
/// \file
/// Sweeping after a segment owner died (a worker, when its parent is gone): the public
/// sweep_stale_segments() (corun/shared_array.hpp), retried while the dead owner's names remain,
/// and the pending names segments are made under, which a sweep leaves to their living creators.
/// Side: both.

#include <sys/types.h>
#include <chrono>
#include <string>

namespace corun::detail {

/// A fresh name under which a segment is made and locked before it is renamed to its own
/// (corun_<pid>_<random>.pending): a sweep removes such a segment only once that pid has exited.
std::string pending_segment_name();

/// Removes every segment whose owner died, then keeps sweeping for up to `patience` while
/// segments named for `owner` remain (still locked by a child it forked, for a moment).
void sweep_after_owner_died(pid_t owner, std::chrono::milliseconds patience);

}  // namespace corun::detail
