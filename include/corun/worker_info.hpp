#pragma once
/// \file
/// WorkerInfo and WorkerHook: what a worker process's init and exit hooks learn about it.
/// Side: both.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <sys/types.h>

namespace corun {

/// What a worker hook learns about its process.
struct WorkerInfo {
  int worker_id = 0;  ///< the slot in the pool, 0..workers-1
  /// The process id (the parent's own in a serial pool).
  pid_t pid = 0;
};

/// A function run in each worker process once after it starts (worker_init) or before it exits
/// (worker_exit). A plain function, so that a re-executed worker can find it again.
using WorkerHook = void (*)(const WorkerInfo&);

}  // namespace corun
