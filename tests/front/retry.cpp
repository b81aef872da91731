// RetryPolicy per orchestrator and per map, and priorities, on real pools: transient failures
// that succeed on their third run with the backoff between runs, exceptions and kinds the policy
// does not pick, crashes retried on fresh workers, cancellation, shutdown and terminate while a
// task waits out its backoff, and a high-priority run overtaking a long low-priority one.
// Attempts run in different processes, so each run of a slice appends a line "<time ns> <pid>"
// to a file named after the slice, in a directory the test makes.
#include <corun/retry.hpp>

#include <corun/map.hpp>
#include <corun/orchestrator.hpp>
#include <corun/shared_array.hpp>
#include <corun/worker.hpp>

#include "support/drive.hpp"
#include "support/support.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>
#include <xtensor/xmath.hpp>

using namespace corun;
using namespace std::chrono_literals;
using corun::test::drive;

namespace retry_test {

/// A failure worth another run.
struct Transient : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Where the runs of `key` are logged.
std::string log_of(const std::string& dir, std::size_t key) {
  return dir + "/" + std::to_string(key);
}

/// Logs one run of `key` ("<steady ns> <pid>") and returns how many runs it had, this one
/// included. O_APPEND writes of one short line are atomic, whichever process writes.
int log_run(const std::string& dir, std::size_t key) {
  const std::string line =
      std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()) + " " +
      std::to_string(::getpid()) + "\n";
  const int fd = ::open(log_of(dir, key).c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (fd < 0 || ::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
    std::abort();
  ::close(fd);
  std::ifstream in(log_of(dir, key));
  int runs = 0;
  for (std::string l; std::getline(in, l);) ++runs;
  return runs;
}

struct Run {
  std::chrono::steady_clock::time_point at;
  pid_t pid = 0;
};
std::vector<Run> runs_of(const std::string& dir, std::size_t key) {
  std::vector<Run> runs;
  std::ifstream in(log_of(dir, key));
  long long ns = 0;
  pid_t pid = 0;
  while (in >> ns >> pid)
    runs.push_back({std::chrono::steady_clock::time_point(std::chrono::nanoseconds(ns)), pid});
  return runs;
}

/// The directory of the run logs (params of the workers below), removed at the end.
struct LogDir {
  LogDir() {
    char name[] = "/tmp/corun_retry_XXXXXX";
    if (!::mkdtemp(name)) throw std::runtime_error("mkdtemp failed");
    path = name;
  }
  ~LogDir() { std::filesystem::remove_all(path); }
  LogDir(const LogDir&) = delete;
  LogDir& operator=(const LogDir&) = delete;
  std::string path;
};

/// Throws Transient on the first two runs of each slice, then sums it.
struct FlakySum : Worker<FlakySum, std::int64_t, std::string> {
  using Worker::Worker;
  static std::int64_t process(SliceView<const std::int64_t> slice, const std::string& dir,
                              const TaskContext& ctx) {
    if (log_run(dir, ctx.slice.start) < 3) throw Transient("not yet");
    return xt::sum(slice)();
  }
  void process_callback(std::int64_t partial) { total += partial; }
  std::int64_t total = 0;
};
CORUN_REGISTER_WORKER(FlakySum);

/// Throws std::logic_error on every run.
struct AlwaysLogicError : Worker<AlwaysLogicError, std::int64_t, std::string> {
  using Worker::Worker;
  static std::int64_t process(SliceView<const std::int64_t>, const std::string& dir,
                              const TaskContext& ctx) {
    log_run(dir, ctx.slice.start);
    throw std::logic_error("always");
  }
  void process_callback(std::int64_t) {}
};
CORUN_REGISTER_WORKER(AlwaysLogicError);

/// Its process dies on the first run of each slice; later runs return their pid.
struct CrashOnce : Worker<CrashOnce, std::int64_t, std::string> {
  using Worker::Worker;
  static std::int64_t process(SliceView<const std::int64_t>, const std::string& dir,
                              const TaskContext& ctx) {
    if (log_run(dir, ctx.slice.start) == 1) ::_exit(3);
    return ::getpid();
  }
  void process_callback(std::int64_t pid) { pids.push_back(pid); }
  std::vector<std::int64_t> pids;
};
CORUN_REGISTER_WORKER(CrashOnce);

/// Slice 0 throws Transient until its run `succeed_on` (0: never); the others return at once,
/// and their callbacks call `on_result` (which may act on the pool while slice 0 waits).
struct HoldSliceZero : Worker<HoldSliceZero, std::int64_t, std::string> {
  using Worker::Worker;
  static std::int64_t process(SliceView<const std::int64_t> slice, const std::string& dir,
                              const TaskContext& ctx) {
    if (ctx.slice.start == 0) {
      const int runs = log_run(dir, 0);
      if (runs < 2 || dir.back() == 'N') throw Transient("slice 0");
    }
    return xt::sum(slice)();
  }
  void process_callback(std::int64_t) {
    ++callbacks;
    if (on_result) on_result();
  }
  int callbacks = 0;
  std::function<void()> on_result;
};
CORUN_REGISTER_WORKER(HoldSliceZero);

/// Returns its slice's start; the callback counts and may act (the priority test).
struct Tiny : Worker<Tiny, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(SliceView<const std::int64_t> slice) {
    return static_cast<std::int64_t>(slice.size());
  }
  void process_callback(std::int64_t) {
    ++callbacks;
    if (on_result) on_result(callbacks);
  }
  std::size_t callbacks = 0;
  std::function<void(std::size_t)> on_result;
};
CORUN_REGISTER_WORKER(Tiny);

/// Maps input i to i * 10; inputs divisible by 3 throw Transient on their first two runs.
std::int64_t flaky_times_ten(const std::int64_t& i, const std::string& dir) {
  if (i % 3 == 0 && log_run(dir, static_cast<std::size_t>(i)) < 3) throw Transient("input");
  return i * 10;
}
/// Input 5 throws std::logic_error on every run; the others map to themselves.
std::int64_t five_fails(const std::int64_t& i, const std::string& dir) {
  if (i == 5) {
    log_run(dir, 5);
    throw std::logic_error("five");
  }
  return i;
}
/// The first run of input 7 kills its worker process.
std::int64_t seven_crashes_once(const std::int64_t& i, const std::string& dir) {
  if (i == 7 && log_run(dir, 7) == 1) ::_exit(4);
  return i + 1;
}

SharedArray<std::int64_t> ones(std::size_t n) {
  auto a = SharedArray<std::int64_t>::create({n});
  std::fill(a.begin(), a.end(), 1);
  return a;
}

RunReport run_to_end(asio::io_context& io, ProcessPool& pool, std::vector<WorkerRef> workers,
                     OrchestratorOptions options) {
  WorkerOrchestrator orch{pool, std::move(workers), std::move(options)};
  auto future = orch.async_run(asio::use_future);
  return drive(io, future);
}

RetryPolicy on_transient(int attempts, std::chrono::milliseconds initial, double factor = 2) {
  return RetryPolicy{.attempts = attempts,
                     .backoff = {.initial = initial, .factor = factor, .max = initial + 10s},
                     .retry_on = {.kinds = {TaskErrorKind::exception},
                                  .exception_types = {"retry_test::Transient"}}};
}

/// The error a failed operation completed with, as a RunError.
std::vector<TaskError> failures_of(std::future<std::vector<std::int64_t>>& future,
                                   asio::io_context& io) {
  try {
    drive(io, future);
  } catch (const RunError& e) {
    return e.errors();
  }
  FAIL("the map did not fail with a RunError");
  return {};
}

}  // namespace retry_test

using namespace retry_test;

TEST_CASE("Backoff::delay grows by its factor up to max", "[retry]") {
  const Backoff b{.initial = 10ms, .factor = 3, .max = 100ms};
  CHECK(b.delay(0) == 0ms);
  CHECK(b.delay(1) == 10ms);
  CHECK(b.delay(2) == 30ms);
  CHECK(b.delay(3) == 90ms);
  CHECK(b.delay(4) == 100ms);
  CHECK(b.delay(1000) == 100ms);  // no overflow
  CHECK(Backoff{.initial = 0ms, .factor = 2, .max = 0ms}.delay(5) == 0ms);
}

TEST_CASE("RetryOn picks by kind and, for exceptions, by exact type name", "[retry]") {
  TaskError e;
  e.kind = TaskErrorKind::exception;
  e.exception_type = "retry_test::Transient";
  const RetryOn any{};
  CHECK(any.matches(e));
  e.kind = TaskErrorKind::protocol;
  CHECK_FALSE(any.matches(e));  // never, whatever the kinds say
  e.kind = TaskErrorKind::rank_lost;
  CHECK_FALSE(any.matches(e));
  CHECK_FALSE(RetryOn{.kinds = {TaskErrorKind::rank_lost}}.matches(e));
  const RetryOn named{.kinds = {TaskErrorKind::exception, TaskErrorKind::timeout},
                      .exception_types = {"retry_test::Transient", "std::bad_alloc"}};
  e.kind = TaskErrorKind::exception;
  CHECK(named.matches(e));
  e.exception_type = "std::runtime_error";  // Transient's base: not the same name
  CHECK_FALSE(named.matches(e));
  e.kind = TaskErrorKind::timeout;
  CHECK(named.matches(e));
  e.kind = TaskErrorKind::crashed;
  CHECK_FALSE(named.matches(e));
  e.kind = TaskErrorKind::memory_exceeded;
  CHECK_FALSE(named.matches(e));
  CHECK(RetryOn{.kinds = {TaskErrorKind::memory_exceeded}}.matches(e));
  RetryPolicy p{.attempts = 3};
  e.attempts = 2;
  CHECK(p.should_retry(e));
  e.attempts = 3;
  CHECK_FALSE(p.should_retry(e));
}

TEST_CASE("an invalid RetryPolicy is rejected, naming the bad value", "[retry][failure]") {
  using Catch::Contains;
  CHECK_THROWS_WITH(RetryPolicy{.attempts = 0}.validate(), Contains("attempts = 0"));
  CHECK_THROWS_WITH((RetryPolicy{.backoff = {.initial = -5ms}}.validate()),
                    Contains("backoff.initial = -5 ms"));
  CHECK_THROWS_WITH((RetryPolicy{.backoff = {.factor = 0.5}}.validate()),
                    Contains("backoff.factor = 0.5: must be at least 1"));
  CHECK_THROWS_WITH((RetryPolicy{.backoff = {.initial = 20ms, .max = 10ms}}.validate()),
                    Contains("backoff.max = 10 ms is below backoff.initial = 20 ms"));
  CHECK_THROWS_WITH((RetryPolicy{.retry_on = {.kinds = {}}}.validate()),
                    Contains("retry_on.kinds is empty"));
  CHECK_THROWS_WITH((RetryPolicy{.retry_on = {.kinds = {TaskErrorKind::protocol}}}.validate()),
                    Contains("retry_on.kinds holds protocol"));
  CHECK_THROWS_WITH((RetryPolicy{.retry_on = {.kinds = {TaskErrorKind::rank_lost}}}.validate()),
                    Contains("retry_on.kinds holds rank_lost: the rows of a lost rank are gone"));
  CHECK_THROWS_WITH(
      (RetryPolicy{.retry_on = {.kinds = {TaskErrorKind::crashed}, .exception_types = {"X"}}}
           .validate()),
      Contains("exception_types names \"X\" but retry_on.kinds has no exception"));
  CHECK_THROWS_WITH((RetryPolicy{.retry_on = {.exception_types = {""}}}.validate()),
                    Contains("empty name"));
  CHECK_NOTHROW(RetryPolicy{}.validate());

  // Where users give it: the orchestrator's constructor and the map's initiation.
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1, .start_method = StartMethod::serial}};
  auto a = ones(4);
  Tiny tiny{DataIterator::over(a, 2)};
  CHECK_THROWS_WITH((WorkerOrchestrator{pool, {&tiny}, {.retry = RetryPolicy{.attempts = -1}}}),
                    Contains("attempts = -1"));
  CHECK_THROWS_WITH(async_map<&five_fails>(
                        pool, std::vector<std::int64_t>{1},
                        MapOptions<std::string>{.retry = RetryPolicy{.backoff = {.factor = 0}}},
                        asio::use_future),
                    Contains("backoff.factor = 0"));
}

TEST_CASE("a transient failure succeeds on its third attempt, at least the backoff apart",
          "[retry][orchestrator]") {
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork, StartMethod::serial);
  LogDir logs;
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2, .start_method = method}};
  auto a = ones(40);
  FlakySum flaky{DataIterator::over(a, 10), logs.path};  // 4 slices, each fails twice
  const RunReport report =
      run_to_end(io, pool, {&flaky}, {.record_tasks = true, .retry = on_transient(3, 40ms, 2)});
  CHECK(report.failures.empty());
  CHECK(flaky.total == 40);
  REQUIRE(report.tasks.size() == 4);
  for (const TaskRecord& t : report.tasks) CHECK(t.attempts == 3);
  for (std::size_t start : {0u, 10u, 20u, 30u}) {
    const auto runs = runs_of(logs.path, start);
    REQUIRE(runs.size() == 3);
    CHECK(runs[1].at - runs[0].at >= 40ms);  // initial
    CHECK(runs[2].at - runs[1].at >= 80ms);  // initial * factor
  }
}

TEST_CASE("an exception of a type retry_on does not name is not retried", "[retry][failure]") {
  LogDir logs;
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1}};
  auto a = ones(10);
  AlwaysLogicError bad{DataIterator::over(a, 10), logs.path};
  const RunReport report = run_to_end(
      io, pool, {&bad}, {.on_error = ErrorPolicy::collect, .retry = on_transient(5, 0ms)});
  REQUIRE(report.failures.size() == 1);
  CHECK(report.failures[0].kind == TaskErrorKind::exception);
  CHECK(report.failures[0].exception_type == "std::logic_error");
  CHECK(report.failures[0].attempts == 1);
  CHECK(runs_of(logs.path, 0).size() == 1);
}

TEST_CASE("a crashed task is retried on a fresh worker process", "[retry][failure]") {
  LogDir logs;
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1}};
  auto a = ones(3);
  CrashOnce crash{DataIterator::over(a, 1), logs.path};  // 3 slices, each kills its worker once
  const RunReport report = run_to_end(
      io, pool, {&crash},
      {.retry = RetryPolicy{.attempts = 2, .retry_on = {.kinds = {TaskErrorKind::crashed}}}});
  CHECK(report.failures.empty());
  REQUIRE(crash.pids.size() == 3);
  for (std::size_t s = 0; s < 3; ++s) {
    const auto runs = runs_of(logs.path, s);
    REQUIRE(runs.size() == 2);
    CHECK(runs[1].pid != runs[0].pid);  // the crashed process is gone; a new one ran it
    CHECK(runs[0].pid > 0);
  }
  const auto live = pool.worker_pids();
  REQUIRE(live.size() == 1);
  CHECK(crash.pids.back() == live[0]);
}

TEST_CASE("retry_on kinds filter: a crash is not retried by a policy for exceptions",
          "[retry][failure]") {
  LogDir logs;
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1, .retries = 4}};
  auto a = ones(1);
  CrashOnce crash{DataIterator::over(a, 1), logs.path};
  const RunReport report = run_to_end(
      io, pool, {&crash},
      {.on_error = ErrorPolicy::collect,
       .retry = RetryPolicy{.attempts = 5, .retry_on = {.kinds = {TaskErrorKind::exception}}}});
  REQUIRE(report.failures.size() == 1);
  CHECK(report.failures[0].kind == TaskErrorKind::crashed);
  CHECK(report.failures[0].exit_code == 3);
  CHECK(report.failures[0].attempts == 1);  // the pool's retries = 4 do not apply
}

TEST_CASE("a run's RetryPolicy overrides the pool's retries, both ways", "[retry]") {
  LogDir logs;
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1, .retries = 4}};
  auto a = ones(3);
  AlwaysLogicError bad{DataIterator::over(a, 1), logs.path};
  const auto first_attempts = [&](OrchestratorOptions options) {
    options.on_error = ErrorPolicy::collect;
    const RunReport report = run_to_end(io, pool, {&bad}, std::move(options));
    REQUIRE(report.failures.size() == 3);
    return report.failures[0].attempts;
  };
  CHECK(first_attempts({}) == 5);  // the pool's default: 1 + retries
  CHECK(first_attempts({.retry = RetryPolicy{.attempts = 2, .backoff = {.initial = 0ms}}}) == 2);
  CHECK(first_attempts({.retry = RetryPolicy{.attempts = 1}}) == 1);

  // And a pool without retries runs a transient failure to success under a run's policy.
  ProcessPool plain{io.get_executor(), {.workers = 1}};
  std::filesystem::create_directory(logs.path + "/flaky");
  FlakySum flaky_here{DataIterator::over(a, 3), logs.path + "/flaky"};
  const RunReport ok = run_to_end(io, plain, {&flaky_here}, {.retry = on_transient(3, 1ms)});
  CHECK(ok.failures.empty());
  CHECK(flaky_here.total == 3);
}

TEST_CASE("async_map runs an input that threw again under its RetryPolicy, alone and backed off",
          "[retry][map]") {
  const auto method = GENERATE(StartMethod::spawn, StartMethod::serial);
  const bool ordered = GENERATE(true, false);
  LogDir logs;
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2, .start_method = method}};
  std::vector<std::int64_t> inputs(20);
  std::iota(inputs.begin(), inputs.end(), 0);
  auto future = async_map<&flaky_times_ten>(
      pool, inputs,
      MapOptions<std::string>{
          .chunk_size = 4, .ordered = ordered, .retry = on_transient(3, 30ms), .params = logs.path},
      asio::use_future);
  const std::vector<std::int64_t> out = drive(io, future);
  REQUIRE(out.size() == 20);
  for (std::int64_t i = 0; i < 20; ++i) CHECK(out[static_cast<std::size_t>(i)] == i * 10);
  for (std::size_t i = 0; i < 20; i += 3) {
    const auto runs = runs_of(logs.path, i);
    REQUIRE(runs.size() == 3);
    CHECK(runs[1].at - runs[0].at >= 30ms);
    CHECK(runs[2].at - runs[1].at >= 60ms);
  }
}

TEST_CASE("a map's RetryPolicy overrides the pool's retries for inputs and chunks",
          "[retry][map]") {
  LogDir logs;
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1, .retries = 3}};
  std::vector<std::int64_t> inputs(10);
  std::iota(inputs.begin(), inputs.end(), 0);
  {  // without a policy an input that threw is reported at once, the pool's retries or not
    auto future = async_map<&five_fails>(
        pool, inputs,
        MapOptions<std::string>{.on_error = ErrorPolicy::collect, .params = logs.path},
        asio::use_future);
    const auto errors = failures_of(future, io);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].slice == Slice{5, 6});
    CHECK(errors[0].attempts == 1);
    CHECK(runs_of(logs.path, 5).size() == 1);
  }
  {  // a policy for every exception runs it attempts times, then reports how many
    auto future = async_map<&five_fails>(
        pool, inputs,
        MapOptions<std::string>{.on_error = ErrorPolicy::collect,
                                .retry = RetryPolicy{.attempts = 3, .backoff = {.initial = 1ms}},
                                .params = logs.path},
        asio::use_future);
    const auto errors = failures_of(future, io);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].slice == Slice{5, 6});
    CHECK(errors[0].attempts == 3);
    CHECK(errors[0].exception_type == "std::logic_error");
    CHECK_THAT(errors[0].message, Catch::Contains("input 5: five"));
    CHECK(runs_of(logs.path, 5).size() == 1 + 3);
  }
  {  // a policy that does not name the type: one run
    auto future = async_map<&five_fails>(
        pool, inputs, MapOptions<std::string>{.retry = on_transient(4, 1ms), .params = logs.path},
        asio::use_future);
    const auto errors = failures_of(future, io);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].attempts == 1);
    CHECK(runs_of(logs.path, 5).size() == 1 + 3 + 1);
  }
  {  // a chunk whose worker crashed, under a policy for crashes only, on a fresh worker
    auto future = async_map<&seven_crashes_once>(
        pool, inputs,
        MapOptions<std::string>{
            .chunk_size = 3,
            .retry = RetryPolicy{.attempts = 2, .retry_on = {.kinds = {TaskErrorKind::crashed}}},
            .params = logs.path},
        asio::use_future);
    const auto out = drive(io, future);
    REQUIRE(out.size() == 10);
    for (std::int64_t i = 0; i < 10; ++i) CHECK(out[static_cast<std::size_t>(i)] == i + 1);
    const auto runs = runs_of(logs.path, 7);
    REQUIRE(runs.size() == 2);
    CHECK(runs[1].pid != runs[0].pid);
  }
}

TEST_CASE(
    "cancelling a task that waits out its backoff completes it with operation_aborted at once",
    "[retry][cancel]") {
  const auto method = GENERATE(StartMethod::spawn, StartMethod::serial);
  LogDir logs;
  const std::string never = logs.path + "/N";  // slice 0 never succeeds
  std::filesystem::create_directory(never);
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1, .start_method = method}};
  auto a = ones(2);
  HoldSliceZero hold{DataIterator::over(a, 1), never};  // slice 0 fails, slice 1 returns
  WorkerOrchestrator orch{pool, {&hold}, {.retry = on_transient(5, 60s)}};
  asio::cancellation_signal signal;
  // One worker runs slice 0, then slice 1, and reports them in that order: by slice 1's
  // callback the pool has seen slice 0 fail and put it in its 60 s backoff.
  hold.on_result = [&] { signal.emit(asio::cancellation_type::total); };
  const auto began = std::chrono::steady_clock::now();
  auto future = orch.async_run(asio::bind_cancellation_slot(signal.slot(), asio::use_future));
  try {
    drive(io, future);
    FAIL("the run was not cancelled");
  } catch (const std::system_error& e) {
    CHECK(e.code() == asio::error::operation_aborted);
  }
  CHECK(std::chrono::steady_clock::now() - began < 60s);  // it did not wait out the backoff
  CHECK(runs_of(never, 0).size() == 1);
  CHECK(hold.callbacks == 1);
  // The pool goes on.
  auto b = ones(8);
  Tiny tiny{DataIterator::over(b, 2)};
  run_to_end(io, pool, {&tiny}, {});
  CHECK(tiny.callbacks == 4);
}

TEST_CASE("a shutdown lets a task waiting out its backoff run; terminate ends it at once",
          "[retry][lifecycle]") {
  LogDir logs;
  SECTION("shutdown") {
    asio::io_context io;
    ProcessPool pool{io.get_executor(), {.workers = 1}};
    auto a = ones(2);
    HoldSliceZero hold{DataIterator::over(a, 1), logs.path};  // slice 0 succeeds on its 2nd run
    WorkerOrchestrator orch{pool, {&hold}, {.retry = on_transient(2, 50ms)}};
    std::future<void> shutdown;
    hold.on_result = [&] {
      if (hold.callbacks == 1) shutdown = pool.async_shutdown(asio::use_future);
    };
    auto run = orch.async_run(asio::use_future);
    const RunReport report = drive(io, run);
    CHECK(report.failures.empty());
    CHECK(hold.callbacks == 2);
    const auto runs = runs_of(logs.path, 0);
    REQUIRE(runs.size() == 2);
    CHECK(runs[1].at - runs[0].at >= 50ms);
    drive(io, shutdown);
    CHECK(pool.worker_pids().empty());
  }
  SECTION("terminate") {
    const std::string never = logs.path + "/N";
    std::filesystem::create_directory(never);
    asio::io_context io;
    ProcessPool pool{io.get_executor(), {.workers = 1}};
    auto a = ones(2);
    HoldSliceZero hold{DataIterator::over(a, 1), never};
    WorkerOrchestrator orch{pool, {&hold}, {.retry = on_transient(5, 60s)}};
    hold.on_result = [&] { pool.terminate(); };
    const auto began = std::chrono::steady_clock::now();
    auto run = orch.async_run(asio::use_future);
    CHECK_THROWS_WITH(drive(io, run), Catch::Contains("terminated"));
    CHECK(std::chrono::steady_clock::now() - began < 60s);
    auto shutdown = pool.async_shutdown(asio::use_future);
    drive(io, shutdown);
    CHECK(runs_of(never, 0).size() == 1);
    CHECK(corun::test::child_pids().empty());
  }
  SECTION("the pool destroyed") {
    const std::string never = logs.path + "/N";
    std::filesystem::create_directory(never);
    asio::io_context io;
    auto a = ones(2);
    HoldSliceZero hold{DataIterator::over(a, 1), never};
    std::future<RunReport> run;
    {
      ProcessPool pool{io.get_executor(), {.workers = 1}};
      WorkerOrchestrator orch{pool, {&hold}, {.retry = on_transient(5, 60s)}};
      bool in_backoff = false;
      hold.on_result = [&] { in_backoff = true; };
      run = orch.async_run(asio::use_future);
      while (!in_backoff) io.run_one();
    }
    CHECK_THROWS(drive(io, run));
    CHECK(corun::test::child_pids().empty());
  }
}

TEST_CASE("a high-priority run submitted behind a 2,000-slice low one finishes first",
          "[priority]") {
  const int high_priority = GENERATE(1, 0);  // 0: the control, first come first served
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2}};
  auto a = ones(2000);
  Tiny low{DataIterator::over(a, 1)};  // 2,000 slices
  auto b = ones(10);
  Tiny high{DataIterator::over(b, 1)};  // 10 slices
  // Every low slice is submitted at once, so they all wait in the dispatcher's queue.
  WorkerOrchestrator low_orch{pool, {&low}, {.max_tasks_active = 2000, .priority = 0}};
  WorkerOrchestrator high_orch{pool, {&high}, {.priority = high_priority}};
  std::size_t low_at_submit = 0, low_at_high_done = 0;
  bool high_done = false;
  low.on_result = [&](std::size_t n) {
    if (n != 100) return;
    low_at_submit = n;
    high_orch.async_run([&](std::exception_ptr e, RunReport) {
      CHECK_FALSE(e);
      low_at_high_done = low.callbacks;
      high_done = true;
    });
  };
  auto run = low_orch.async_run(asio::use_future);
  const RunReport report = drive(io, run);
  while (!high_done) io.run_one();
  CHECK(report.failures.empty());
  CHECK(low.callbacks == 2000);
  CHECK(high.callbacks == 10);
  INFO("low results while the high run ran: " << low_at_high_done - low_at_submit);
  if (high_priority > 0)
    CHECK(low_at_high_done - low_at_submit < 200);  // under 10% of the low run
  else
    CHECK(low_at_high_done - low_at_submit > 1000);  // behind what was queued before it
}
