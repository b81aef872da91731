// SharedArray::create refuses an array that fits /dev/shm but not the memory the process may
// use (here: a memory cgroup with a 64 MiB limit, made for the test; cgroup v1 or v2), instead
// of letting the kernel's OOM killer choose a victim. Its own meson test: it exits 77 (skip),
// saying why, where it cannot make the cgroup (it needs root and a memory controller).
#include <corun/shared_array.hpp>

#include <catch2/catch.hpp>

#include "support/support.hpp"

#include <corun/error.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace {

constexpr std::size_t limit_bytes = std::size_t{64} << 20;

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.flush();
  return static_cast<bool>(out);
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

/// A memory cgroup below this process's own, limited to `limit_bytes`; `why` when none.
struct MemoryCgroup {
  std::string dir;  // empty when it could not be made
  bool v2 = false;
  std::string why;

  MemoryCgroup() {
    std::string v1_path, v2_path;
    std::ifstream groups("/proc/self/cgroup");
    for (std::string line; std::getline(groups, line);) {
      const auto a = line.find(':'), b = line.find(':', a + 1);
      // Appended with += : GCC 12 at -O3 reports a false -Werror=restrict on "," + substr.
      std::string controllers = ",";
      controllers += line.substr(a + 1, b - a - 1);
      controllers += ',';
      if (line.compare(0, a, "0") == 0 && controllers == ",,") v2_path = line.substr(b + 1);
      if (controllers.find(",memory,") != std::string::npos) v1_path = line.substr(b + 1);
    }
    std::string v1_mount, v1_root, v2_mount, v2_root;
    std::ifstream mounts("/proc/self/mountinfo");
    for (std::string line; std::getline(mounts, line);) {
      std::istringstream f(line);
      std::string id, parent, dev, root, point, word, type, source, options;
      f >> id >> parent >> dev >> root >> point;
      while (f >> word && word != "-") {
      }
      f >> type >> source >> options;
      if (type == "cgroup" && ("," + options + ",").find(",memory,") != std::string::npos)
        v1_mount = point, v1_root = root;
      if (type == "cgroup2") v2_mount = point, v2_root = root;
    }
    const std::string leaf = "/corun_test_memory_limit_" + std::to_string(::getpid());
    auto below = [](const std::string& path, const std::string& root) {
      return root == "/" ? path : path.substr(std::min(root.size(), path.size()));
    };
    if (!v1_mount.empty() && !v1_path.empty()) {
      const std::string d = v1_mount + below(v1_path, v1_root) + leaf;
      if (::mkdir(d.c_str(), 0755) != 0) {
        why = "cannot make the cgroup v1 memory group " + d + ": " + std::strerror(errno);
        return;
      }
      if (!write_file(d + "/memory.limit_in_bytes", std::to_string(limit_bytes))) {
        ::rmdir(d.c_str());
        why = "cannot set " + d + "/memory.limit_in_bytes";
        return;
      }
      dir = d;
      return;
    }
    if (!v2_mount.empty() && !v2_path.empty()) {
      const std::string own = v2_mount + below(v2_path, v2_root);
      const std::string d = own + leaf;
      if (::mkdir(d.c_str(), 0755) != 0) {
        why = "cannot make the cgroup v2 group " + d + ": " + std::strerror(errno);
        return;
      }
      if (!exists(d + "/memory.max")) write_file(own + "/cgroup.subtree_control", "+memory");
      if (!exists(d + "/memory.max") ||
          !write_file(d + "/memory.max", std::to_string(limit_bytes))) {
        ::rmdir(d.c_str());
        why = "the memory controller is not enabled for " + own +
              " (cgroup.subtree_control), and cannot be";
        return;
      }
      dir = d;
      v2 = true;
      return;
    }
    why = "no memory cgroup hierarchy is mounted (neither cgroup v2 nor a v1 memory controller)";
  }
  ~MemoryCgroup() {
    if (!dir.empty()) ::rmdir(dir.c_str());
  }
  MemoryCgroup(const MemoryCgroup&) = delete;
  MemoryCgroup& operator=(const MemoryCgroup&) = delete;
};

}  // namespace

TEST_CASE("an array larger than the memory cgroup allows is refused before it is reserved",
          "[shared_array][memory][failure]") {
  const MemoryCgroup group;
  if (group.dir.empty()) {
    std::fprintf(stderr, "skipping: %s (run as root on a machine with a memory cgroup)\n",
                 group.why.c_str());
    std::_Exit(77);  // Catch2 2.13 has no SKIP; nothing was started yet
  }
  const std::string name = "corun_test_memory_limit";
  const std::size_t too_big = 2 * limit_bytes;  // fits /dev/shm, not the cgroup
  const std::size_t fits = limit_bytes / 4;
  // The child moves itself into the cgroup, so the limit applies to it alone (and an OOM kill,
  // should the check fail, to it alone).
  const corun::test::ChildReport child = corun::test::report_from_child([&]() -> std::string {
    if (!write_file(group.dir + "/cgroup.procs", std::to_string(::getpid())))
      return "cannot join the cgroup";
    std::ostringstream out;
    try {
      (void)corun::SharedArray<std::uint8_t>::create({too_big}, name);
      out << "created\n";
    } catch (const corun::Error& e) {
      out << "code " << e.code().value() << "\n" << e.what() << "\n";
    }
    try {
      auto small = corun::SharedArray<std::uint8_t>::create({fits}, name);
      std::memset(small.data(), 1, small.size());
      out << "small " << small.size() << "\n";
    } catch (const std::exception& e) {
      out << "small failed: " << e.what() << "\n";
    }
    return out.str();
  });
  // Nothing may be left, even by a library that let the child be killed.
  const bool left = exists("/dev/shm/" + name);
  ::unlink(("/dev/shm/" + name).c_str());
  CHECK_FALSE(left);
  INFO("cgroup " << group.dir << ", child said:\n" << child.output);
  REQUIRE(WIFEXITED(child.status));  // not OOM-killed
  CHECK(WEXITSTATUS(child.status) == 0);
  std::istringstream lines(child.output);
  std::string code_line, message, small_line;
  std::getline(lines, code_line);
  std::getline(lines, message);
  std::getline(lines, small_line);
  CHECK(code_line ==
        "code " + std::to_string(static_cast<int>(corun::errc::not_enough_shared_memory)));
  // Both sizes: what the array needs and what the cgroup has left (below its limit).
  CHECK_THAT(message, Catch::Contains("needs " + std::to_string(too_big) + " bytes"));
  CHECK_THAT(message, Catch::Contains("the memory cgroup " + group.dir + " (limit " +
                                      std::to_string(limit_bytes) + " bytes"));
  const auto has = message.find(") has ");
  REQUIRE(has != std::string::npos);
  const std::size_t available = std::stoull(message.substr(has + 6));
  CHECK(available < limit_bytes);
  CHECK(available > fits);
  CHECK_THAT(message, Catch::Contains(std::to_string(available) + " bytes available"));
  // A size below the limit is still created (and its pages written).
  CHECK(small_line == "small " + std::to_string(fits));
}
