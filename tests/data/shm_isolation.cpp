// SharedArray under the operator's conditions that need namespaces: a small /dev/shm (a 64 MB
// tmpfs in a private mount namespace) and an owner in another PID namespace. Needs
// CAP_SYS_ADMIN (root); exits 77 (skip), saying why, when it cannot make the namespaces.
#define CATCH_CONFIG_RUNNER
#include <corun/shared_array.hpp>

#include <catch2/catch.hpp>

#include "support/support.hpp"

#include <corun/error.hpp>

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

using Ints = corun::SharedArray<std::int64_t>;

namespace {

/// In a child: a private mount namespace with a tmpfs of `size` on /dev/shm. 0 or an errno.
int mount_small_shm(const char* size) {
  if (::unshare(CLONE_NEWNS) != 0) return errno;
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return errno;
  const std::string options = std::string("size=") + size + ",mode=1777";
  if (::mount("tmpfs", "/dev/shm", "tmpfs", 0, options.c_str()) != 0) return errno;
  return 0;
}

void write_all(int fd, const std::string& s) {
  if (::write(fd, s.data(), s.size()) != static_cast<ssize_t>(s.size())) ::_exit(3);
}

std::string read_line(int fd) {
  std::string s;
  char c;
  while (::read(fd, &c, 1) == 1 && c != '\n') s += c;
  return s;
}

/// Segments in /dev/shm.
std::size_t shm_count() {
  std::size_t n = 0;
  for (const std::string& e : corun::test::shm_entries("")) n += e != "." && e != "..";
  return n;
}

/// A pid that no process on this host has now: a child's, after it was reaped.
pid_t dead_pid() {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(0);
  ::waitpid(pid, nullptr, 0);
  return pid;
}

}  // namespace

TEST_CASE("two arrays that together exceed /dev/shm: the second create fails, nothing is left",
          "[shared_array][failure][namespace]") {
  constexpr std::size_t elements = 40 * 1024 * 1024 / sizeof(std::int64_t);  // 40 MiB each
  const auto [report, status] = corun::test::report_from_child([] {
    if (const int err = mount_small_shm("64m"); err != 0) ::_exit(4);
    std::string text;
    try {
      // Create both, then write both: the order in which sparse segments end in SIGBUS.
      auto a = Ints::create({elements});
      try {
        auto b = Ints::create({elements});
        std::iota(a.begin(), a.end(), 1);
        std::iota(b.begin(), b.end(), 1);
        text += "second create succeeded\n";
      } catch (const corun::Error& e) {
        text += "code " + std::to_string(e.code().value()) + "\n" + e.what() + "\n";
      }
      std::iota(a.begin(), a.end(), 1);
      text += "left " + std::to_string(shm_count()) + "\n";
      text += "a[last] " + std::to_string(a[elements - 1]) + "\n";
    } catch (const std::exception& e) {
      text += std::string("unexpected: ") + e.what() + "\n";
    }
    text += "after " + std::to_string(shm_count()) + "\n";
    return text;
  });
  INFO("child report:\n" << report);
  CHECK_FALSE(WIFSIGNALED(status));  // before the fix: SIGBUS
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  const std::string code = std::to_string(static_cast<int>(corun::errc::not_enough_shared_memory));
  CHECK_THAT(report, Catch::StartsWith("code " + code + "\n"));
  // 64 MiB less the 40 MiB the first array reserved: both sizes, exactly.
  CHECK_THAT(report, Catch::Contains("needs 41943040 bytes but /dev/shm has 25165824 bytes free"));
  CHECK_THAT(report, Catch::Contains("left 1\na[last] " + std::to_string(elements) + "\n"));
  CHECK_THAT(report, Catch::EndsWith("after 0\n"));
}

TEST_CASE("the sweep keeps a live owner's segment in another PID namespace, removes it once dead",
          "[shared_array][sweep][namespace]") {
  // The owner gets a pid that is free on this host, so the pid in the name says "dead".
  const pid_t ns_pid = dead_pid();
  int names[2], hold[2];
  REQUIRE(::pipe(names) == 0);
  REQUIRE(::pipe2(hold, O_CLOEXEC) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(names[0]);
    ::close(hold[1]);
    if (::unshare(CLONE_NEWPID) != 0) ::_exit(4);
    const pid_t init = ::fork();  // pid 1 of the new namespace
    if (init != 0) {
      int st = 0;
      ::waitpid(init, &st, 0);
      ::_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 5);
    }
    // ns_last_pid is the writer's own namespace's: the next fork gets ns_pid there.
    const int fd = ::open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
    const std::string last = std::to_string(ns_pid - 1);
    if (fd < 0 || ::write(fd, last.data(), last.size()) != static_cast<ssize_t>(last.size()))
      ::_exit(6);
    ::close(fd);
    const pid_t owner = ::fork();
    if (owner == 0) {
      try {
        auto a = Ints::create({16});
        std::iota(a.begin(), a.end(), 1);
        write_all(names[1], a.name() + "\n");
        char c;
        while (::read(hold[0], &c, 1) > 0) {
        }
        ::_exit(0);  // dies without its destructor, like a killed owner
      } catch (...) {
        ::_exit(7);
      }
    }
    int st = 0;
    ::waitpid(owner, &st, 0);
    ::_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 8);
  }
  ::close(names[1]);
  ::close(hold[0]);
  const std::string name = read_line(names[0]);
  ::close(names[0]);
  INFO("segment " << name);
  REQUIRE_FALSE(name.empty());
  CHECK(name.rfind("corun_" + std::to_string(ns_pid) + "_", 0) == 0);
  struct stat st {};
  const std::vector<std::string> while_alive = corun::sweep_stale_segments();
  CHECK(std::find(while_alive.begin(), while_alive.end(), name) == while_alive.end());
  CHECK(::stat(("/dev/shm/" + name).c_str(), &st) == 0);

  ::close(hold[1]);  // the owner exits; waiting for its parent means it is gone
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  const std::vector<std::string> after_death = corun::sweep_stale_segments();
  CHECK(std::count(after_death.begin(), after_death.end(), name) == 1);
  CHECK(::stat(("/dev/shm/" + name).c_str(), &st) != 0);
  ::shm_unlink(("/" + name).c_str());  // whatever happened above, leave nothing
}

int main(int argc, char** argv) {
  // Can this machine give a child its own mount and PID namespaces and a tmpfs?
  const pid_t probe = ::fork();
  if (probe == 0) {
    int err = mount_small_shm("1m");
    if (err == 0 && ::unshare(CLONE_NEWPID) != 0) err = errno;
    ::_exit(err == 0 ? 0 : std::min(err, 125));
  }
  int status = 0;
  ::waitpid(probe, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::cout << "skipping: cannot make a mount namespace with a tmpfs on /dev/shm and a PID "
                 "namespace here (needs root or CAP_SYS_ADMIN): "
              << (WIFEXITED(status) ? std::strerror(WEXITSTATUS(status)) : "probe crashed") << '\n';
    return 77;
  }
  return Catch::Session().run(argc, argv);
}
