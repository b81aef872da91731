/// \file
/// The names that let a sweep find what a killed owner left (corun_<owner pid>_<random>), and the
/// sweep itself, which removes a segment only when no process holds its liveness lock. Any
/// process may sweep; a worker does so after an owner died.
/// Side: both.
#include "data/segment_sweep.hpp"

#include <corun/shared_array.hpp>

#include "data/segment_files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>

#include <unistd.h>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace corun {

using detail::kShmDir;
using detail::ofd_lock;

namespace {
constexpr const char* kPendingSuffix = ".pending";

/// Whose a name unique_segment_name() or pending_segment_name() made is, 0 for any other name.
struct NamedOwner {
  int pid = 0;
  bool pending = false;
};
NamedOwner owner_of(const std::string& name) {
  int pid = 0;
  unsigned long long tag = 0;
  int consumed = 0;
  if (std::sscanf(name.c_str(), "corun_%d_%16llx%n", &pid, &tag, &consumed) != 2 || pid <= 0)
    return {};
  const std::string_view rest = std::string_view(name).substr(static_cast<std::size_t>(consumed));
  if (rest.empty()) return {pid, false};
  if (rest == kPendingSuffix) return {pid, true};
  return {};
}

/// How many segments in /dev/shm carry `owner`'s pid in their name.
std::size_t count_named_for(pid_t owner) {
  std::size_t count = 0;
  if (DIR* dir = ::opendir(kShmDir)) {
    while (const dirent* entry = ::readdir(dir))
      if (owner_of(entry->d_name).pid == owner) ++count;
    ::closedir(dir);
  }
  return count;
}

/// A pending segment's creator renames it as soon as it holds the lock; until it exits the
/// segment is its, locked or not.
bool exited(int pid) {
  return ::kill(pid, 0) != 0 && errno == ESRCH;
}
}  // namespace

std::string unique_segment_name() {
  thread_local std::mt19937_64 rng{(std::uint64_t{std::random_device{}()} << 32) ^
                                   std::random_device{}()};
  char buf[64];
  std::snprintf(buf, sizeof buf, "corun_%d_%016llx", static_cast<int>(::getpid()),
                static_cast<unsigned long long>(rng()));
  return buf;
}

std::string detail::pending_segment_name() {
  return unique_segment_name() + kPendingSuffix;
}

std::vector<std::string> sweep_stale_segments() {
  std::vector<std::string> removed;
  DIR* dir = ::opendir(kShmDir);
  if (dir == nullptr) return removed;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    const NamedOwner owner = owner_of(name);
    if (owner.pid <= 0 || (owner.pending && !exited(owner.pid))) continue;
    const int fd = ::shm_open(("/" + name).c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0);
    if (fd < 0) continue;  // gone meanwhile, or not ours to open
    // The owner's read lock says it lives, whatever its size, and whether or not a process
    // with the pid in the name runs (an unreaped owner, another PID namespace, a reused pid).
    // A segment appears under such a name already locked (it was made under a pending name).
    if (ofd_lock(fd, F_WRLCK, false) && ::shm_unlink(("/" + name).c_str()) == 0)
      removed.push_back(name);
    ::close(fd);
  }
  ::closedir(dir);
  return removed;
}

void detail::sweep_after_owner_died(pid_t owner, std::chrono::milliseconds patience) {
  // A child the owner forked shares the owner's locks from fork() until its fork handler has
  // dropped them (OwnedEntry), a moment later: an owner killed in that moment leaves its
  // segments locked for that long. So sweep again, briefly, while its names are still there.
  const auto deadline = std::chrono::steady_clock::now() + patience;
  sweep_stale_segments();
  while (count_named_for(owner) > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    sweep_stale_segments();
  }
}

}  // namespace corun
