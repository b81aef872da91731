#pragma once
// Helpers the tests share: counting what a process holds, to prove nothing leaks.

#include <dirent.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

namespace corun::test {

/// Names in /dev/shm that start with `prefix`.
inline std::vector<std::string> shm_entries(const std::string& prefix = "corun") {
  std::vector<std::string> names;
  if (DIR* dir = ::opendir("/dev/shm")) {
    while (const dirent* e = ::readdir(dir)) {
      const std::string name = e->d_name;
      if (name.rfind(prefix, 0) == 0) names.push_back(name);
    }
    ::closedir(dir);
  }
  return names;
}

/// Segments named by corun's default naming for process `pid`.
inline std::vector<std::string> segments_of_pid(pid_t pid) {
  return shm_entries("corun_" + std::to_string(pid) + "_");
}

/// Open file descriptors of this process.
inline int open_fd_count() {
  int n = 0;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (const dirent* e = ::readdir(dir))
      if (e->d_name[0] != '.') ++n;
    ::closedir(dir);
  }
  return n - 1;  // the directory stream's own descriptor
}

/// Direct children of this process (running or zombie), from /proc.
inline std::vector<pid_t> child_pids() {
  std::vector<pid_t> kids;
  const std::string self = std::to_string(::getpid());
  if (DIR* dir = ::opendir("/proc")) {
    while (const dirent* e = ::readdir(dir)) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      const std::string stat_path = std::string("/proc/") + e->d_name + "/stat";
      if (FILE* f = std::fopen(stat_path.c_str(), "r")) {
        int pid = 0, ppid = 0;
        char state = 0;
        char comm[256];
        if (std::fscanf(f, "%d (%255[^)]) %c %d", &pid, comm, &state, &ppid) == 4 &&
            std::to_string(ppid) == self)
          kids.push_back(pid);
        std::fclose(f);
      }
    }
    ::closedir(dir);
  }
  return kids;
}

/// What a forked child wrote, and how it ended (a waitpid status).
struct ChildReport {
  std::string output;
  int status = 0;
};

/// Runs `body` (returning the report text) in a forked child, so that it may drop privileges
/// or enter namespaces without touching this process, and returns what it reported. The child
/// never returns into the test framework; `body` may _exit() with a code of its own.
template <class Body>
ChildReport report_from_child(Body body) {
  int out[2];
  if (::pipe(out) != 0) std::abort();
  const pid_t child = ::fork();
  if (child < 0) std::abort();
  if (child == 0) {
    ::close(out[0]);
    const std::string report = body();
    const bool sent =
        ::write(out[1], report.data(), report.size()) == static_cast<ssize_t>(report.size());
    ::_exit(sent ? 0 : 4);
  }
  ::close(out[1]);
  ChildReport r;
  char buf[512];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) r.output.append(buf, static_cast<std::size_t>(n));
  ::close(out[0]);
  while (::waitpid(child, &r.status, 0) < 0 && errno == EINTR) {
  }
  return r;
}

/// Resident memory of this process in KiB (VmRSS).
inline long resident_kib() {
  long kib = -1;
  if (FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f))
      if (std::sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    std::fclose(f);
  }
  return kib;
}

/// Polls `done` every 10 ms until it holds or `limit` has passed; whether it held. For
/// conditions another process brings about on its own time (a worker's sweep), never as a
/// stand-in for a message the test could wait for.
template <class Pred>
bool wait_until(Pred done, std::chrono::seconds limit = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

/// One line from `fd`, without its newline; what came before EOF if the writer ended first.
inline std::string read_line(int fd) {
  std::string line;
  char c;
  for (;;) {
    const ssize_t n = ::read(fd, &c, 1);
    if (n == 1 && c == '\n') break;
    if (n == 1) line += c;
    if (n == 0 || (n < 0 && errno != EINTR)) break;
  }
  return line;
}

/// Blocks until child `pid` has ended, leaving it a zombie (not reaped).
inline bool wait_ended_unreaped(pid_t pid) {
  siginfo_t info{};
  while (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) != 0)
    if (errno != EINTR) return false;
  return true;
}

/// Kills (SIGKILL) and reaps child `pid` when it goes out of scope, so a child a test forked
/// never outlives the test, whatever fails or throws first.
struct KillOnExit {
  pid_t pid;
  ~KillOnExit() {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
};

/// While it lives, orphans of this process's descendants become its children (so a test can
/// reap a killed process's grandchildren and workers instead of leaving them to init).
struct SubreaperScope {
  SubreaperScope() { ::prctl(PR_SET_CHILD_SUBREAPER, 1); }
  ~SubreaperScope() { ::prctl(PR_SET_CHILD_SUBREAPER, 0); }
  SubreaperScope(const SubreaperScope&) = delete;
  SubreaperScope& operator=(const SubreaperScope&) = delete;
};

/// Descriptors of this process open on /dev/shm/<name>.
inline int fds_open_on(const std::string& name) {
  int n = 0;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (const dirent* e = ::readdir(dir)) {
      char link[4096] = {};
      const std::string path = std::string("/proc/self/fd/") + e->d_name;
      if (::readlink(path.c_str(), link, sizeof link - 1) > 0 &&
          std::string(link) == "/dev/shm/" + name)
        ++n;
    }
    ::closedir(dir);
  }
  return n;
}

}  // namespace corun::test
