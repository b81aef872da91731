/// \file
/// Starting worker processes from one long-lived launcher thread.
/// Side: parent.
#include "pool/launcher.hpp"

#include "worker/worker_process.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio_ext.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <mutex>
#include <system_error>
#include <thread>

extern char** environ;

namespace corun::detail {

namespace {

[[noreturn]] void throw_errno(int err, const char* what) {
  throw std::system_error(err, std::generic_category(), std::string("corun: ") + what);
}

/// The signal mask workers start with: the one of the thread that first started a pool (the
/// launcher thread itself blocks every signal, so it never takes one meant for the program).
sigset_t& worker_signal_mask() {
  static sigset_t mask;
  return mask;
}

/// What a worker finds at fds 1, 2 and 3: its stdout and stderr (-1: the parent's own) and its
/// socket. Each is at fd 4 or above, so that moving one into place never overwrites another.
struct ChildFds {
  int out = -1;
  int err = -1;
  int socket = -1;
};

pid_t spawn_with_socket(const ChildFds& fds, const std::vector<std::string>& arguments) {
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setsigmask(&attributes, &worker_signal_mask());
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // dup2 clears close-on-exec on the copies.
  if (fds.out >= 0) posix_spawn_file_actions_adddup2(&actions, fds.out, 1);
  if (fds.err >= 0) posix_spawn_file_actions_adddup2(&actions, fds.err, 2);
  posix_spawn_file_actions_adddup2(&actions, fds.socket, 3);
  posix_spawn_file_actions_addclosefrom_np(&actions, 4);
  const std::string fd_prefix = std::string(kWorkerFdEnv) + "=";
  const std::string parent_prefix = std::string(kParentPidEnv) + "=";
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e)
    if (std::strncmp(*e, fd_prefix.c_str(), fd_prefix.size()) != 0 &&
        std::strncmp(*e, parent_prefix.c_str(), parent_prefix.size()) != 0)
      env.emplace_back(*e);
  env.push_back(fd_prefix + "3");
  env.push_back(parent_prefix + std::to_string(::getpid()));
  std::vector<char*> envp, argv;
  for (auto& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = arguments;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc =
      ::posix_spawn(&pid, "/proc/self/exe", &actions, &attributes, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (rc != 0) throw_errno(rc, "posix_spawn of a worker");
  return pid;
}

pid_t fork_with_socket(const ChildFds& fds) {
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw_errno(errno, "fork of a worker");
  if (pid == 0) {
    // Output the host buffered before fork() is the host's to write, not the worker's.
    __fpurge(stdout);
    __fpurge(stderr);
    ::pthread_sigmask(SIG_SETMASK, &worker_signal_mask(), nullptr);
    // The child keeps stdio and its socket (as fd 3) only; it never returns.
    if (fds.out >= 0) ::dup2(fds.out, 1);
    if (fds.err >= 0) ::dup2(fds.err, 2);
    ::dup2(fds.socket, 3);
    ::close_range(4, ~0u, 0);
    worker_main(3, parent);
  }
  return pid;
}

/// `fd` moved to 4 or above (close-on-exec), so that the child's dup2 onto 1, 2 or 3 cannot
/// overwrite it (a program that closed its stdout gets fd 1 from the next pipe or socket).
UniqueFd above_stdio(UniqueFd fd) {
  if (fd.get() > 3) return fd;
  const int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 4);
  if (moved < 0) throw_errno(errno, "fcntl(F_DUPFD_CLOEXEC) for a worker's descriptor");
  return UniqueFd(moved);
}

/// A pipe for one of the worker's output streams: the parent's read end, the child's write end.
void output_pipe(UniqueFd& read_end, UniqueFd& write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno(errno, "pipe for a worker's output");
  read_end = UniqueFd(fds[0]);
  write_end = above_stdio(UniqueFd(fds[1]));
}

LaunchedWorker launch_now(LaunchMethod method, const std::vector<std::string>& argv,
                          bool capture_output) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    throw_errno(errno, "socketpair for a worker");
  UniqueFd parent_end(fds[0]), child_end(fds[1]);
  child_end = above_stdio(std::move(child_end));
  LaunchedWorker launched;
  UniqueFd out_write, err_write;  // closed here once the child has its copies
  if (capture_output) {
    output_pipe(launched.out, out_write);
    output_pipe(launched.err, err_write);
  }
  const ChildFds child{out_write.get(), err_write.get(), child_end.get()};
  const pid_t pid =
      method == LaunchMethod::fork ? fork_with_socket(child) : spawn_with_socket(child, argv);
  launched.process = std::make_shared<ChildProcess>(pid);
  launched.socket = std::move(parent_end);
  launched.pidfd = UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  return launched;
}

/// The thread every worker is started from. It is never joined: it lives until the process
/// exits, and its state is never destroyed, so exit() does not pull it from under the thread.
class LauncherThread {
 public:
  static LauncherThread& instance() {
    static std::mutex creating;
    static LauncherThread* launcher = nullptr;
    const std::lock_guard lock(creating);
    // A child forked by the program has no launcher thread, only the pointer to its state.
    if (launcher == nullptr || launcher->owner_ != ::getpid()) launcher = new LauncherThread;
    return *launcher;
  }

  LaunchedWorker run(std::function<LaunchedWorker()> job) {
    std::packaged_task<LaunchedWorker()> task(std::move(job));
    auto result = task.get_future();
    {
      const std::lock_guard lock(mutex_);
      jobs_.push_back(std::move(task));
    }
    wake_.notify_one();
    return result.get();
  }

 private:
  LauncherThread() {
    sigset_t all;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_BLOCK, &all, &worker_signal_mask());
    std::thread([this] { serve(); }).detach();  // inherits the full mask
    ::pthread_sigmask(SIG_SETMASK, &worker_signal_mask(), nullptr);
  }

  void serve() {
    for (;;) {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return !jobs_.empty(); });
      auto job = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      job();
    }
  }

  const pid_t owner_ = ::getpid();
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::packaged_task<LaunchedWorker()>> jobs_;
};

}  // namespace

LaunchedWorker launch_worker(LaunchMethod method, const std::vector<std::string>& argv,
                             bool capture_output) {
  return LauncherThread::instance().run(
      [method, &argv, capture_output] { return launch_now(method, argv, capture_output); });
}

std::vector<std::string> program_arguments() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  std::size_t pos = 0;
  while (pos < all.size()) {
    const std::size_t end = all.find('\0', pos);
    args.push_back(all.substr(pos, end - pos));
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  if (args.empty()) args.push_back("corun-worker");
  return args;
}

}  // namespace corun::detail
