// Workers that cannot eat the machine and hooks that cannot hang it: PoolOptions::worker_max_rss
// replaces a worker whose resident memory grew, worker_memory_limit fails the task that went
// past it (memory_exceeded) and the pool goes on, worker_init_timeout and worker_exit_timeout
// kill hooks that never return. Real processes, real hooks that sleep for ever.
#include <corun/pool.hpp>

#include "support/drive.hpp"
#include "support/support.hpp"
#include "support/workers.hpp"

#include <corun/diagnostics.hpp>
#include <corun/orchestrator.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <numeric>
#include <regex>
#include <set>
#include <string>
#include <utility>
#include <vector>

using namespace corun;
using corun::test::AddInts;
using corun::test::drive;
using corun::test::iota_array;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kUnderAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kUnderAddressSanitizer = true;
#else
constexpr bool kUnderAddressSanitizer = false;
#endif
#else
constexpr bool kUnderAddressSanitizer = false;
#endif

constexpr std::int64_t kMiB = std::int64_t{1} << 20;

/// This process's resident and virtual bytes, from /proc/self/statm.
std::pair<std::int64_t, std::int64_t> memory_bytes() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) pages = resident = 0;
    std::fclose(f);
  }
  const long page = ::sysconf(_SC_PAGESIZE);
  return {resident * page, pages * page};
}

/// Memory a task holds on to for the rest of its process's life (a leak, a cache).
std::vector<std::vector<char>>& held() {
  static std::vector<std::vector<char>> blocks;
  return blocks;
}

/// Holds (and touches) as many MiB as the first row of its slice says, for good; returns
/// {pid, resident bytes after the task, virtual bytes after the task}.
struct Hold : Worker<Hold, std::int64_t> {
  using Worker::Worker;
  static std::vector<std::int64_t> process(SliceView<const std::int64_t> slice) {
    if (slice(0) > 0) held().emplace_back(static_cast<std::size_t>(slice(0) * kMiB), 'x');
    const auto [resident, virtual_size] = memory_bytes();
    return {::getpid(), resident, virtual_size};
  }
};

/// Allocates (and touches) as many MiB as the first row of its slice says, then frees them;
/// returns its pid.
struct Allocate : Worker<Allocate, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(SliceView<const std::int64_t> slice) {
    std::vector<char> block(static_cast<std::size_t>(slice(0) * kMiB), 'x');
    return ::getpid() + (block.empty() ? 0 : block.back() - 'x');
  }
};

/// Runs one task of W over slice [row, row + 1) and returns its result.
template <class W>
auto run_one(asio::io_context& io, ProcessPool& pool, const DataIterator& it, std::size_t row) {
  auto future = pool.async_execute<W>(it, Slice{row, row + 1}, asio::use_future);
  return drive(io, future);
}

/// The pool's worker_exit hook for these tests: writes <CORUN_TEST_HOOK_DIR>/exit_<pid>.
void exit_marker(const WorkerInfo& info) {
  std::ofstream(std::string(std::getenv("CORUN_TEST_HOOK_DIR")) + "/exit_" +
                std::to_string(info.pid))
      << info.worker_id;
}

/// A hook directory for a test, removed at the end.
struct HookDir {
  std::string path;
  HookDir() {
    char dir[] = "/tmp/corun_limits_XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    path = dir;
    ::setenv("CORUN_TEST_HOOK_DIR", dir, 1);
  }
  ~HookDir() {
    std::filesystem::remove_all(path);
    ::unsetenv("CORUN_TEST_HOOK_DIR");
  }
  bool exited(std::int64_t pid) const {
    return std::filesystem::exists(path + "/exit_" + std::to_string(pid));
  }
};

/// Hooks that never return: the behaviour under test.
[[noreturn]] void hang_forever(const WorkerInfo&) {
  for (;;) ::pause();
}

/// Collects corun's diagnostics while it lives.
struct DiagnosticsCapture {
  std::mutex mutex;
  std::vector<std::string> messages;
  DiagnosticsHandler previous;
  DiagnosticsCapture() {
    previous = set_diagnostics_handler([this](std::string_view m) {
      const std::lock_guard lock(mutex);
      messages.emplace_back(m);
    });
  }
  ~DiagnosticsCapture() { set_diagnostics_handler(previous); }
  std::vector<std::string> taken() {
    const std::lock_guard lock(mutex);
    return messages;
  }
};

const char* method_name(StartMethod method) {
  return method == StartMethod::spawn ? "spawn" : "fork";
}

}  // namespace

TEST_CASE("worker_max_rss replaces a worker whose resident memory grew, losing no task",
          "[pool][limits][max_rss]") {
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork);
  INFO(method_name(method));
  asio::io_context io;
  auto sizes = SharedArray<std::int64_t>::create({4});
  std::fill(sizes.begin(), sizes.end(), 0);
  sizes[1] = 96;  // the second task holds 96 MiB
  const auto it = DataIterator::over(sizes, 1);
  // What a fresh worker holds, measured by one, so the bound sits 48 MiB above it.
  std::int64_t baseline = 0;
  {
    ProcessPool probe{io.get_executor(), {.workers = 1, .start_method = method}};
    const auto fresh = run_one<Hold>(io, probe, it, 0);
    baseline = fresh.at(1);
    // Printed, not asserted: what a worker of this test program holds, for the README.
    WARN(method_name(method) << " worker of this test: resident " << fresh.at(1) / kMiB
                             << " MiB, address space " << fresh.at(2) / kMiB << " MiB");
    auto shutdown = probe.async_shutdown(asio::use_future);
    drive(io, shutdown);
  }
  REQUIRE(baseline > 0);
  HookDir hooks;
  const auto bound = static_cast<std::size_t>(baseline + 48 * kMiB);
  ProcessPool pool{
      io.get_executor(),
      {.workers = 1, .start_method = method, .worker_exit = exit_marker, .worker_max_rss = bound}};
  const auto first = run_one<Hold>(io, pool, it, 0);
  const auto grew = run_one<Hold>(io, pool, it, 1);
  const auto after = run_one<Hold>(io, pool, it, 2);
  const auto again = run_one<Hold>(io, pool, it, 3);
  INFO("baseline " << baseline << " bytes, bound " << bound << ", after the hold " << grew.at(1));
  CHECK(first.at(1) <= static_cast<std::int64_t>(bound));
  CHECK(grew.at(0) == first.at(0));  // the task that grew ran, and completed, where it was sent
  CHECK(grew.at(1) > static_cast<std::int64_t>(bound));
  CHECK(after.at(0) != first.at(0));  // then a fresh process took its place
  CHECK(again.at(0) == after.at(0));  // which stays: it holds little
  // Replaced gracefully: its exit hook ran, and it is not a failed start.
  CHECK(hooks.exited(first.at(0)));
  CHECK(pool.health().failed_starts == 0);
  auto shutdown = pool.async_shutdown(asio::use_future);
  drive(io, shutdown);
  CHECK(hooks.exited(after.at(0)));
  CHECK(corun::test::child_pids().empty());
}

TEST_CASE("worker_max_rss with tasks queued at a growing worker runs every one of them",
          "[pool][limits][max_rss]") {
  asio::io_context io;
  // 2 workers, 12 tasks at once: the first two (one at each worker) hold 96 MiB, so both
  // retire with tasks still queued at them, and are replaced.
  auto sizes = SharedArray<std::int64_t>::create({12});
  std::fill(sizes.begin(), sizes.end(), 0);
  sizes[0] = sizes[1] = 96;
  const auto it = DataIterator::over(sizes, 1);
  ProcessPool pool{io.get_executor(),
                   {.workers = 2, .pipeline_depth = 3, .worker_max_rss = std::size_t{80} << 20}};
  auto ready = pool.async_wait_ready(asio::use_future);
  drive(io, ready);
  const auto before = pool.worker_pids();
  std::vector<std::future<std::vector<std::int64_t>>> results;
  for (Slice s : it) results.push_back(pool.async_execute<Hold>(it, s, asio::use_future));
  std::set<std::int64_t> pids;
  for (auto& r : results) pids.insert(drive(io, r).at(0));  // none failed
  CHECK(pids.size() >= 2);
  auto replaced = pool.async_wait_ready(asio::use_future);
  drive(io, replaced);
  // Neither process that grew is left.
  for (const pid_t pid : pool.worker_pids())
    CHECK(std::find(before.begin(), before.end(), pid) == before.end());
  CHECK(pool.health().failed_starts == 0);
  auto shutdown = pool.async_shutdown(asio::use_future);
  drive(io, shutdown);
  CHECK(corun::test::child_pids().empty());
}

TEST_CASE(
    "worker_memory_limit fails a task that allocates past it as memory_exceeded, and the pool "
    "goes on, with a 64 MiB mapped array under a 256 MiB limit",
    "[pool][limits][memory_limit]") {
  if (kUnderAddressSanitizer) {
    WARN(
        "SKIPPED: RLIMIT_AS cannot work under AddressSanitizer, whose shadow memory takes "
        "terabytes of address space; corun does not apply worker_memory_limit there");
    return;
  }
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork);
  INFO(method_name(method));
  asio::io_context io;
  constexpr std::size_t limit = std::size_t{256} << 20;
  ProcessPool pool{io.get_executor(),
                   {.workers = 1, .start_method = method, .worker_memory_limit = limit}};
  // 8 Mi rows of int64: a 64 MiB segment, mapped whole by the worker.
  constexpr std::size_t rows = std::size_t{8} << 20;
  auto big = SharedArray<std::int64_t>::create({rows});
  std::iota(big.begin(), big.end(), std::int64_t{1});
  auto sum =
      pool.async_execute<AddInts>(DataIterator::over(big, rows), Slice{0, rows}, asio::use_future);
  CHECK(drive(io, sum) == static_cast<std::int64_t>(rows) * (rows + 1) / 2);

  auto sizes = SharedArray<std::int64_t>::create({3});
  sizes[0] = 32;   // fits
  sizes[1] = 512;  // does not
  sizes[2] = 32;
  const auto it = DataIterator::over(sizes, 1);
  const std::int64_t pid = run_one<Allocate>(io, pool, it, 0);
  try {
    run_one<Allocate>(io, pool, it, 1);
    FAIL("a 512 MiB allocation under a 256 MiB limit succeeded");
  } catch (const TaskFailed& e) {
    CHECK(e.code() == errc::memory_exceeded);
    CHECK(e.error().kind == TaskErrorKind::memory_exceeded);
    CHECK(e.error().exception_type == "std::bad_alloc");
    CHECK(e.error().pid == pid);
    CHECK(e.error().message ==
          "an allocation failed (std::bad_alloc: std::bad_alloc) under "
          "PoolOptions::worker_memory_limit = 268435456 bytes (256 MiB), a limit on the worker's "
          "address space that shared arrays it maps count towards; raise "
          "PoolOptions::worker_memory_limit, or make the task use less memory");
  }
  // The pool goes on, on a fresh worker (the one that ran out is replaced).
  const std::int64_t next = run_one<Allocate>(io, pool, it, 2);
  CHECK(next != pid);
  auto sum_again =
      pool.async_execute<AddInts>(DataIterator::over(big, rows), Slice{0, rows}, asio::use_future);
  CHECK(drive(io, sum_again) == static_cast<std::int64_t>(rows) * (rows + 1) / 2);
  CHECK(pool.health().failed_starts == 0);
  auto shutdown = pool.async_shutdown(asio::use_future);
  drive(io, shutdown);
  CHECK(corun::test::child_pids().empty());
}

namespace {
/// A worker_init that allocates 512 MiB.
void allocate_in_init(const WorkerInfo&) {
  std::vector<char> block(std::size_t{512} << 20, 'x');
  if (block.back() != 'x') std::abort();
}
}  // namespace

TEST_CASE("worker_memory_limit covers worker_init: an init past it is a failed start",
          "[pool][limits][memory_limit][failure]") {
  if (kUnderAddressSanitizer) {
    WARN("SKIPPED: RLIMIT_AS cannot work under AddressSanitizer (terabytes of shadow memory)");
    return;
  }
  asio::io_context io;
  ProcessPool pool{io.get_executor(),
                   {.workers = 1,
                    .start_attempts = 1,
                    .worker_init = allocate_in_init,
                    .worker_memory_limit = std::size_t{256} << 20}};
  auto ready = pool.async_wait_ready(asio::use_future);
  try {
    drive(io, ready);
    FAIL("the pool started");
  } catch (const Error& e) {
    CHECK(e.code() == errc::worker_start_failed);
    CHECK_THAT(e.what(), Catch::Matches("corun: worker process [0-9]+ \\(slot 0\\) worker_init "
                                        "threw: std::bad_alloc \\(1 consecutive worker starts "
                                        "failed; the pool gives up\\): worker process "
                                        "failed to start"));
  }
  CHECK(corun::test::child_pids().empty());
}

TEST_CASE("a worker_memory_limit above the hard RLIMIT_AS fails the start, saying so",
          "[pool][limits][memory_limit][failure]") {
  if (kUnderAddressSanitizer) {
    WARN("SKIPPED: RLIMIT_AS cannot work under AddressSanitizer (terabytes of shadow memory)");
    return;
  }
  // In a child of its own, whose hard limit (inherited by its workers) cannot be raised again.
  const auto report = corun::test::report_from_child([] {
    const rlimit hard{rlim_t{8} << 30, rlim_t{8} << 30};
    if (::setrlimit(RLIMIT_AS, &hard) != 0) return std::string("setrlimit failed");
    asio::io_context io;
    ProcessPool pool{
        io.get_executor(),
        {.workers = 1, .start_attempts = 1, .worker_memory_limit = std::size_t{16} << 30}};
    auto ready = pool.async_wait_ready(asio::use_future);
    try {
      drive(io, ready);
      return std::string("the pool started");
    } catch (const Error& e) {
      return std::string(e.code() == errc::worker_start_failed ? "" : "wrong code: ") + e.what();
    }
  });
  CHECK(WIFEXITED(report.status));
  CHECK(WEXITSTATUS(report.status) == 0);
  CHECK_THAT(report.output,
             Catch::Matches("corun: worker process [0-9]+ \\(slot 0\\) cannot apply "
                            "PoolOptions::worker_memory_limit of 17179869184 bytes: the hard "
                            "RLIMIT_AS of this process is 8589934592 bytes, below the limit asked "
                            "\\(1 consecutive worker starts failed; the pool gives up\\): "
                            "worker process failed to start"));
}

TEST_CASE("without worker_memory_limit a std::bad_alloc is an exception like any other",
          "[pool][limits][memory_limit]") {
  struct ThrowBadAlloc : Worker<ThrowBadAlloc, std::int64_t> {
    using Worker::Worker;
    static std::int64_t process(SliceView<const std::int64_t>) { throw std::bad_alloc(); }
  };
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1}};
  auto ints = iota_array(2);
  auto future =
      pool.async_execute<ThrowBadAlloc>(DataIterator::over(ints, 1), Slice{0, 1}, asio::use_future);
  try {
    drive(io, future);
    FAIL("expected TaskFailed");
  } catch (const TaskFailed& e) {
    CHECK(e.code() == errc::task_exception);
    CHECK(e.error().kind == TaskErrorKind::exception);
    CHECK(e.error().exception_type == "std::bad_alloc");
    CHECK(e.error().message == "std::bad_alloc");
  }
}

TEST_CASE("a worker_init that never returns is killed after worker_init_timeout, a failed start",
          "[pool][limits][timeouts][failure]") {
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork);
  const std::size_t workers = GENERATE(1u, 2u);
  INFO(method_name(method) << ", " << workers << " worker(s)");
  asio::io_context io;
  ProcessPool pool{io.get_executor(),
                   {.workers = workers,
                    .start_method = method,
                    .start_attempts = 2,
                    .worker_init = hang_forever,
                    .worker_init_timeout = std::chrono::milliseconds(200)}};
  const auto first_pids = pool.worker_pids();
  auto ready = pool.async_wait_ready(asio::use_future);
  try {
    drive(io, ready);
    FAIL("the pool started");
  } catch (const Error& e) {
    CHECK(e.code() == errc::worker_start_failed);
    CHECK_THAT(e.what(),
               Catch::Matches("corun: worker process [0-9]+ \\(slot [01]\\) worker_init did not "
                              "return within 200 ms \\(PoolOptions::worker_init_timeout\\); "
                              "killed \\(2 consecutive worker starts failed; the pool gives up\\): "
                              "worker process failed to start"));
  }
  const PoolHealth health = pool.health();
  CHECK(health.failed);
  CHECK(health.failed_starts == 2);
  // Every worker it started is gone, reaped.
  for (const pid_t pid : first_pids) CHECK(::kill(pid, 0) != 0);
  CHECK(corun::test::child_pids().empty());
  auto refused = pool.async_execute<AddInts>(DataIterator::over(iota_array(2), 1), Slice{0, 1},
                                             asio::use_future);
  CHECK_THROWS_AS(drive(io, refused), Error);
}

namespace {
/// A Worker type whose own per-process exit hook never returns.
struct HangsAtExit : Worker<HangsAtExit, std::int64_t> {
  using Worker::Worker;
  struct State {
    int tasks = 0;
  };
  static State init_state(const NoParams&, const WorkerInfo&) { return {}; }
  [[noreturn]] static void worker_exit(State&, const NoParams&, const WorkerInfo& info) {
    hang_forever(info);
  }
  static std::int64_t process(SliceView<const std::int64_t>, const TaskContext& ctx) {
    ++ctx.state<State>().tasks;
    return ctx.worker_id;
  }
};
}  // namespace

TEST_CASE(
    "an exit hook that never returns is reported once per worker and killed after "
    "worker_exit_timeout: async_shutdown completes",
    "[pool][limits][timeouts]") {
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork);
  const std::size_t workers = GENERATE(1u, 2u);
  const bool type_hook = GENERATE(false, true);  // the pool's worker_exit, or the type's
  INFO(method_name(method) << ", " << workers << " worker(s), "
                           << (type_hook ? "the Worker type's" : "the pool's") << " exit hook");
  DiagnosticsCapture diagnostics;
  asio::io_context io;
  PoolOptions options{.workers = workers, .start_method = method};
  if (!type_hook) options.worker_exit = hang_forever;
  options.worker_exit_timeout = std::chrono::milliseconds(200);
  ProcessPool pool{io.get_executor(), options};
  auto ready = pool.async_wait_ready(asio::use_future);
  drive(io, ready);
  const auto pids = pool.worker_pids();
  // One task at each worker (the least loaded gets the next), so each has the type's State.
  auto ints = iota_array(workers);
  const auto it = DataIterator::over(ints, 1);
  std::vector<std::future<std::int64_t>> tasks;
  for (Slice s : it) tasks.push_back(pool.async_execute<HangsAtExit>(it, s, asio::use_future));
  std::set<std::int64_t> ids;
  for (auto& t : tasks) ids.insert(drive(io, t));
  CHECK(ids.size() == workers);
  auto shutdown = pool.async_shutdown(asio::use_future);
  drive(io, shutdown);  // completes: the test would time out here otherwise
  const auto messages = diagnostics.taken();
  REQUIRE(messages.size() == workers);
  std::set<pid_t> reported;
  const std::regex pattern(
      "corun: worker process ([0-9]+) \\(slot ([01])\\): its exit hooks did not return within "
      "200 ms \\(PoolOptions::worker_exit_timeout\\); killed");
  for (const auto& m : messages) {
    std::smatch match;
    INFO(m);
    REQUIRE(std::regex_match(m, match, pattern));
    reported.insert(static_cast<pid_t>(std::stol(match[1])));
  }
  CHECK(reported == std::set<pid_t>(pids.begin(), pids.end()));
  for (const pid_t pid : pids) CHECK(::kill(pid, 0) != 0);
  CHECK(pool.worker_pids().empty());
  CHECK(corun::test::child_pids().empty());
}

TEST_CASE("hook timeouts do not fire for hooks that return in time", "[pool][limits][timeouts]") {
  DiagnosticsCapture diagnostics;
  HookDir hooks;
  asio::io_context io;
  ProcessPool pool{io.get_executor(),
                   {.workers = 2,
                    .worker_init = corun::test::init_hook,
                    .worker_exit = exit_marker,
                    .worker_init_timeout = std::chrono::milliseconds(30'000),
                    .worker_exit_timeout = std::chrono::milliseconds(30'000)}};
  auto ints = iota_array(10);
  auto sum =
      pool.async_execute<AddInts>(DataIterator::over(ints, 10), Slice{0, 10}, asio::use_future);
  CHECK(drive(io, sum) == 55);
  const auto pids = pool.worker_pids();
  auto shutdown = pool.async_shutdown(asio::use_future);
  drive(io, shutdown);
  for (const pid_t pid : pids) CHECK(hooks.exited(pid));
  CHECK(diagnostics.taken().empty());
  CHECK(pool.health().failed_starts == 0);
}

TEST_CASE("negative hook timeouts are rejected by name", "[pool][limits][failure]") {
  asio::io_context io;
  CHECK_THROWS_WITH(
      (ProcessPool{io.get_executor(), {.worker_init_timeout = std::chrono::milliseconds(-1)}}),
      "corun::PoolOptions::worker_init_timeout = -1 ms: must not be negative (0 means no limit)");
  CHECK_THROWS_WITH(
      (ProcessPool{io.get_executor(), {.worker_exit_timeout = std::chrono::milliseconds(-7)}}),
      "corun::PoolOptions::worker_exit_timeout = -7 ms: must not be negative (0 means no limit)");
}
