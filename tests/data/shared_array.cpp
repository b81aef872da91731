// SharedArray: creation and attachment of named POSIX shared memory, ownership, names,
// failure paths, and the sweep of segments left by killed owners.
#include <corun/shared_array.hpp>

#include <catch2/catch.hpp>

#include "support/support.hpp"

#include <corun/error.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <numeric>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

using corun::SharedArray;
using Ints = SharedArray<std::int64_t>;

namespace {

bool shm_exists(const std::string& name) {
  struct stat st {};
  return ::stat(("/dev/shm/" + name).c_str(), &st) == 0;
}

bool has_name(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

/// Catches a corun::Error thrown by `f` and returns it; fails the test when none is thrown.
template <class F>
corun::Error error_of(F&& f) {
  try {
    f();
  } catch (const corun::Error& e) {
    return e;
  }
  FAIL("no corun::Error was thrown");
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("create makes a zero-filled segment the object owns", "[shared_array]") {
  const std::string name = "corun_test_create";
  REQUIRE_FALSE(shm_exists(name));
  {
    auto a = Ints::create({8}, name);
    CHECK(a.name() == name);
    CHECK(a.owner());
    CHECK(a.size() == 8);
    CHECK(a.shape() == std::vector<std::size_t>{8});
    CHECK(a.end() - a.begin() == 8);
    CHECK(a.data() == a.begin());
    CHECK(std::all_of(a.begin(), a.end(), [](std::int64_t v) { return v == 0; }));
    CHECK(shm_exists(name));
    struct stat st {};
    REQUIRE(::stat(("/dev/shm/" + name).c_str(), &st) == 0);
    CHECK(st.st_size == 64);
    const corun::ArrayInfo info = a.info();
    CHECK(info.name == name);
    CHECK(info.shape == std::vector<std::size_t>{8});
    CHECK(info.dtype.str() == "<i8");
  }
  CHECK_FALSE(shm_exists(name));
}

TEST_CASE("the owner removes its segment during stack unwinding", "[shared_array]") {
  const std::string name = "corun_test_unwind";
  bool existed = false;
  try {
    auto a = Ints::create({4}, name);
    existed = shm_exists(name);
    throw std::runtime_error("leaving the scope by an exception");
  } catch (const std::runtime_error&) {
  }
  CHECK(existed);
  CHECK_FALSE(shm_exists(name));
}

TEST_CASE("a forked child that destroys its copy of the owner leaves the segment and its data",
          "[shared_array]") {
  // Only the process that created a segment removes it: a child of fork() (a user's, or a
  // worker started by fork that leaves through exit() and the host's static destructors)
  // holds a copy of the owner object, and must neither unlink the name nor free the pages.
  const std::string name = "corun_test_forked_owner";
  auto owner = Ints::create({1000}, name);
  std::iota(owner.begin(), owner.end(), 1);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    { auto copy = std::move(owner); }  // the child's copy of the owner is destroyed
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(shm_exists(name));
  CHECK(std::accumulate(owner.begin(), owner.end(), std::int64_t{0}) == 1000 * 1001 / 2);
}

TEST_CASE("a borrower sees the owner's data and never removes the segment", "[shared_array]") {
  const std::string name = "corun_test_borrow";
  auto owner = Ints::create({5}, name);
  std::iota(owner.begin(), owner.end(), 1);
  {
    auto borrower = Ints::attach(name, {5});
    CHECK_FALSE(borrower.owner());
    CHECK(borrower.name() == name);
    CHECK(borrower.size() == 5);
    CHECK(std::vector<std::int64_t>(borrower.begin(), borrower.end()) ==
          std::vector<std::int64_t>{1, 2, 3, 4, 5});
    borrower[2] = 42;  // a different mapping of the same memory
    CHECK(borrower.data() != owner.data());
  }
  CHECK(shm_exists(name));
  CHECK(owner[2] == 42);
  {
    // A borrower may read fewer elements than the segment holds.
    auto prefix = Ints::attach("/" + name, {2});
    CHECK(prefix.size() == 2);
    CHECK(prefix[1] == 2);
  }
  CHECK(shm_exists(name));
}

TEST_CASE("a SharedArray is move-only and a moved-from object removes nothing", "[shared_array]") {
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<Ints>);
  STATIC_REQUIRE_FALSE(std::is_copy_assignable_v<Ints>);
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<Ints>);
  STATIC_REQUIRE(std::is_nothrow_move_assignable_v<Ints>);

  const std::string name = "corun_test_move";
  std::optional<Ints> first;
  first.emplace(Ints::create({3}, name));
  (*first)[0] = 7;
  {
    Ints second = std::move(*first);
    CHECK(second.owner());
    CHECK(second.name() == name);
    CHECK(second[0] == 7);
    CHECK_FALSE(first->owner());
    CHECK(first->size() == 0);
    CHECK(first->begin() == first->end());
    first.reset();  // the moved-from object is destroyed while the new owner lives
    CHECK(shm_exists(name));
  }
  CHECK_FALSE(shm_exists(name));
}

TEST_CASE("move assignment removes the segment the target owned", "[shared_array]") {
  auto a = Ints::create({2}, "corun_test_move_a");
  auto b = Ints::create({3}, "corun_test_move_b");
  b[2] = 9;
  a = std::move(b);
  CHECK_FALSE(shm_exists("corun_test_move_a"));
  CHECK(shm_exists("corun_test_move_b"));
  CHECK(a.name() == "corun_test_move_b");
  CHECK(a.size() == 3);
  CHECK(a[2] == 9);
  CHECK(b.size() == 0);
  CHECK_FALSE(b.owner());
}

TEST_CASE("default names carry the owner's pid and differ", "[shared_array]") {
  const std::string prefix = "corun_" + std::to_string(::getpid()) + "_";
  auto a = Ints::create({1});
  auto b = Ints::create({1});
  CHECK(a.name() != b.name());
  for (const std::string& name : {a.name(), b.name()}) {
    INFO(name);
    CHECK(name.rfind(prefix, 0) == 0);
    const std::string tag = name.substr(prefix.size());
    CHECK(tag.size() == 16);
    CHECK(std::all_of(tag.begin(), tag.end(),
                      [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); }));
    CHECK(shm_exists(name));
  }
  CHECK(corun::test::segments_of_pid(::getpid()).size() == 2);
  CHECK(corun::unique_segment_name() != corun::unique_segment_name());
}

TEST_CASE("creating an existing name fails and never overwrites", "[shared_array][failure]") {
  const std::string name = "corun_test_exclusive";
  auto first = Ints::create({4}, name);
  std::iota(first.begin(), first.end(), 10);
  const corun::Error e = error_of([&] { (void)Ints::create({4}, name); });
  CHECK(e.code() == corun::errc::segment_exists);
  CHECK_THAT(e.what(), Catch::Contains(name));
  // A larger request must not resize the segment either.
  CHECK_THROWS_AS(Ints::create({400}, "/" + name), corun::Error);
  CHECK(std::vector<std::int64_t>(first.begin(), first.end()) ==
        std::vector<std::int64_t>{10, 11, 12, 13});
  struct stat st {};
  REQUIRE(::stat(("/dev/shm/" + name).c_str(), &st) == 0);
  CHECK(st.st_size == 32);
  CHECK(shm_exists(name));
}

TEST_CASE("segments are created with mode 0600", "[shared_array]") {
  const mode_t old_mask = ::umask(0);  // the mode must not depend on a permissive umask
  auto a = Ints::create({1}, "corun_test_mode");
  ::umask(old_mask);
  struct stat st {};
  REQUIRE(::stat("/dev/shm/corun_test_mode", &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  CHECK(st.st_uid == ::geteuid());
  auto b = Ints::create({1});
  REQUIRE(::stat(("/dev/shm/" + b.name()).c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
}

TEST_CASE("attach names a missing segment", "[shared_array][failure]") {
  const corun::Error e = error_of([] { (void)Ints::attach("corun_test_missing", {4}); });
  CHECK(e.code() == corun::errc::segment_not_found);
  CHECK_THAT(e.what(), Catch::Contains("corun_test_missing"));
  CHECK_FALSE(shm_exists("corun_test_missing"));
}

TEST_CASE("attach to a segment this user may not open says permission denied, naming it",
          "[shared_array][failure]") {
  auto a = Ints::create({4}, "corun_test_perm");
  REQUIRE(::chmod("/dev/shm/corun_test_perm", 0000) == 0);
  // root bypasses permission checks: the attach runs in a child that drops to nobody.
  const auto [report, status] = corun::test::report_from_child([] {
    if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(3);
    try {
      (void)Ints::attach("corun_test_perm", {4});
      return std::string("attached");
    } catch (const corun::Error& e) {
      return std::to_string(e.code().value()) + " " + e.what();
    }
  });
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  CHECK_THAT(report,
             Catch::StartsWith(std::to_string(static_cast<int>(corun::errc::permission_denied)) +
                               " corun: permission denied opening shared-memory segment "
                               "'corun_test_perm'"));
}

TEST_CASE("names with control characters are rejected, the name shown escaped",
          "[shared_array][failure]") {
  for (const std::string name : {"corun_test_\n", "corun\x1b[31m", "corun_test_\x7f"}) {
    CHECK_THROWS_AS(Ints::create({1}, name), std::invalid_argument);
    CHECK_THROWS_AS(Ints::attach(name, {1}), std::invalid_argument);
  }
  CHECK_THROWS_WITH(Ints::create({1}, "corun_test_\n\\"),
                    "corun: shared-memory segment name \"corun_test_\\x0a\\x5c\" is invalid: a "
                    "segment name has no control characters");
  CHECK(corun::test::shm_entries("corun_test_").empty());
}

TEST_CASE("attach to a segment too small for the shape gives both sizes",
          "[shared_array][failure]") {
  auto a = Ints::create({4}, "corun_test_small");
  const corun::Error e = error_of([] { (void)Ints::attach("corun_test_small", {5}); });
  CHECK(e.code() == corun::errc::segment_too_small);
  CHECK_THAT(e.what(), Catch::Contains("corun_test_small") && Catch::Contains("32 bytes") &&
                           Catch::Contains("needs 40"));
  const corun::Error nd = error_of([] { (void)Ints::attach("corun_test_small", {2, 3}); });
  CHECK(nd.code() == corun::errc::segment_too_small);
  CHECK_THAT(nd.what(), Catch::Contains("{2, 3}") && Catch::Contains("needs 48"));
  // The wrong element type can make the same bytes too small.
  const corun::Error wide =
      error_of([] { (void)SharedArray<std::complex<double>>::attach("corun_test_small", {3}); });
  CHECK(wide.code() == corun::errc::segment_too_small);
  CHECK(shm_exists("corun_test_small"));
}

TEST_CASE("a shape whose byte size overflows is rejected", "[shared_array][failure]") {
  const std::size_t huge = std::size_t{1} << 62;
  CHECK_THROWS_AS(Ints::create({huge, 8}, "corun_test_overflow"), std::invalid_argument);
  CHECK_THROWS_WITH(Ints::create({huge, 8}, "corun_test_overflow"), Catch::Contains("overflow"));
  CHECK_THROWS_AS(Ints::create({huge}), std::invalid_argument);
  CHECK_THROWS_AS(Ints::create({std::size_t(-1), std::size_t(-1)}), std::invalid_argument);
  CHECK_THROWS_AS(Ints::attach("corun_test_overflow", {huge, 8}), std::invalid_argument);
  CHECK_FALSE(shm_exists("corun_test_overflow"));
  CHECK(corun::test::segments_of_pid(::getpid()).empty());
}

TEST_CASE("zero-length dimensions give an empty array", "[shared_array]") {
  auto a = Ints::create({0}, "corun_test_empty");
  CHECK(a.size() == 0);
  CHECK(a.begin() == a.end());
  CHECK(a.shape() == std::vector<std::size_t>{0});
  CHECK(a.view().size() == 0);
  CHECK(shm_exists("corun_test_empty"));
  auto b = Ints::create({5, 0});
  CHECK(b.size() == 0);
  CHECK(b.begin() == b.end());
  CHECK(b.shape() == std::vector<std::size_t>{5, 0});
  CHECK(b.view().shape()[0] == 5);
  CHECK(b.view().shape()[1] == 0);
  auto c = Ints::attach("corun_test_empty", {0});
  CHECK(c.size() == 0);
  CHECK(c.begin() == c.end());
  auto d = Ints::attach("corun_test_empty", {3, 0, 2});
  CHECK(d.size() == 0);
}

TEST_CASE("an array with a zero dimension is empty however large its other dimensions",
          "[shared_array]") {
  const std::size_t huge = std::size_t{1} << 62;
  const std::size_t big = std::size_t{1} << 31;
  auto a = Ints::create({huge, 0}, "corun_test_empty_huge");
  CHECK(a.size() == 0);
  CHECK(a.begin() == a.end());
  CHECK(a.shape() == std::vector<std::size_t>{huge, 0});
  CHECK(a.view().shape()[0] == huge);
  CHECK(a.view().shape()[1] == 0);
  auto b = Ints::attach("corun_test_empty_huge", {big, big, 0});
  CHECK(b.size() == 0);
  CHECK(b.shape() == std::vector<std::size_t>{big, big, 0});
  auto c = Ints::create({big, big, 0});
  CHECK(c.size() == 0);
  CHECK(c.view().size() == 0);
}

TEST_CASE("view() adapts the shared memory without copying", "[shared_array]") {
  auto a = Ints::create({6});
  std::iota(a.begin(), a.end(), 0);
  auto v = a.view();
  CHECK(v.data() == a.data());
  CHECK(v.size() == 6);
  CHECK(v(4) == 4);
  v(2) = 42;
  CHECK(a[2] == 42);
  a[3] = 43;
  CHECK(v(3) == 43);
  const Ints& ca = a;
  const auto cv = ca.view();
  STATIC_REQUIRE(std::is_same_v<decltype(cv.data()), const std::int64_t*>);
  CHECK(cv(2) == 42);
}

TEST_CASE("n-d arrays are row-major with their shape", "[shared_array]") {
  auto a = SharedArray<double>::create({3, 4, 2});
  CHECK(a.size() == 24);
  CHECK(a.shape() == std::vector<std::size_t>{3, 4, 2});
  std::iota(a.begin(), a.end(), 0.0);
  auto v = a.view();
  REQUIRE(v.dimension() == 3);
  CHECK(v.shape()[0] == 3);
  CHECK(v.shape()[1] == 4);
  CHECK(v.shape()[2] == 2);
  CHECK(v(0, 0, 1) == 1.0);
  CHECK(v(1, 2, 1) == 13.0);
  CHECK(v(2, 3, 1) == 23.0);
  v(2, 1, 0) = -1.0;
  CHECK(a[2 * 8 + 1 * 2 + 0] == -1.0);
  struct stat st {};
  REQUIRE(::stat(("/dev/shm/" + a.name()).c_str(), &st) == 0);
  CHECK(st.st_size == 24 * 8);
}

TEST_CASE("string arrays hold fixed-size strings", "[shared_array]") {
  auto a = SharedArray<corun::FixedUString<8>>::create({2}, "corun_test_ustr");
  a[0] = corun::FixedUString<8>("h\xc3\xa9llo");
  a[1] = corun::FixedUString<8>("\xe6\x97\xa5\xe6\x9c\xac");
  auto b = SharedArray<corun::FixedUString<8>>::attach("corun_test_ustr", {2});
  CHECK(b[0].str() == "h\xc3\xa9llo");
  CHECK(b[1].str() == "\xe6\x97\xa5\xe6\x9c\xac");
  CHECK(a.info().dtype.str() == "<U8");
  struct stat st {};
  REQUIRE(::stat("/dev/shm/corun_test_ustr", &st) == 0);
  CHECK(st.st_size == 64);
}

TEST_CASE("an array larger than the free space of /dev/shm is refused", "[shared_array][failure]") {
  constexpr std::size_t gib = std::size_t{1} << 30;
  bool stable = false;
  // Another process may change the free space between our look and the library's; retry then.
  for (int attempt = 0; attempt < 5 && !stable; ++attempt) {
    struct statvfs st {};
    REQUIRE(::statvfs("/dev/shm", &st) == 0);
    const std::size_t free_bytes = static_cast<std::size_t>(st.f_bavail) * st.f_frsize;
    const std::size_t elements = (free_bytes + gib) / sizeof(std::int64_t);
    REQUIRE(elements < (std::size_t(-1) / sizeof(std::int64_t)));
    const std::size_t needed = elements * sizeof(std::int64_t);
    const corun::Error e = error_of([&] { (void)Ints::create({elements}, "corun_test_huge"); });
    REQUIRE(::statvfs("/dev/shm", &st) == 0);
    stable = static_cast<std::size_t>(st.f_bavail) * st.f_frsize == free_bytes;
    CHECK(e.code() == corun::errc::not_enough_shared_memory);
    CHECK_THAT(e.what(), Catch::Contains(std::to_string(needed)));
    if (stable) CHECK_THAT(e.what(), Catch::Contains(std::to_string(free_bytes)));
    CHECK_FALSE(shm_exists("corun_test_huge"));
  }
  CHECK(stable);
  // The same with a default name: nothing is left behind either.
  struct statvfs st {};
  REQUIRE(::statvfs("/dev/shm", &st) == 0);
  const std::size_t free_bytes = static_cast<std::size_t>(st.f_bavail) * st.f_frsize;
  CHECK_THROWS_AS(Ints::create({2, (free_bytes + gib) / 16}), corun::Error);
  CHECK(corun::test::segments_of_pid(::getpid()).empty());
}

TEST_CASE("sweep_stale_segments removes what a killed owner left", "[shared_array][sweep]") {
  corun::sweep_stale_segments();  // start from a clean slate: only our child's segment counts
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The child never returns into Catch: it reports its segment and waits to be killed.
    ::close(pipe_fds[0]);
    try {
      auto a = Ints::create({16});
      std::iota(a.begin(), a.end(), 1);
      const std::string line = a.name() + "\n";
      if (::write(pipe_fds[1], line.data(), line.size()) != static_cast<ssize_t>(line.size()))
        ::_exit(1);
      for (;;) ::pause();  // wait for SIGKILL, so the destructor never runs
    } catch (...) {
      ::_exit(2);
    }
  }
  ::close(pipe_fds[1]);
  std::string name;
  char c;
  while (::read(pipe_fds[0], &c, 1) == 1 && c != '\n') name += c;
  ::close(pipe_fds[0]);
  REQUIRE(::kill(child, SIGKILL) == 0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);

  CHECK(name == "corun_" + std::to_string(child) + "_" + name.substr(name.rfind('_') + 1));
  REQUIRE_FALSE(name.empty());
  REQUIRE(shm_exists(name));
  {
    // The data survived its owner: a borrower can still read it.
    auto left = Ints::attach(name, {16});
    CHECK(left[15] == 16);
  }
  auto ours = Ints::create({4});  // a live owner's segment must survive the sweep
  const std::vector<std::string> removed = corun::sweep_stale_segments();
  // Exactly our child's segment, unless some other program's owner died meanwhile: what else
  // was removed must then have been a default name of a process that no longer runs.
  const std::string child_prefix = "corun_" + std::to_string(child) + "_";
  std::vector<std::string> of_child;
  for (const std::string& r : removed) {
    if (r.rfind(child_prefix, 0) == 0) {
      of_child.push_back(r);
    } else {
      INFO("also removed " << r);
      int pid = 0;
      CHECK(std::sscanf(r.c_str(), "corun_%d_", &pid) == 1);
      CHECK(pid > 0);
      CHECK(::kill(pid, 0) == -1);
    }
  }
  CHECK(of_child == std::vector<std::string>{name});
  CHECK_FALSE(shm_exists(name));
  CHECK(shm_exists(ours.name()));
  CHECK_FALSE(has_name(removed, ours.name()));
  CHECK_FALSE(has_name(corun::sweep_stale_segments(), name));
}

TEST_CASE("a live owner's segment survives the sweep whatever pid its name carries",
          "[shared_array][sweep]") {
  // A pid no process has now (as an owner in another PID namespace looks from here).
  const pid_t gone = ::fork();
  REQUIRE(gone >= 0);
  if (gone == 0) ::_exit(0);
  REQUIRE(::waitpid(gone, nullptr, 0) == gone);
  const std::string name = "corun_" + std::to_string(gone) + "_0123456789abcdef";
  auto a = Ints::create({8}, name);
  auto moved = std::move(a);  // the liveness lock moves with the array
  CHECK_FALSE(has_name(corun::sweep_stale_segments(), name));
  CHECK(shm_exists(name));
  // The owner's descriptor is the one that holds the lock; it is not inherited across exec.
  int owner_fds = 0;
  for (int fd = 0; fd < 1024; ++fd) {
    char link[PATH_MAX] = {};
    if (::readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), link, sizeof link - 1) > 0 &&
        std::string(link) == "/dev/shm/" + name) {
      ++owner_fds;
      CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    }
  }
  CHECK(owner_fds == 1);
  {
    Ints empty = std::move(moved);  // zero-size arrays keep their lock too
    CHECK(shm_exists(name));
  }
  CHECK_FALSE(shm_exists(name));
}

TEST_CASE("sweep_stale_segments ignores names it did not make", "[shared_array][sweep]") {
  // Explicit names and look-alikes without a valid pid and tag are never touched.
  auto a = Ints::create({1}, "corun_test_sweep");
  auto b = Ints::create({1}, "corun_999999999_zz");
  auto c = Ints::create({1}, "corun_999999999_0123456789abcdef_x");
  const auto removed = corun::sweep_stale_segments();
  CHECK_FALSE(has_name(removed, "corun_test_sweep"));
  CHECK_FALSE(has_name(removed, "corun_999999999_zz"));
  CHECK_FALSE(has_name(removed, "corun_999999999_0123456789abcdef_x"));
  CHECK(shm_exists("corun_test_sweep"));
  CHECK(shm_exists("corun_999999999_zz"));
  CHECK(shm_exists("corun_999999999_0123456789abcdef_x"));
}

TEST_CASE("names with a leading slash are stored without it", "[shared_array]") {
  auto a = Ints::create({2}, "/corun_test_slash");
  CHECK(a.name() == "corun_test_slash");
  CHECK(shm_exists("corun_test_slash"));
  auto b = Ints::attach("/corun_test_slash", {2});
  CHECK(b.name() == "corun_test_slash");
  auto c = Ints::attach("corun_test_slash", {2});
  CHECK(c.name() == "corun_test_slash");
}

TEST_CASE("invalid names are rejected", "[shared_array][failure]") {
  const std::string bad[] = {
      "a/b", "/a/b", "/", "//", ".", "..", std::string(256, 'n'), std::string("corun_test\0x", 12),
  };
  for (const std::string& name : bad) {
    INFO("name: " << name);
    CHECK_THROWS_AS(Ints::create({1}, name), std::invalid_argument);
    CHECK_THROWS_AS(Ints::attach(name, {1}), std::invalid_argument);
  }
  CHECK_THROWS_AS(Ints::attach("", {1}), std::invalid_argument);
  CHECK_THROWS_WITH(Ints::create({1}, "a/b"),
                    "corun: shared-memory segment name \"a/b\" is invalid: a segment name has 1 "
                    "to 255 characters, no '/' or NUL, and is not \".\" or \"..\"");
  CHECK_FALSE(shm_exists("corun_test"));
  // 255 characters (NAME_MAX of /dev/shm) is the longest name shm_open takes.
  auto longest = Ints::create({1}, "corun_test_" + std::string(244, 'n'));
  CHECK(longest.name().size() == 255);
  auto same = Ints::attach("/" + longest.name(), {1});
  CHECK(same.name() == longest.name());
}

TEST_CASE("DataIterator helpers take a SharedArray", "[shared_array][data_iterator]") {
  auto a = Ints::create({10, 2});
  const auto chunks = corun::DataIterator::over(a, 4);
  CHECK(chunks.shm_name == a.name());
  CHECK(chunks.size_of_data == 10);
  CHECK(chunks.shm_shape == std::vector<std::size_t>{10, 2});
  CHECK(chunks.data_type.str() == "<i8");
  CHECK(chunks.slice_count() == 3);
  const auto parts = corun::DataIterator::partitioned(a, 3);
  CHECK(parts.slice(0) == corun::Slice{0, 4});
  CHECK(parts.slice(2) == corun::Slice{7, 10});
}

namespace {
/// A child that creates `shapes` (default names), optionally forks a plain child of its own
/// that sleeps, reports "<names...> [<grandchild pid>]" on one line and waits to be killed.
struct KilledOwner {
  pid_t pid = -1;
  std::vector<std::string> names;
  pid_t grandchild = -1;
  int grandchild_owner_fds = -1;  // the grandchild's descriptors on the first segment
  bool grandchild_owner = true;   // the grandchild's copy's owner()
};

KilledOwner start_owner(const std::vector<std::vector<std::size_t>>& shapes, bool fork_child) {
  int out[2];
  REQUIRE(::pipe(out) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(out[0]);
    try {
      std::vector<Ints> arrays;
      std::string line;
      for (const auto& shape : shapes) {
        arrays.push_back(Ints::create(shape));
        line += arrays.back().name() + " ";
      }
      if (fork_child) {
        int back[2];
        if (::pipe(back) != 0) ::_exit(1);
        const pid_t grandchild = ::fork();
        if (grandchild < 0) ::_exit(1);
        if (grandchild == 0) {
          // What a user's child sees: a copy of the owner object that owns nothing.
          const std::string report =
              std::to_string(corun::test::fds_open_on(arrays.front().name())) + " " +
              (arrays.front().owner() ? "owner" : "not-owner") + "\n";
          (void)!::write(back[1], report.data(), report.size());
          for (;;) ::pause();
        }
        ::close(back[1]);
        line += std::to_string(grandchild) + " " + corun::test::read_line(back[0]);
      }
      line += "\n";
      if (::write(out[1], line.data(), line.size()) != static_cast<ssize_t>(line.size()))
        ::_exit(1);
      for (;;) ::pause();  // until SIGKILL: no destructor runs
    } catch (...) {
      ::_exit(2);
    }
  }
  ::close(out[1]);
  std::istringstream line(corun::test::read_line(out[0]));
  ::close(out[0]);
  KilledOwner owner;
  owner.pid = child;
  std::string word;
  for (std::size_t i = 0; i < shapes.size() && line >> word; ++i) owner.names.push_back(word);
  if (fork_child) {
    std::string owns;
    line >> owner.grandchild >> owner.grandchild_owner_fds >> owns;
    owner.grandchild_owner = owns != "not-owner";
  }
  return owner;
}
}  // namespace

TEST_CASE("a killed owner's zero-length array is swept while the owner is still a zombie",
          "[shared_array][sweep]") {
  const bool reap = GENERATE(false, true);
  INFO((reap ? "owner reaped" : "owner not reaped (a zombie)"));
  const KilledOwner owner = start_owner({{0}, {16}, {4, 0}}, false);
  REQUIRE(owner.names.size() == 3);
  for (const std::string& name : owner.names) REQUIRE(shm_exists(name));
  REQUIRE(::kill(owner.pid, SIGKILL) == 0);
  if (reap)
    REQUIRE(::waitpid(owner.pid, nullptr, 0) == owner.pid);
  else
    REQUIRE(corun::test::wait_ended_unreaped(owner.pid));
  const std::vector<std::string> removed = corun::sweep_stale_segments();
  for (const std::string& name : owner.names) {
    INFO("segment " << name);
    CHECK(has_name(removed, name));
    CHECK_FALSE(shm_exists(name));
  }
  if (!reap) REQUIRE(::waitpid(owner.pid, nullptr, 0) == owner.pid);
}

TEST_CASE("a killed owner's segments are swept while a child it forked still runs",
          "[shared_array][sweep]") {
  corun::test::SubreaperScope reaper;  // the orphaned grandchild is reaped here
  const KilledOwner owner = start_owner({{16}, {0}}, true);
  REQUIRE(owner.names.size() == 2);
  REQUIRE(owner.grandchild > 0);
  // The child holds no descriptor of the segment (the lock would keep it alive) and knows its
  // copy of the array is not the owner.
  CHECK(owner.grandchild_owner_fds == 0);
  CHECK_FALSE(owner.grandchild_owner);
  REQUIRE(::kill(owner.pid, SIGKILL) == 0);
  REQUIRE(::waitpid(owner.pid, nullptr, 0) == owner.pid);
  REQUIRE(::kill(owner.grandchild, 0) == 0);  // still running
  const std::vector<std::string> removed = corun::sweep_stale_segments();
  for (const std::string& name : owner.names) {
    INFO("segment " << name);
    CHECK(has_name(removed, name));
    CHECK_FALSE(shm_exists(name));
  }
  ::kill(owner.grandchild, SIGKILL);
  CHECK(::waitpid(owner.grandchild, nullptr, 0) == owner.grandchild);
}

TEST_CASE("a segment created while a sweep runs is never lost", "[shared_array][sweep]") {
  // A segment is made under a pending name and appears under its own only once locked, so a
  // sweep never sees it unowned. Sweeps in a child, as a worker's would, against 2000 creations.
  const pid_t sweeper = ::fork();
  REQUIRE(sweeper >= 0);
  if (sweeper == 0) {
    for (;;) (void)corun::sweep_stale_segments();
  }
  const corun::test::KillOnExit stop_sweeper{sweeper};
  bool all_there = true;
  for (int i = 0; i < 2000 && all_there; ++i) {
    auto empty = Ints::create({0});
    auto small = Ints::create({1});
    all_there = shm_exists(empty.name()) && shm_exists(small.name());
  }
  CHECK(all_there);
}

TEST_CASE("a sweep leaves a living creator's pending segment and removes a dead one's",
          "[shared_array][sweep]") {
  // What create() makes before the rename: corun_<pid>_<16 hex>.pending, unlocked for a moment.
  const auto make_pending = [](pid_t pid) {
    char name[64];
    std::snprintf(name, sizeof name, "corun_%d_00000000deadbeef.pending", static_cast<int>(pid));
    const int fd = ::shm_open(("/" + std::string(name)).c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    REQUIRE(fd >= 0);
    ::close(fd);
    return std::string(name);
  };
  const pid_t dead = ::fork();
  REQUIRE(dead >= 0);
  if (dead == 0) ::_exit(0);
  REQUIRE(::waitpid(dead, nullptr, 0) == dead);
  const std::string mine = make_pending(::getpid());
  const std::string orphan = make_pending(dead);
  const std::vector<std::string> removed = corun::sweep_stale_segments();
  CHECK_FALSE(has_name(removed, mine));
  CHECK(shm_exists(mine));
  CHECK(has_name(removed, orphan));
  CHECK_FALSE(shm_exists(orphan));
  ::shm_unlink(("/" + mine).c_str());
}

TEST_CASE("create leaves no pending segment behind, also when the name is taken",
          "[shared_array]") {
  const std::string prefix = "corun_" + std::to_string(::getpid()) + "_";
  const auto pending_left = [&] {
    std::size_t n = 0;
    if (DIR* dir = ::opendir("/dev/shm")) {
      while (const dirent* entry = ::readdir(dir)) {
        const std::string name = entry->d_name;
        if (name.rfind(prefix, 0) == 0 && name.size() > 8 &&
            name.compare(name.size() - 8, 8, ".pending") == 0)
          ++n;
      }
      ::closedir(dir);
    }
    return n;
  };
  auto first = Ints::create({4}, "corun_test_taken_" + std::to_string(::getpid()));
  CHECK_THROWS_WITH(Ints::create({4}, first.name()),
                    Catch::Contains("named '" + first.name() + "' exists already"));
  auto other = Ints::create({4});
  CHECK(pending_left() == 0);
}
