#include <corun/pool.hpp>

#include "support/drive.hpp"
#include "support/support.hpp"
#include "support/workers.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <asio/co_spawn.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace corun;
using corun::test::AddInts;
using corun::test::drive;
using corun::test::iota_array;

namespace {
/// Blocks until process `pid` (not necessarily our child) has exited.
bool wait_for_exit(pid_t pid) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH;  // already gone
  pollfd p{fd, POLLIN, 0};
  const int rc = ::poll(&p, 1, 10'000);
  ::close(fd);
  return rc == 1;
}

bool alive(pid_t pid) {
  return ::kill(pid, 0) == 0;
}

/// The failure paths below run with both ways of waiting (PoolOptions::wait): the socket
/// alone, and the frame rings beside it.
WaitMode wait_mode(bool spin) {
  return spin ? WaitMode::spin(std::chrono::microseconds(200)) : WaitMode::blocking();
}
}  // namespace

TEST_CASE("async_execute runs one slice with a callback, use_future, deferred and use_awaitable",
          "[pool]") {
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork, StartMethod::serial);
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2, .start_method = method}};
  auto ints = iota_array(100);
  const auto it = DataIterator::over(ints, 10);

  std::int64_t by_callback = 0;
  bool called = false;
  pool.async_execute<AddInts>(it, Slice{0, 10}, [&](std::exception_ptr e, std::int64_t v) {
    CHECK(!e);
    by_callback = v;
    called = true;
  });
  while (!called) {
    if (io.stopped()) io.restart();
    io.run_one();
  }
  CHECK(by_callback == 55);

  auto future = pool.async_execute<AddInts>(it, Slice{90, 100}, asio::use_future);
  CHECK(drive(io, future) == 955);

  auto deferred = pool.async_execute<AddInts>(it, Slice{10, 20}, asio::experimental::deferred);
  std::promise<std::int64_t> promised;
  auto deferred_future = promised.get_future();
  std::move(deferred)([&](std::exception_ptr, std::int64_t v) { promised.set_value(v); });
  CHECK(drive(io, deferred_future) == 155);

  std::promise<std::int64_t> from_coroutine;
  auto coroutine_future = from_coroutine.get_future();
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        // Incremental work: each step is one awaited slice.
        std::int64_t total = 0;
        for (Slice s : it)
          total += co_await pool.async_execute<AddInts>(it, s, asio::use_awaitable);
        from_coroutine.set_value(total);
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  CHECK(drive(io, coroutine_future) == 5050);
}

TEST_CASE("a task's failure is rethrown at the co_await as TaskFailed", "[pool][failure]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1}};
  auto ints = iota_array(10);
  ints[2] = -1;
  auto future = pool.async_execute<corun::test::Faulty>(DataIterator::over(ints, 5), Slice{0, 5},
                                                        asio::use_future);
  try {
    drive(io, future);
    FAIL("expected TaskFailed");
  } catch (const TaskFailed& e) {
    CHECK(e.code() == errc::task_exception);
    CHECK(e.error().kind == TaskErrorKind::exception);
    CHECK(e.error().slice == Slice{0, 5});
    CHECK(e.error().message == "row value -1 is poison");
  }
}

TEST_CASE("a result over max_result_bytes is an error that says so", "[pool][failure]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1, .max_result_bytes = 4096}};
  auto ints = iota_array(10);
  const auto it = DataIterator::over(ints, 10);
  auto small = pool.async_execute<corun::test::Blob>(it, Slice{0, 4}, asio::use_future);
  CHECK(drive(io, small).size() == 4096);
  auto big = pool.async_execute<corun::test::Blob>(it, Slice{0, 5}, asio::use_future);
  try {
    drive(io, big);
    FAIL("expected TaskFailed");
  } catch (const TaskFailed& e) {
    CHECK(e.error().kind == TaskErrorKind::protocol);
    CHECK_THAT(e.error().message,
               Catch::Contains("5120 bytes exceeds PoolOptions::max_result_bytes (4096)"));
  }
  // The worker survived and serves the next task.
  auto again = pool.async_execute<AddInts>(it, Slice{0, 10}, asio::use_future);
  CHECK(drive(io, again) == 55);
}

namespace {
/// 2,000,000 bytes, byte i being i % 251: a truncated or shifted result does not compare equal.
std::vector<char> two_megabytes() {
  std::vector<char> bytes(2'000'000);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i % 251);
  return bytes;
}
}  // namespace

TEST_CASE("a 2 MB result comes back intact with max_result_bytes SIZE_MAX or another large limit",
          "[pool][limits]") {
  struct TwoMegabytes : Worker<TwoMegabytes, std::int64_t> {
    using Worker::Worker;
    static std::vector<char> process(SliceView<const std::int64_t>) { return two_megabytes(); }
  };
  // SIZE_MAX means the largest result the protocol carries: 4 GiB less 1 MiB, less 1.
  const std::size_t largest = 4293918719;
  const auto [limit, effective] = GENERATE_COPY(
      std::pair{std::numeric_limits<std::size_t>::max(), largest}, std::pair{largest, largest},
      std::pair{std::size_t{3} << 30, std::size_t{3} << 30},
      std::pair{std::size_t{2'000'000}, std::size_t{2'000'000}});
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork, StartMethod::serial);
  INFO("max_result_bytes " << limit);
  asio::io_context io;
  ProcessPool pool{io.get_executor(),
                   {.workers = 1, .start_method = method, .max_result_bytes = limit}};
  CHECK(pool.options().max_result_bytes == effective);
  auto ints = iota_array(4);
  const auto it = DataIterator::over(ints, 4);
  std::vector<std::vector<pid_t>> pids;
  for (int round = 0; round < 2; ++round) {
    auto future = pool.async_execute<TwoMegabytes>(it, Slice{0, 4}, asio::use_future);
    const std::vector<char> result = drive(io, future);
    REQUIRE(result.size() == 2'000'000);
    CHECK(result == two_megabytes());
    pids.push_back(pool.worker_pids());
  }
  // The worker that sent the first was not killed for it: the same process sent the second.
  CHECK(pids[0] == pids[1]);
}

TEST_CASE("a max_result_bytes the protocol cannot carry is rejected at construction, by name",
          "[pool][limits][failure]") {
  asio::io_context io;
  for (const std::size_t limit : {std::size_t{4293918720}, std::size_t{1} << 32,
                                  std::numeric_limits<std::size_t>::max() - 1}) {
    INFO("max_result_bytes " << limit);
    CHECK_THROWS_AS((ProcessPool{io.get_executor(), {.workers = 1, .max_result_bytes = limit}}),
                    std::invalid_argument);
    CHECK_THROWS_WITH((ProcessPool{io.get_executor(), {.workers = 1, .max_result_bytes = limit}}),
                      "corun::PoolOptions::max_result_bytes = " + std::to_string(limit) +
                          ": a result frame carries at most 4293918719 bytes; give that or less "
                          "(or SIZE_MAX, which means that largest size)");
  }
}

TEST_CASE("a slice outside the array fails that task with a clear message", "[pool][failure]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1}};
  auto ints = iota_array(10);
  auto future =
      pool.async_execute<AddInts>(DataIterator::over(ints, 5), Slice{5, 11}, asio::use_future);
  CHECK_THROWS_WITH(drive(io, future),
                    Catch::Contains("slice [5, 11) is outside the array of 10 rows"));
}

TEST_CASE("a worker type without CORUN_REGISTER_WORKER registers itself in every process",
          "[pool][registration]") {
  // A local type, named by no macro: async_execute's use of it registers it at start-up of
  // every process of this program, a spawned worker (which re-executes it) included.
  struct Unlisted : Worker<Unlisted, std::int64_t> {
    using Worker::Worker;
    static std::int64_t process(SliceView<const std::int64_t> slice) {
      return 10 * static_cast<std::int64_t>(slice.size());
    }
  };
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork, StartMethod::serial);
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1, .start_method = method}};
  auto ints = iota_array(4);
  auto future =
      pool.async_execute<Unlisted>(DataIterator::over(ints, 3), Slice{0, 3}, asio::use_future);
  CHECK(drive(io, future) == 30);
  CHECK_THAT(detail::require_registered(typeid(Unlisted)), Catch::Contains("Unlisted"));
  auto shutdown = pool.async_shutdown(asio::use_future);
  drive(io, shutdown);
}

TEST_CASE("bad pool options are rejected by name", "[pool][failure]") {
  asio::io_context io;
  CHECK_THROWS_WITH((ProcessPool{io.get_executor(), {.pipeline_depth = 0}}),
                    Catch::Contains("pipeline_depth = 0"));
  CHECK_THROWS_WITH(
      (ProcessPool{io.get_executor(), {.task_timeout = std::chrono::milliseconds(-5)}}),
      Catch::Contains("task_timeout = -5 ms"));
  CHECK_THROWS_WITH(
      (ProcessPool{io.get_executor(), {.pipeline_depth = 4, .max_pipeline_depth = 3}}),
      Catch::Contains("max_pipeline_depth = 3: must be at least pipeline_depth (4)"));
}

TEST_CASE("the default pool has one worker per hwloc core and becomes ready", "[pool]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor()};
  CHECK(pool.size() >= 1);
  CHECK(pool.size() <= std::thread::hardware_concurrency());
  auto ready = pool.async_wait_ready(asio::use_future);
  drive(io, ready);
  CHECK(pool.worker_pids().size() == pool.size());
}

TEST_CASE("terminate kills busy workers at once and leaves no process", "[pool][lifecycle]") {
  const bool spin = GENERATE(false, true);
  INFO((spin ? "spinning" : "blocking"));
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2, .wait = wait_mode(spin)}};
  auto ints = iota_array(4);
  ints[0] = -5;
  ints[2] = -5;  // both workers block forever
  const auto it = DataIterator::over(ints, 2);
  auto a = pool.async_execute<corun::test::Faulty>(it, Slice{0, 2}, asio::use_future);
  auto b = pool.async_execute<corun::test::Faulty>(it, Slice{2, 4}, asio::use_future);
  auto ready = pool.async_wait_ready(asio::use_future);
  drive(io, ready);
  const auto pids = pool.worker_pids();
  REQUIRE(pids.size() == 2);
  pool.terminate();
  // terminate() reaps synchronously: the processes are gone when it returns.
  for (pid_t pid : pids) CHECK_FALSE(alive(pid));
  CHECK(corun::test::child_pids().empty());
  CHECK_THROWS_AS(drive(io, a), std::system_error);
  CHECK_THROWS_AS(drive(io, b), std::system_error);
  auto refused = pool.async_execute<AddInts>(it, Slice{0, 2}, asio::use_future);
  CHECK_THROWS_WITH(drive(io, refused), Catch::Contains("shut down"));
  CHECK(corun::test::segments_of_pid(::getpid()).size() == 1);  // the array; no rings
}

TEST_CASE("async_shutdown finishes queued work, then workers exit; new tasks are refused",
          "[pool][lifecycle]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2}};
  auto ints = iota_array(100);
  const auto it = DataIterator::over(ints, 10);
  std::vector<std::future<std::int64_t>> results;
  for (Slice s : it) results.push_back(pool.async_execute<AddInts>(it, s, asio::use_future));
  auto shutdown = pool.async_shutdown(asio::use_future);
  drive(io, shutdown);
  std::int64_t total = 0;
  for (auto& f : results) total += f.get();
  CHECK(total == 5050);
  CHECK(pool.worker_pids().empty());
  CHECK(corun::test::child_pids().empty());
  auto refused = pool.async_execute<AddInts>(it, Slice{0, 10}, asio::use_future);
  CHECK_THROWS_AS(drive(io, refused), Error);
}

TEST_CASE("a pool destroyed without shutdown leaves no process or descriptor",
          "[pool][lifecycle]") {
  const int fds = corun::test::open_fd_count();
  {
    asio::io_context io;
    ProcessPool pool{io.get_executor(), {.workers = 3}};
    auto ready = pool.async_wait_ready(asio::use_future);
    drive(io, ready);
    CHECK(corun::test::child_pids().size() == 3);
  }
  CHECK(corun::test::child_pids().empty());
  CHECK(corun::test::open_fd_count() == fds);
}

TEST_CASE("when the parent is killed its workers remove its segments and exit",
          "[pool][lifecycle]") {
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork);
  const int signal = GENERATE(SIGKILL, SIGINT);
  const bool spin = GENERATE(false, true);
  INFO((spin ? "spinning" : "blocking"));
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  const pid_t parent = ::fork();
  if (parent == 0) {
    ::close(pipe_fds[0]);
    std::signal(SIGINT, SIG_DFL);  // Ctrl-C's default action, not the test framework's
    asio::io_context io;
    auto a = iota_array(1000);
    auto b = iota_array(2000);
    ProcessPool pool{io.get_executor(),
                     {.workers = 2, .start_method = method, .wait = wait_mode(spin)}};
    auto ready = pool.async_wait_ready(asio::use_future);
    drive(io, ready);
    for (pid_t pid : pool.worker_pids()) (void)!::write(pipe_fds[1], &pid, sizeof pid);
    ::close(pipe_fds[1]);
    for (;;) ::pause();  // keep the pool and the arrays alive until killed
  }
  ::close(pipe_fds[1]);
  // Whatever fails below, the pool-owning child must not outlive the test.
  const corun::test::KillOnExit reaper{parent};
  std::vector<pid_t> workers(2);
  std::size_t got = 0;
  const auto want = sizeof(pid_t) * workers.size();
  while (got < want) {
    const ssize_t n =
        ::read(pipe_fds[0], reinterpret_cast<char*>(workers.data()) + got, want - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(pipe_fds[0]);
  REQUIRE(got == want);
  for (pid_t pid : workers) REQUIRE(alive(pid));
  // Its two arrays, and a spinning pool's two workers' rings.
  REQUIRE(corun::test::segments_of_pid(parent).size() == (spin ? 4u : 2u));
  const auto killed = std::chrono::steady_clock::now();
  ::kill(parent, signal);
  int status = 0;
  ::waitpid(parent, &status, 0);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == signal);
  for (pid_t pid : workers) CHECK(wait_for_exit(pid));
  // Printed, not asserted: the machine may be loaded.
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - killed).count();
  WARN("workers ended " << ms << " ms after signal " << signal);
  CHECK(corun::test::segments_of_pid(parent).empty());
}

TEST_CASE("a replacement started from a thread that then exits keeps working", "[pool][threads]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1}};
  auto ints = iota_array(4);
  ints[1] = -2;  // SIGSEGV
  const auto it = DataIterator::over(ints, 2);
  // A helper thread runs the loop while the worker crashes and its replacement starts.
  std::thread helper([&] {
    auto crash = pool.async_execute<corun::test::Faulty>(it, Slice{0, 2}, asio::use_future);
    CHECK_THROWS_AS(drive(io, crash), TaskFailed);
    auto ready = pool.async_wait_ready(asio::use_future);
    drive(io, ready);
  });
  helper.join();  // the thread that saw the replacement start is gone
  const pid_t replacement = pool.worker_pids().at(0);
  auto next = pool.async_execute<AddInts>(it, Slice{2, 4}, asio::use_future);
  CHECK(drive(io, next) == 7);
  CHECK(pool.worker_pids().at(0) == replacement);
}

TEST_CASE("task_timeout counts from the moment the worker starts the task", "[pool][failure]") {
  const bool spin = GENERATE(false, true);
  INFO((spin ? "spinning" : "blocking"));
  asio::io_context io;
  ProcessPool pool{
      io.get_executor(),
      {.workers = 1, .task_timeout = std::chrono::milliseconds(200), .wait = wait_mode(spin)}};
  auto ready = pool.async_wait_ready(asio::use_future);
  drive(io, ready);
  const pid_t worker = pool.worker_pids().at(0);
  auto ints = iota_array(4);
  const auto it = DataIterator::over(ints, 2);
  // The worker gets no CPU for 500 ms after the task was sent (as behind a busy core); the
  // task itself takes microseconds, so it must not time out.
  REQUIRE(::kill(worker, SIGSTOP) == 0);
  auto quick = pool.async_execute<AddInts>(it, Slice{0, 2}, asio::use_future);
  asio::steady_timer stopped_for(io, std::chrono::milliseconds(500));
  stopped_for.async_wait([worker](std::error_code) { ::kill(worker, SIGCONT); });
  CHECK(drive(io, quick) == 3);
  // A task that really runs too long still times out.
  ints[2] = -5;  // blocks forever
  auto stuck = pool.async_execute<corun::test::Faulty>(it, Slice{2, 4}, asio::use_future);
  try {
    drive(io, stuck);
    FAIL("a task that never ends did not time out");
  } catch (const TaskFailed& e) {
    CHECK(e.code() == errc::task_timeout);
  }
}

TEST_CASE("a crashed worker is replaced, with a new pid and the same slot", "[pool][failure]") {
  const bool spin = GENERATE(false, true);
  INFO((spin ? "spinning" : "blocking"));
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1, .wait = wait_mode(spin)}};
  auto ready = pool.async_wait_ready(asio::use_future);
  drive(io, ready);
  const pid_t first = pool.worker_pids().at(0);
  auto ints = iota_array(4);
  ints[1] = -2;
  const auto it = DataIterator::over(ints, 2);
  auto crash = pool.async_execute<corun::test::Faulty>(it, Slice{0, 2}, asio::use_future);
  try {
    drive(io, crash);
    FAIL("expected a crash");
  } catch (const TaskFailed& e) {
    CHECK(e.code() == errc::worker_crashed);
    CHECK(e.error().signal == SIGSEGV);
    CHECK(e.error().pid == first);
  }
  auto who = pool.async_execute<corun::test::WhoAmI>(it, Slice{2, 4}, asio::use_future);
  const auto v = drive(io, who);
  CHECK(v[0] == 0);
  CHECK(v[1] != first);
  CHECK(!alive(first));
}

TEST_CASE("an idle worker unmaps a segment once its owner removed it", "[pool][lifecycle]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1}};
  std::string name;
  std::string maps;
  auto mapped = [&] {
    std::ifstream in(maps);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text.find(name) != std::string::npos;
  };
  {
    auto ints = iota_array(1 << 20);
    name = ints.name();
    auto sum = pool.async_execute<AddInts>(DataIterator::over(ints, 1 << 20), Slice{0, 1 << 20},
                                           asio::use_future);
    CHECK(drive(io, sum) == std::int64_t{1 << 20} * ((1 << 20) + 1) / 2);
    maps = "/proc/" + std::to_string(pool.worker_pids().at(0)) + "/maps";
    CHECK(mapped());  // a live segment stays mapped, idle or not
  }                   // the owner removes the segment
  // The worker checks once per idle second; observe /proc for at most 20 s.
  bool released = false;
  for (int i = 0; i < 200 && !released; ++i) {
    released = !mapped();
    if (!released) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(released);
}

TEST_CASE(
    "destroying the owner returns a segment's memory to /dev/shm at once, while a worker "
    "still maps it",
    "[pool][lifecycle]") {
  // A worker unmaps a removed segment only after an idle second; until then its pages would
  // count against /dev/shm, and the next array of the same size would not fit (issue: the HTTP
  // server's 507 for a job submitted right after another was cancelled).
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1}};
  constexpr std::size_t n = 1 << 20;  // 8 MiB
  int fd = -1;
  {
    auto ints = iota_array(n);
    auto sum =
        pool.async_execute<AddInts>(DataIterator::over(ints, n), Slice{0, n}, asio::use_future);
    CHECK(drive(io, sum) == std::int64_t{n} * (n + 1) / 2);
    // A descriptor keeps the inode, so the test can see its blocks after the unlink.
    fd = ::shm_open(("/" + ints.name()).c_str(), O_RDONLY, 0);
    REQUIRE(fd >= 0);
    struct stat st {};
    REQUIRE(::fstat(fd, &st) == 0);
    CHECK(st.st_blocks * 512 >= static_cast<off_t>(n * sizeof(std::int64_t)));
  }  // the owner removes the segment; the idle worker has it mapped for up to a second more
  struct stat st {};
  REQUIRE(::fstat(fd, &st) == 0);
  CHECK(st.st_blocks == 0);
  ::close(fd);
}

TEST_CASE("a segment name reused for a new array is remapped by the workers", "[pool]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1}};
  const std::string name = "corun_test_reused_" + std::to_string(::getpid());
  for (std::int64_t round = 1; round <= 3; ++round) {
    auto ints = SharedArray<std::int64_t>::create({1000}, name);
    std::fill(ints.begin(), ints.end(), round);
    auto sum = pool.async_execute<AddInts>(DataIterator::over(ints, 1000), Slice{0, 1000},
                                           asio::use_future);
    CHECK(drive(io, sum) == 1000 * round);
  }
}

TEST_CASE("a pool destroyed while 4 threads run its executor calls every handler exactly once",
          "[pool][threads][lifecycle]") {
  auto ints = iota_array(4000);
  const auto it = DataIterator::over(ints, 1);
  const int fds = corun::test::open_fd_count();
  for (int round = 0; round < 20; ++round) {
    asio::io_context io;
    auto work = asio::make_work_guard(io);
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) threads.emplace_back([&io] { io.run(); });
    std::atomic<int> calls{0}, results{0}, aborted{0}, wrong{0};
    std::promise<void> some_done;
    {
      ProcessPool pool{io.get_executor(), {.workers = 2}};
      for (Slice s : it)
        pool.async_execute<AddInts>(it, s, [&, s](std::exception_ptr e, std::int64_t v) {
          if (!e) {
            // Slice {i, i + 1} of 1..n sums to i + 1.
            if (v != static_cast<std::int64_t>(s.start) + 1) ++wrong;
            ++results;
          } else {
            try {
              std::rethrow_exception(e);
            } catch (const std::system_error& error) {
              if (error.code() == asio::error::operation_aborted) ++aborted;
            } catch (...) {
            }
          }
          if (++calls == 100) some_done.set_value();
        });
      // The pool goes out of scope while other threads run its handlers.
      some_done.get_future().wait();
    }
    CHECK(corun::test::child_pids().empty());
    work.reset();
    for (auto& t : threads) t.join();  // run() returns: nothing of the pool is left pending
    CHECK(calls == 4000);
    CHECK(results + aborted == 4000);
    CHECK(results >= 100);
    CHECK(wrong == 0);
  }
  CHECK(corun::test::open_fd_count() == fds);
}

TEST_CASE("terminate from another thread while the loop runs fails queued tasks, once each",
          "[pool][threads][lifecycle]") {
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread loop([&io] { io.run(); });
  auto ints = iota_array(4);
  ints[0] = -5;  // blocks forever
  const auto it = DataIterator::over(ints, 2);
  ProcessPool pool{io.get_executor(), {.workers = 1}};
  auto blocked = pool.async_execute<corun::test::Faulty>(it, Slice{0, 2}, asio::use_future);
  auto queued = pool.async_execute<AddInts>(it, Slice{2, 4}, asio::use_future);
  pool.terminate();
  CHECK(pool.worker_pids().empty());
  CHECK(corun::test::child_pids().empty());
  CHECK_THROWS_AS(blocked.get(), std::system_error);
  CHECK_THROWS_AS(queued.get(), std::system_error);
  work.reset();
  loop.join();
}

TEST_CASE("a replacement that cannot start (no descriptors left) fails the pool, not io.run()",
          "[pool][failure]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1, .start_attempts = 3}};
  auto ready = pool.async_wait_ready(asio::use_future);
  drive(io, ready);
  CHECK(pool.health().ready == 1);
  CHECK_FALSE(pool.health().degraded());
  auto ints = iota_array(4);
  ints[1] = -2;  // SIGSEGV: the worker must be replaced
  const auto it = DataIterator::over(ints, 2);
  auto crash = pool.async_execute<corun::test::Faulty>(it, Slice{0, 2}, asio::use_future);
  {
    // No new descriptor at all: the replacement's socketpair fails with EMFILE. The limit is
    // restored at the end of this block, whatever fails inside it.
    struct FdLimit {
      rlimit saved{};
      FdLimit() {
        REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
        rlimit low = saved;
        low.rlim_cur = 3;
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
      }
      ~FdLimit() { ::setrlimit(RLIMIT_NOFILE, &saved); }
    } limit;
    CHECK_THROWS_AS(drive(io, crash), TaskFailed);
    auto next = pool.async_execute<AddInts>(it, Slice{2, 4}, asio::use_future);
    try {
      drive(io, next);  // an exception out of io.run_one() would fail the test here
      FAIL("the pool ran a task without any worker");
    } catch (const Error& e) {
      CHECK(e.code() == errc::worker_start_failed);
      CHECK_THAT(e.what(), Catch::Contains("Too many open files") &&
                               Catch::Contains("3 consecutive worker starts failed"));
    }
  }
  const PoolHealth health = pool.health();
  CHECK(health.failed);
  CHECK(health.ready == 0);
  CHECK(health.failed_starts == 3);
  CHECK_FALSE(health.degraded());
  CHECK(corun::test::child_pids().empty());
}

TEST_CASE("a worker_init that throws once is retried and the pool heals", "[pool][failure]") {
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork, StartMethod::serial);
  char dir_template[] = "/tmp/corun_flaky_XXXXXX";
  REQUIRE(::mkdtemp(dir_template) != nullptr);
  const std::string marker = std::string(dir_template) + "/failed_once";
  ::setenv("CORUN_TEST_FLAKY_MARKER", marker.c_str(), 1);
  asio::io_context io;
  ProcessPool pool{io.get_executor(),
                   {.workers = 2, .start_method = method, .worker_init = corun::test::flaky_init}};
  auto ready = pool.async_wait_ready(asio::use_future);
  drive(io, ready);
  auto ints = iota_array(10);
  auto sum =
      pool.async_execute<AddInts>(DataIterator::over(ints, 10), Slice{0, 10}, asio::use_future);
  CHECK(drive(io, sum) == 55);
  CHECK(::access(marker.c_str(), F_OK) == 0);  // it did fail once
  const PoolHealth health = pool.health();
  CHECK(health.workers == pool.size());
  CHECK(health.ready == pool.size());
  CHECK(health.failed_starts == 0);
  ::unlink(marker.c_str());
  ::rmdir(dir_template);
  ::unsetenv("CORUN_TEST_FLAKY_MARKER");
}

TEST_CASE("worker_lifespan replaces each worker after that many tasks, gracefully, losing none",
          "[pool][lifespan]") {
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork);
  char dir[] = "/tmp/corun_lifespan_XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  ::setenv("CORUN_TEST_HOOK_DIR", dir, 1);
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2, .start_method = method, .worker_lifespan = 3}};
  auto ints = iota_array(20);
  corun::test::PerProcess per{DataIterator::over(ints, 1), 0};
  WorkerOrchestrator orch{pool, {&per}};
  auto run = orch.async_run(asio::use_future);
  const RunReport report = drive(io, run);
  CHECK(report.failures.empty());
  CHECK(report.tasks_done == 20);
  REQUIRE(per.seen.size() == 20);
  // Each process ran at most 3 tasks, its State counting 1, 2, 3 (a fresh process, a fresh
  // State); all but the last process of each slot ran exactly 3.
  std::map<std::int64_t, std::vector<std::int64_t>> by_pid;
  for (const auto& v : per.seen) by_pid[v.at(0)].push_back(v.at(1));
  std::size_t short_lived = 0;
  for (const auto& [pid, counts] : by_pid) {
    CHECK(counts.size() <= 3);
    std::vector<std::int64_t> expected(counts.size());
    std::iota(expected.begin(), expected.end(), 1);
    CHECK(counts == expected);
    short_lived += counts.size() < 3;
  }
  CHECK(short_lived <= 2);
  CHECK(by_pid.size() >= 7);
  CHECK(pool.health().failed_starts == 0);
  auto shutdown = pool.async_shutdown(asio::use_future);
  drive(io, shutdown);
  // Every process ran its exit hook (with its final State) before it exited.
  for (const auto& [pid, counts] : by_pid) {
    std::ifstream in(std::string(dir) + "/state_" + std::to_string(pid));
    std::int64_t tasks = -1;
    in >> tasks;
    CHECK(tasks == static_cast<std::int64_t>(counts.size()));
  }
  std::filesystem::remove_all(dir);
  ::unsetenv("CORUN_TEST_HOOK_DIR");
  CHECK(corun::test::child_pids().empty());
}

TEST_CASE("worker_lifespan in a serial pool starts a fresh slot, with fresh state, every n tasks",
          "[pool][lifespan]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.start_method = StartMethod::serial, .worker_lifespan = 3}};
  auto ints = iota_array(8);
  corun::test::PerProcess per{DataIterator::over(ints, 1), 0};
  const int exits = corun::test::PerProcess::exits;
  WorkerOrchestrator orch{pool, {&per}};
  auto run = orch.async_run(asio::use_future);
  drive(io, run);
  std::vector<std::int64_t> counts;
  for (const auto& v : per.seen) counts.push_back(v.at(1));
  CHECK(counts == std::vector<std::int64_t>{1, 2, 3, 1, 2, 3, 1, 2});
  CHECK(corun::test::PerProcess::exits == exits + 2);
  auto shutdown = pool.async_shutdown(asio::use_future);
  drive(io, shutdown);
  CHECK(corun::test::PerProcess::exits == exits + 3);
}

TEST_CASE("a loop stopped under an async_execute destroys its handler, and what it owns, unrun",
          "[pool][lifecycle]") {
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork);
  auto ints = iota_array(1000);
  auto job = std::make_shared<SharedArray<std::int64_t>>(SharedArray<std::int64_t>::create({64}));
  const std::string segment = job->name();
  const auto fate = corun::test::stop_loop_with_operation_in_flight(
      [&](asio::any_io_executor ex) {
        return std::make_unique<ProcessPool>(ex, PoolOptions{.workers = 2, .start_method = method});
      },
      std::move(job),
      [&](ProcessPool& pool, auto handler) {
        pool.async_execute<AddInts>(DataIterator::over(ints, 100), Slice{0, 100},
                                    std::move(handler));
      });
  CHECK_FALSE(fate.called);
  CHECK(fate.destroyed);
  CHECK(corun::test::shm_entries(segment).empty());
  CHECK(corun::test::child_pids().empty());
}

TEST_CASE(
    "a killed parent's workers remove its zero-length arrays before it is reaped, and its "
    "arrays while a child it forked runs",
    "[pool][lifecycle]") {
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork);
  const std::size_t workers = GENERATE(1u, 2u);
  const bool fork_child = GENERATE(false, true);
  INFO("start method " << static_cast<int>(method) << ", " << workers << " worker(s), "
                       << (fork_child ? "a forked child runs" : "the parent stays a zombie"));
  corun::test::SubreaperScope reaper;  // the orphans (workers, the user's child) are reaped here
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  const pid_t parent = ::fork();
  REQUIRE(parent >= 0);
  if (parent == 0) {
    ::close(pipe_fds[0]);
    asio::io_context io;
    auto empty = SharedArray<std::int64_t>::create({0});
    auto a = iota_array(1000);
    ProcessPool pool{io.get_executor(), {.workers = workers, .start_method = method}};
    auto ready = pool.async_wait_ready(asio::use_future);
    drive(io, ready);
    std::vector<pid_t> pids = pool.worker_pids();
    if (fork_child) {
      const pid_t child = ::fork();  // a plain child of the user's, inheriting the arrays
      if (child == 0)
        for (;;) ::pause();
      pids.push_back(child);
    }
    for (pid_t pid : pids) (void)!::write(pipe_fds[1], &pid, sizeof pid);
    ::close(pipe_fds[1]);
    for (;;) ::pause();  // keep the pool and the arrays alive until killed
  }
  ::close(pipe_fds[1]);
  std::vector<pid_t> pids(workers + (fork_child ? 1 : 0));
  std::size_t got = 0;
  const auto want = sizeof(pid_t) * pids.size();
  while (got < want) {
    const ssize_t n = ::read(pipe_fds[0], reinterpret_cast<char*>(pids.data()) + got, want - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(pipe_fds[0]);
  // Whatever fails below, nothing this test started outlives it.
  struct ReapAll {
    pid_t parent;
    std::vector<pid_t>& others;
    ~ReapAll() {
      ::kill(parent, SIGKILL);
      ::waitpid(parent, nullptr, 0);
      for (pid_t pid : others) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
      }
    }
  } reap_all{parent, pids};
  REQUIRE(got == want);
  REQUIRE(corun::test::segments_of_pid(parent).size() == 2);
  REQUIRE(::kill(parent, SIGKILL) == 0);
  if (fork_child)
    REQUIRE(::waitpid(parent, nullptr, 0) == parent);
  else
    REQUIRE(corun::test::wait_ended_unreaped(parent));  // a zombie until the end of the test
  // The workers sweep on their own time: wait for the condition, within a bound.
  CHECK(corun::test::wait_until([&] { return corun::test::segments_of_pid(parent).empty(); }));
  for (std::size_t i = 0; i < workers; ++i) CHECK(wait_for_exit(pids[i]));
  if (fork_child) CHECK(alive(pids.back()));  // the user's child still ran meanwhile
}
