#pragma once
/// \file
/// ChildProcess: one worker process the pool started, killed and reaped exactly once from any
/// thread; ChildRegistry: the pool's live children, for terminate() and worker_pids().
/// Side: parent.

#include <sys/types.h>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace corun::detail {

class ChildProcess {
 public:
  explicit ChildProcess(pid_t pid) noexcept : pid_(pid) {}
  /// Kills and reaps the process if nobody did.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const noexcept { return pid_; }
  /// Sends `signal`, unless the process was reaped (its pid may name another process by now).
  void kill(int signal) noexcept;
  /// Waits for the process to end and returns its wait status; later calls return the same.
  /// Call it once the process is known to have ended (or was killed): it blocks until then.
  int reap() noexcept;
  /// SIGKILL, then reap().
  int kill_and_reap() noexcept;

 private:
  mutable std::mutex mutex_;
  const pid_t pid_;
  std::optional<int> status_;
};

/// "killed by signal 9 (Killed)", "exited with status 3".
std::string describe_wait_status(int status);

/// The live children of one pool. Any thread may call it.
class ChildRegistry {
 public:
  /// Runs `start` and adds the child it returns, unless the registry is closed (then it throws
  /// std::runtime_error and starts nothing). Holds the registry meanwhile, so that
  /// close_and_kill_all() never misses a child being started.
  template <class Start>
  auto start(Start start) {
    const std::lock_guard lock(mutex_);
    if (closed_) throw std::runtime_error("the pool was terminated");
    auto started = start();
    children_.push_back(started.process);
    return started;
  }
  /// True once close_and_kill_all() ran.
  bool closed() const;
  void remove(const ChildProcess* child);
  /// Pids of the children added and not removed.
  std::vector<pid_t> pids() const;
  /// Refuses further children, then kills and reaps every one there is.
  void close_and_kill_all() noexcept;

 private:
  mutable std::mutex mutex_;
  bool closed_ = false;
  std::vector<std::shared_ptr<ChildProcess>> children_;
};

}  // namespace corun::detail
