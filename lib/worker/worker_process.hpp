#pragma once
/// \file
/// The worker side: the loop a worker process runs until its parent asks it to stop or goes away,
/// and the environment through which a spawning parent hands it its socket.
/// Side: worker.

#include <sys/types.h>

namespace corun::detail {

/// Environment variables through which a spawning parent hands a worker its socket.
inline constexpr const char* kWorkerFdEnv = "CORUN_WORKER_FD";
inline constexpr const char* kParentPidEnv = "CORUN_PARENT_PID";

/// Serves tasks on socket `fd` until shutdown or EOF, then exits the process.
[[noreturn]] void worker_main(int fd, pid_t parent);

}  // namespace corun::detail
