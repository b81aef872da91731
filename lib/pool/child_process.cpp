/// \file
/// ChildProcess and ChildRegistry: killing and reaping worker processes from any thread.
/// Side: parent.
#include "pool/child_process.hpp"

#include <sys/wait.h>
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>

namespace corun::detail {

ChildProcess::~ChildProcess() {
  kill_and_reap();
}

void ChildProcess::kill(int signal) noexcept {
  const std::lock_guard lock(mutex_);
  if (!status_) ::kill(pid_, signal);
}

int ChildProcess::reap() noexcept {
  const std::lock_guard lock(mutex_);
  if (!status_) {
    int status = 0;
    pid_t got;
    while ((got = ::waitpid(pid_, &status, 0)) < 0 && errno == EINTR) {
    }
    // ECHILD: someone else (a SIGCHLD handler set to SIG_IGN) reaped it; nothing to report.
    status_ = got == pid_ ? status : 0;
  }
  return *status_;
}

int ChildProcess::kill_and_reap() noexcept {
  kill(SIGKILL);
  return reap();
}

std::string describe_wait_status(int status) {
  if (WIFSIGNALED(status))
    return "killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
           ::strsignal(WTERMSIG(status)) + ")";
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  return "ended with wait status " + std::to_string(status);
}

bool ChildRegistry::closed() const {
  const std::lock_guard lock(mutex_);
  return closed_;
}

void ChildRegistry::remove(const ChildProcess* child) {
  const std::lock_guard lock(mutex_);
  std::erase_if(children_, [child](const auto& c) { return c.get() == child; });
}

std::vector<pid_t> ChildRegistry::pids() const {
  const std::lock_guard lock(mutex_);
  std::vector<pid_t> out;
  out.reserve(children_.size());
  for (const auto& c : children_) out.push_back(c->pid());
  return out;
}

void ChildRegistry::close_and_kill_all() noexcept {
  std::vector<std::shared_ptr<ChildProcess>> children;
  {
    const std::lock_guard lock(mutex_);
    closed_ = true;
    children.swap(children_);
  }
  // Signal them all first, so they die in parallel, then reap.
  for (const auto& c : children) c->kill(SIGKILL);
  for (const auto& c : children) c->reap();
}

}  // namespace corun::detail
