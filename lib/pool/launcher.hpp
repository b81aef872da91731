#pragma once
/// \file
/// Starting one worker process: a socketpair (and pipes for its stdout and stderr when the pool
/// captures them), then posix_spawn of this program or fork, and a pidfd to learn when it ends.
/// Side: parent.

#include "base/unique_fd.hpp"
#include "pool/child_process.hpp"

#include <memory>
#include <string>
#include <vector>

namespace corun::detail {

enum class LaunchMethod { spawn, fork };

struct LaunchedWorker {
  std::shared_ptr<ChildProcess> process;
  UniqueFd socket;  ///< the parent's end of the worker's channel
  UniqueFd pidfd;   ///< readable once the process has ended; empty on kernels before 5.3
  UniqueFd out;     ///< the read end of the worker's stdout, when captured (else empty)
  UniqueFd err;     ///< the read end of the worker's stderr, when captured (else empty)
};

/// Starts a worker whose socket is fd 3; with `capture_output`, its fds 1 and 2 are the write
/// ends of two fresh pipes whose read ends the parent gets (else it inherits the parent's
/// stdout and stderr). Every start runs on one long-lived thread, so that
/// workers (which ask for PR_SET_PDEATHSIG, bound to the thread that forked them) live as long
/// as this process, not as long as whichever thread ran the event loop. Throws
/// std::system_error naming the step that failed.
LaunchedWorker launch_worker(LaunchMethod method, const std::vector<std::string>& argv,
                             bool capture_output = false);

/// This program's command line (from /proc/self/cmdline), which spawned workers get too.
std::vector<std::string> program_arguments();

}  // namespace corun::detail
