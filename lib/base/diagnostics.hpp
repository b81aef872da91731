#pragma once
/// \file
/// The worker side's switch of the diagnostics sink (corun/diagnostics.hpp): in a worker
/// process corun's messages go to fd 2 only.
/// Side: both.

namespace corun::detail {

/// From now on this process is a worker: diagnose() writes to fd 2 with write(2) and takes no
/// lock, since a forked worker may have inherited the sink's lock held by a parent thread, and
/// the parent's handler is not the worker's to call. Async-signal-safe.
void diagnose_to_stderr_only() noexcept;

}  // namespace corun::detail
