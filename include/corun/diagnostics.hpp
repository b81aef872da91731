#pragma once
/// \file
/// corun's own messages (a worker that got a bad message, a worker_exit hook that threw, a
/// spawned program that forgot enter_worker_if_spawned): one process-wide sink a program can
/// route them through, instead of corun writing to stderr.
/// Side: both.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <functional>
#include <string_view>

namespace corun {

/// Receives one of corun's messages, without a trailing newline (e.g. "corun worker 4242:
/// worker_exit threw: disk full"). The text is valid during the call only.
using DiagnosticsHandler = std::function<void(std::string_view message)>;

/// Routes corun's own messages in this process to `handler`; an empty handler restores the
/// default, which writes each message and a newline to stderr (fd 2) with write(2), as corun
/// always did. Returns the handler set before (empty when it was the default).
///
/// Thread-safe: any thread may call it at any time. The handler is called on whichever thread
/// corun has something to say (the pool's executor, a constructor's caller, a static
/// initialiser), one call at a time: calls are serialised. An exception from the handler is
/// swallowed and that message goes to stderr instead.
///
/// In a worker process corun's messages always go to the worker's stderr, whatever handler the
/// parent set (a forked worker does not call the parent's handler): capture them in the
/// parent with PoolOptions::worker_output, which delivers them as the worker's stderr lines.
CORUN_API DiagnosticsHandler set_diagnostics_handler(DiagnosticsHandler handler);

namespace detail {
/// Reports `message` (no trailing newline) through the handler set_diagnostics_handler set, or
/// to stderr. Never throws; in a worker process it only calls write(2) on fd 2.
/// Exported for corun_mpi, which reports through it too.
CORUN_API void diagnose(std::string_view message) noexcept;
}  // namespace detail

}  // namespace corun
