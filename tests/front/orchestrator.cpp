#include <corun/orchestrator.hpp>

#include "support/drive.hpp"
#include "support/support.hpp"
#include "support/workers.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <xtensor/xmath.hpp>

using namespace corun;
using corun::test::AddInts;
using corun::test::ConcatStr;
using corun::test::drive;
using corun::test::iota_array;

namespace {

RunReport run_to_end(asio::io_context& io, ProcessPool& pool, std::vector<WorkerRef> workers,
                     OrchestratorOptions options = {}) {
  WorkerOrchestrator orch{pool, std::move(workers), options};
  auto future = orch.async_run(asio::use_future);
  return drive(io, future);
}

std::int64_t triangle(std::int64_t n) {
  return n * (n + 1) / 2;
}

SharedArray<FixedUString<8>> foo_strings(std::size_t n) {
  auto strings = SharedArray<FixedUString<8>>::create({n});
  for (std::size_t i = 0; i < n; ++i) strings[i] = FixedUString<8>("foo_" + std::to_string(i));
  return strings;
}

std::string expected_foos(std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s += "foo_" + std::to_string(i);
  return s;
}

}  // namespace

TEST_CASE("sums of 1..N are exact for many (N, partitions) pairs, with 1, 2 and 3 workers",
          "[orchestrator]") {
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork, StartMethod::serial);
  const std::size_t workers = GENERATE(1u, 2u, 3u);
  const std::size_t max_depth = GENERATE(1u, 32u);  // fixed shallow, and adaptive
  asio::io_context io;
  ProcessPool pool{io.get_executor(),
                   {.workers = workers,
                    .start_method = method,
                    .pipeline_depth = 1,
                    .max_pipeline_depth = max_depth}};
  for (std::size_t n : {1u, 7u, 1000u, 1001u, 99'991u}) {
    auto ints = iota_array(n);
    for (std::size_t parts : {1u, 3u, 8u, 13u}) {
      AddInts add{DataIterator::partitioned(ints, parts)};
      const RunReport report = run_to_end(io, pool, {&add});
      INFO("n=" << n << " parts=" << parts << " workers=" << workers);
      CHECK(add.total == triangle(static_cast<std::int64_t>(n)));
      CHECK(report.tasks_done == std::min<std::size_t>(parts, n));
      CHECK(report.tasks.size() == report.tasks_done);
      CHECK(report.failures.empty());
    }
  }
}

TEST_CASE("an empty array runs no task and completes", "[orchestrator]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1}};
  auto empty = SharedArray<std::int64_t>::create({0});
  AddInts add{DataIterator::partitioned(empty, 4)};
  const RunReport report = run_to_end(io, pool, {&add});
  CHECK(report.tasks_done == 0);
  CHECK(add.total == 0);
}

TEST_CASE("strings are concatenated in slice order via TaskContext::slice", "[orchestrator]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2}};
  auto strings = foo_strings(100);
  for (std::size_t chunk : {1u, 7u, 13u, 100u}) {
    ConcatStr concat{DataIterator::over(strings, chunk)};
    run_to_end(io, pool, {&concat});
    CHECK(concat.joined() == expected_foos(100));
  }
}

TEST_CASE("two worker types in one run interleave their slices over the pool", "[orchestrator]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2}};
  auto ints = iota_array(1'000'000);
  auto strings = foo_strings(100);
  AddInts add{DataIterator::partitioned(ints, 8)};
  ConcatStr concat{DataIterator::partitioned(strings, 8)};
  const RunReport report = run_to_end(io, pool, {&add, &concat});
  CHECK(add.total == triangle(1'000'000));
  CHECK(concat.joined() == expected_foos(100));
  REQUIRE(report.tasks.size() == 16);
  std::set<std::string> names;
  for (const auto& t : report.tasks) names.insert(t.worker);
  CHECK(names == std::set<std::string>{"corun::test::AddInts", "corun::test::ConcatStr"});
  // Submission alternates between the workers, so both are in flight in the first half.
  std::set<std::size_t> first_half;
  std::vector<TaskRecord> by_submission = report.tasks;
  std::sort(by_submission.begin(), by_submission.end(),
            [](const auto& a, const auto& b) { return a.submitted < b.submitted; });
  for (std::size_t i = 0; i < 8; ++i) first_half.insert(by_submission[i].worker_index);
  CHECK(first_half == std::set<std::size_t>{0, 1});
}

TEST_CASE("callbacks run on the executor's thread, the first before the last task finishes",
          "[orchestrator]") {
  const std::string fifo = "/tmp/corun_test_gate_" + std::to_string(::getpid());
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  ::setenv("CORUN_TEST_FIFO", fifo.c_str(), 1);
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2}};
  auto ints = iota_array(64);
  ints[63] = -7;  // the last slice waits for the first callback
  corun::test::Gate gate{DataIterator::over(ints, 8)};
  WorkerOrchestrator orch{pool, {&gate}};
  // use_future, waited on from this thread while another thread runs the loop.
  auto future = orch.async_run(asio::use_future);
  auto guard = asio::make_work_guard(io);
  std::thread loop([&] { io.run(); });
  const std::thread::id loop_id = loop.get_id();
  const RunReport report = future.get();
  guard.reset();
  io.stop();
  loop.join();
  ::unlink(fifo.c_str());
  CHECK(report.tasks_done == 8);
  CHECK(gate.rows_seen == 64);
  REQUIRE(gate.threads.size() == 8);
  for (auto id : gate.threads) CHECK(id == loop_id);
}

TEST_CASE("async_run accepts a callback, deferred and use_awaitable", "[orchestrator]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2}};
  auto ints = iota_array(10'000);

  SECTION("a plain callback") {
    AddInts add{DataIterator::partitioned(ints, 5)};
    WorkerOrchestrator orch{pool, {&add}};
    bool called = false;
    orch.async_run([&](std::exception_ptr e, RunReport report) {
      CHECK(!e);
      CHECK(report.tasks_done == 5);
      called = true;
    });
    while (!called) io.run_one();
    CHECK(add.total == triangle(10'000));
  }
  SECTION("deferred, launched later") {
    AddInts add{DataIterator::partitioned(ints, 5)};
    WorkerOrchestrator orch{pool, {&add}};
    auto op = orch.async_run(asio::experimental::deferred);
    CHECK(add.callbacks == 0);  // nothing runs until the deferred operation is launched
    bool called = false;
    std::move(op)([&](std::exception_ptr e, RunReport) {
      CHECK(!e);
      called = true;
    });
    while (!called) io.run_one();
    CHECK(add.total == triangle(10'000));
  }
  SECTION("use_awaitable inside a coroutine") {
    AddInts add{DataIterator::partitioned(ints, 5)};
    WorkerOrchestrator orch{pool, {&add}};
    bool finished = false;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          const RunReport report = co_await orch.run();
          CHECK(report.tasks_done == 5);
          co_await pool.async_shutdown(asio::use_awaitable);
          finished = true;
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
    io.run();  // returns: the pool shut down, nothing is pending any more
    CHECK(finished);
    CHECK(add.total == triangle(10'000));
    CHECK(pool.worker_pids().empty());
  }
}

TEST_CASE("an exception in process fails the run fast with a RunError naming it",
          "[orchestrator][failure]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2}};
  auto ints = iota_array(100);
  ints[42] = -1;
  corun::test::Faulty faulty{DataIterator::over(ints, 10)};
  WorkerOrchestrator orch{pool, {&faulty}};
  auto future = orch.async_run(asio::use_future);
  try {
    drive(io, future);
    FAIL("the run should have thrown");
  } catch (const RunError& e) {
    REQUIRE(e.errors().size() == 1);
    const TaskError& err = e.errors()[0];
    CHECK(err.kind == TaskErrorKind::exception);
    CHECK(err.worker == "corun::test::Faulty");
    CHECK(err.slice == Slice{40, 50});
    CHECK(err.exception_type == "std::runtime_error");
    CHECK(err.message == "row value -1 is poison");
    CHECK(err.pid > 0);
    CHECK_THAT(e.what(), Catch::Contains("row value -1 is poison"));
  }
  // The pool is unharmed.
  AddInts add{DataIterator::partitioned(ints, 4)};
  run_to_end(io, pool, {&add});
  CHECK(add.total == triangle(100) - 43 - 1);
}

TEST_CASE("each crash kind is reported and the worker replaced; the other tasks go on",
          "[orchestrator][failure]") {
  struct Case {
    std::int64_t poison;
    TaskErrorKind kind;
    int signal;
    int exit_code;
  };
  const Case c = GENERATE(Case{-2, TaskErrorKind::crashed, SIGSEGV, -1},
                          Case{-3, TaskErrorKind::crashed, SIGABRT, -1},
                          Case{-4, TaskErrorKind::crashed, 0, 7});
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork);
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2, .start_method = method}};
  const auto pids_before = pool.worker_pids();
  auto ints = iota_array(100);
  ints[55] = c.poison;
  corun::test::Faulty faulty{DataIterator::over(ints, 10)};
  const RunReport report = run_to_end(io, pool, {&faulty}, {.on_error = ErrorPolicy::collect});
  REQUIRE(report.failures.size() == 1);
  const TaskError& err = report.failures[0];
  CHECK(err.kind == c.kind);
  CHECK(err.signal == c.signal);
  CHECK(err.exit_code == c.exit_code);
  CHECK(err.slice == Slice{50, 60});
  CHECK(report.tasks_done == 9);
  CHECK(faulty.total == triangle(100) - (51 + 52 + 53 + 54 + 55 + 56 + 57 + 58 + 59 + 60));
  // The dead worker was replaced: still two workers, one of them new.
  const auto pids_after = pool.worker_pids();
  CHECK(pids_after.size() == 2);
  CHECK(pids_after != pids_before);
  CHECK(std::find(pids_before.begin(), pids_before.end(), err.pid) != pids_before.end());
}

TEST_CASE("task_timeout kills a stuck worker, reports a timeout and replaces it",
          "[orchestrator][failure]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(),
                   {.workers = 2, .task_timeout = std::chrono::milliseconds(300)}};
  auto ints = iota_array(40);
  ints[5] = -5;  // blocks forever
  corun::test::Faulty faulty{DataIterator::over(ints, 10)};
  const RunReport report = run_to_end(io, pool, {&faulty}, {.on_error = ErrorPolicy::collect});
  REQUIRE(report.failures.size() == 1);
  CHECK(report.failures[0].kind == TaskErrorKind::timeout);
  CHECK(report.failures[0].slice == Slice{0, 10});
  CHECK_THAT(report.failures[0].message, Catch::Contains("300 ms"));
  CHECK(report.tasks_done == 3);
  CHECK(faulty.total == triangle(40) - triangle(10));
  CHECK(pool.worker_pids().size() == 2);
}

TEST_CASE("retries run a failed task again and count its attempts", "[orchestrator][failure]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1, .retries = 2}};
  auto ints = iota_array(10);
  ints[3] = -1;  // fails every time
  corun::test::Faulty faulty{DataIterator::over(ints, 5)};
  const RunReport report = run_to_end(io, pool, {&faulty}, {.on_error = ErrorPolicy::collect});
  REQUIRE(report.failures.size() == 1);
  CHECK(report.failures[0].attempts == 3);
  CHECK(report.tasks_done == 1);
}

TEST_CASE("cancellation stops dispatch, completes with operation_aborted, and the pool is reused",
          "[orchestrator][cancel]") {
  const auto mode = GENERATE(CancelMode::drain, CancelMode::kill);
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2}};
  auto ints = iota_array(100'000);
  corun::test::Empty empty{DataIterator::over(ints, 10)};  // 10'000 slices
  WorkerOrchestrator orch{pool, {&empty}, {.on_cancel = mode}};
  asio::cancellation_signal signal;
  std::exception_ptr error;
  bool done = false;
  orch.async_run(asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e, RunReport) {
    error = e;
    done = true;
  }));
  // Cancel from the event loop once the first results are in.
  while (orch.progress()->done.load() < 10) io.run_one();
  signal.emit(asio::cancellation_type::total);
  while (!done) io.run_one();
  REQUIRE(error);
  try {
    std::rethrow_exception(error);
  } catch (const std::system_error& e) {
    CHECK(e.code() == asio::error::operation_aborted);
  }
  CHECK(empty.callbacks < 10'000);
  CHECK(pool.worker_pids().size() == 2);

  AddInts add{DataIterator::partitioned(ints, 7)};
  run_to_end(io, pool, {&add});
  CHECK(add.total == triangle(100'000));
}

TEST_CASE("a run races a timer with awaitable operators; the loser is cancelled",
          "[orchestrator][cancel]") {
  using namespace asio::experimental::awaitable_operators;
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2}};
  auto ints = iota_array(20);
  ints[0] = -5;  // one task never finishes: only the timer can end the race
  corun::test::Faulty faulty{DataIterator::over(ints, 10)};
  WorkerOrchestrator orch{pool, {&faulty}};
  std::size_t winner = 99;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer timer{io, std::chrono::milliseconds(200)};
        auto result = co_await (orch.run() || timer.async_wait(asio::use_awaitable));
        winner = result.index();
      },
      asio::detached);
  while (winner == 99) io.run_one();
  CHECK(winner == 1);
  // The stuck worker was killed (awaitable operators cancel with `terminal`) and replaced.
  AddInts add{DataIterator::partitioned(ints, 2)};
  ints[0] = 1;
  run_to_end(io, pool, {&add});
  CHECK(add.total == triangle(20));
}

TEST_CASE("two orchestrators sharing one pool at once each get exactly their own results",
          "[orchestrator]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2}};
  auto a = iota_array(50'000);
  auto b = iota_array(70'000);
  AddInts add_a{DataIterator::over(a, 1000)};
  AddInts add_b{DataIterator::over(b, 700)};
  WorkerOrchestrator orch_a{pool, {&add_a}};
  WorkerOrchestrator orch_b{pool, {&add_b}};
  auto fa = orch_a.async_run(asio::use_future);
  auto fb = orch_b.async_run(asio::use_future);
  const RunReport ra = drive(io, fa);
  const RunReport rb = drive(io, fb);
  CHECK(add_a.total == triangle(50'000));
  CHECK(add_b.total == triangle(70'000));
  CHECK(ra.tasks_done == 50);
  CHECK(rb.tasks_done == 100);
}

TEST_CASE("process writes into an output array through TaskContext::output", "[orchestrator]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2}};
  auto in = iota_array(1000);
  auto out = SharedArray<std::int64_t>::create({1000});
  corun::test::Square square{DataIterator::over(in, 64), out.info()};
  run_to_end(io, pool, {&square});
  for (std::size_t i = 0; i < 1000; ++i) REQUIRE(out[i] == in[i] * in[i]);
}

TEST_CASE("worker hooks run once per process and worker_id is stable for a process",
          "[orchestrator][hooks]") {
  const std::string dir = "/tmp/corun_test_hooks_" + std::to_string(::getpid());
  ::mkdir(dir.c_str(), 0700);
  ::setenv("CORUN_TEST_HOOK_DIR", dir.c_str(), 1);
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork);
  asio::io_context io;
  ProcessPool pool{io.get_executor(),
                   {.workers = 3,
                    .start_method = method,
                    .worker_init = &corun::test::init_hook,
                    .worker_exit = &corun::test::exit_hook}};
  auto ints = iota_array(300);
  corun::test::WhoAmI who{DataIterator::over(ints, 1)};
  run_to_end(io, pool, {&who});
  REQUIRE(who.seen.size() == 300);
  std::map<std::int64_t, std::int64_t> id_of_pid;
  for (const auto& v : who.seen) {
    REQUIRE(v.size() == 3);
    CHECK(v[0] >= 0);
    CHECK(v[0] < 3);
    CHECK(v[2] == 1000 + v[0]);  // worker_init ran in this process, with this id
    auto [it, inserted] = id_of_pid.emplace(v[1], v[0]);
    CHECK(it->second == v[0]);
  }
  auto future = pool.async_shutdown(asio::use_future);
  drive(io, future);
  for (int id = 0; id < 3; ++id) {
    const std::string file = dir + "/exit_" + std::to_string(id);
    CHECK(::access(file.c_str(), F_OK) == 0);
    ::unlink(file.c_str());
  }
  ::rmdir(dir.c_str());
}

TEST_CASE("200 consecutive runs on one pool leak no descriptor, process or segment",
          "[orchestrator][leaks]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2}};
  auto warm = iota_array(10);
  AddInts warm_up{DataIterator::partitioned(warm, 2)};
  run_to_end(io, pool, {&warm_up});
  const int fds = corun::test::open_fd_count();
  const auto children = corun::test::child_pids().size();
  const auto segments = corun::test::shm_entries().size();
  for (int i = 0; i < 200; ++i) {
    auto ints = iota_array(1000 + static_cast<std::size_t>(i));
    AddInts add{DataIterator::partitioned(ints, 4)};
    run_to_end(io, pool, {&add});
    REQUIRE(add.total == triangle(1000 + i));
  }
  CHECK(corun::test::open_fd_count() == fds);
  CHECK(corun::test::child_pids().size() == children);
  CHECK(corun::test::shm_entries().size() == segments);
}

TEST_CASE("a run of many tiny slices keeps memory bounded without task records",
          "[orchestrator][backpressure]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2}};
  auto ints = iota_array(300'000);
  corun::test::Empty empty{DataIterator::over(ints, 1)};
  const long before = corun::test::resident_kib();
  const RunReport report = run_to_end(io, pool, {&empty}, {.record_tasks = false});
  const long growth = corun::test::resident_kib() - before;
  CHECK(report.tasks_done == 300'000);
  CHECK(empty.callbacks == 300'000);
#ifndef __SANITIZE_ADDRESS__  // AddressSanitizer's quarantine keeps freed memory resident
  CHECK(growth < 4096);       // KiB: the queue never holds more than max_tasks_active tasks
#else
  (void)growth;
#endif
}

TEST_CASE("bad orchestrator options and unregistered workers are rejected by name",
          "[orchestrator][failure]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1}};
  auto ints = iota_array(10);
  AddInts add{DataIterator::partitioned(ints, 2)};
  CHECK_THROWS_WITH(
      (WorkerOrchestrator{pool, {&add}, {.sample_interval = std::chrono::milliseconds(5)}}),
      Catch::Contains("sample_interval = 5 ms"));
  struct NotRegistered : Worker<NotRegistered, std::int64_t> {
    using Worker::Worker;
    static int process(SliceView<const std::int64_t>) { return 0; }
  };
  // Not named by CORUN_REGISTER_WORKER, and not a bad worker: WorkerRef registers it.
  NotRegistered nr{DataIterator::partitioned(ints, 2)};
  WorkerOrchestrator accepted{pool, {&nr}};
  CHECK(accepted.slice_count() == 2);
  auto doubles = SharedArray<double>::create({4});
  CHECK_THROWS_AS(AddInts{DataIterator::partitioned(doubles, 2)}, Error);
}

TEST_CASE("a cancellation emitted right after async_run aborts the run before any task",
          "[orchestrator][cancel]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1}};
  auto ints = iota_array(100);
  AddInts add{DataIterator::over(ints, 10)};
  WorkerOrchestrator orch{pool, {&add}};
  asio::cancellation_signal signal;
  std::promise<RunReport> promised;
  auto future = promised.get_future();
  orch.async_run(
      asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e, RunReport r) {
        if (e)
          promised.set_exception(e);
        else
          promised.set_value(std::move(r));
      }));
  signal.emit(asio::cancellation_type::total);
  CHECK_THROWS_AS(drive(io, future), std::system_error);
  CHECK(add.callbacks == 0);
}

TEST_CASE("on_cancel = kill kills the running tasks' workers on a plain cancellation",
          "[orchestrator][cancel]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1}};
  auto ints = iota_array(20);
  ints[0] = -5;  // the first task never ends: only killing its worker ends the run
  corun::test::Faulty faulty{DataIterator::over(ints, 10)};
  WorkerOrchestrator orch{pool, {&faulty}, {.on_cancel = CancelMode::kill}};
  auto ready = pool.async_wait_ready(asio::use_future);
  drive(io, ready);
  const pid_t first = pool.worker_pids().at(0);
  asio::cancellation_signal signal;
  std::promise<void> promised;
  auto future = promised.get_future();
  orch.async_run(asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e, RunReport) {
    if (e)
      promised.set_exception(e);
    else
      promised.set_value();
  }));
  asio::post(io, [&] { signal.emit(asio::cancellation_type::total); });
  CHECK_THROWS_AS(drive(io, future), std::system_error);
  auto again = pool.async_wait_ready(asio::use_future);
  drive(io, again);
  CHECK(pool.worker_pids().at(0) != first);
}

TEST_CASE("terminating or destroying the pool under a run fails the run",
          "[orchestrator][lifecycle]") {
  const bool destroy = GENERATE(false, true);
  asio::io_context io;
  auto pool = std::make_unique<ProcessPool>(io.get_executor(), PoolOptions{.workers = 2});
  auto ints = iota_array(100);
  ints[99] = -5;  // the last slice blocks forever: the run cannot end by itself
  corun::test::Faulty faulty{DataIterator::over(ints, 1)};
  WorkerOrchestrator orch{*pool, {&faulty}};
  auto future = orch.async_run(asio::use_future);
  // Every slice fits in the default window: all are submitted before the first result.
  while (orch.progress()->done < 10) io.run_one();
  if (destroy)
    pool.reset();
  else
    pool->terminate();
  try {
    drive(io, future);
    FAIL("the run completed although its pool was terminated");
  } catch (const Error& e) {
    CHECK(e.code() == errc::pool_closed);
    CHECK_THAT(e.what(), Catch::Contains("terminated during the run"));
  }
  CHECK(corun::test::child_pids().empty());
}

namespace {
// Each accepted process_callback form, and a worker without one: results are delivered (or,
// without a callback, discarded), never silently skipped for a callback that exists.
struct ByConstRef : Worker<ByConstRef, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(SliceView<const std::int64_t> slice) { return xt::sum(slice)(); }
  void process_callback(const std::int64_t& partial) { total += partial; }
  std::int64_t total = 0;
};
struct ByRvalue : Worker<ByRvalue, std::int64_t> {
  using Worker::Worker;
  static std::string process(SliceView<const std::int64_t> slice) {
    return std::to_string(slice.size());
  }
  void process_callback(std::string&& size) { sizes.insert(std::move(size)); }
  std::multiset<std::string> sizes;
};
struct VoidResult : Worker<VoidResult, std::int64_t> {
  using Worker::Worker;
  static void process(SliceView<const std::int64_t>) {}
  void process_callback() { ++callbacks; }
  int callbacks = 0;
};
struct NoCallback : Worker<NoCallback, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(SliceView<const std::int64_t> slice) { return xt::sum(slice)(); }
};
}  // namespace
CORUN_REGISTER_WORKER(ByConstRef);
CORUN_REGISTER_WORKER(ByRvalue);
CORUN_REGISTER_WORKER(VoidResult);
CORUN_REGISTER_WORKER(NoCallback);

TEST_CASE("process_callback taking R, const R&, R&& or nothing is called once per slice",
          "[orchestrator]") {
  const auto method = GENERATE(StartMethod::serial, StartMethod::spawn);
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2, .start_method = method}};
  auto ints = iota_array(10);
  ByConstRef by_ref{DataIterator::partitioned(ints, 3)};
  ByRvalue by_rvalue{DataIterator::over(ints, 4)};
  VoidResult void_result{DataIterator::partitioned(ints, 5)};
  NoCallback no_callback{DataIterator::partitioned(ints, 2)};
  const RunReport report = run_to_end(io, pool, {&by_ref, &by_rvalue, &void_result, &no_callback});
  CHECK(report.tasks_done == 3 + 3 + 5 + 2);
  CHECK(by_ref.total == 55);
  CHECK(by_rvalue.sizes == std::multiset<std::string>{"2", "4", "4"});
  CHECK(void_result.callbacks == 5);
}

TEST_CASE("a loop stopped under a run destroys its handler, and what it owns, unrun",
          "[orchestrator][lifecycle]") {
  const std::size_t workers = GENERATE(1, 2);
  auto ints = iota_array(100'000);
  AddInts add{DataIterator::partitioned(ints, 64)};
  auto job = std::make_shared<SharedArray<std::int64_t>>(SharedArray<std::int64_t>::create({64}));
  const std::string segment = job->name();
  const auto fate = corun::test::stop_loop_with_operation_in_flight(
      [&](asio::any_io_executor ex) {
        return std::make_unique<ProcessPool>(ex, PoolOptions{.workers = workers});
      },
      std::move(job),
      [&](ProcessPool& pool, auto handler) {
        // The handler owns the orchestrator, which holds the pool's service: nothing of the
        // pool may outlive the io_context.
        auto orch = std::make_shared<WorkerOrchestrator>(pool, std::vector<WorkerRef>{&add});
        orch->async_run([orch, handler = std::move(handler)](auto&&... args) mutable {
          handler(std::forward<decltype(args)>(args)...);
        });
      });
  CHECK_FALSE(fate.called);
  CHECK(fate.destroyed);
  CHECK(corun::test::shm_entries(segment).empty());
  CHECK(corun::test::child_pids().empty());
}
