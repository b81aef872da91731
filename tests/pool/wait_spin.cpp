// PoolOptions::wait = WaitMode::spin: tasks and results through the shared-memory rings, with
// exact results both ways (many small frames, frames larger than a ring, both start methods),
// the rings' segments removed with their workers, the loop's other handlers and timers served
// while the parent spins, a worker killed or stopped mid-stream, cancellation while frames sit
// in the ring, and a bad budget refused by name. The failure paths that blocking and spinning
// pools share (a killed parent, a crash, task_timeout, a 2 MB result) run in both modes in
// pool.cpp.
#include <corun/map.hpp>
#include <corun/orchestrator.hpp>
#include <corun/pool.hpp>

#include "support/drive.hpp"
#include "support/support.hpp"
#include "support/workers.hpp"

#include <sys/wait.h>
#include <unistd.h>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <functional>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

using namespace corun;
using namespace std::chrono_literals;
using corun::test::AddInts;
using corun::test::drive;
using corun::test::iota_array;

namespace {

const char* method_name(StartMethod m) {
  return m == StartMethod::fork ? "fork" : "spawn";
}

std::int64_t triple_plus_one(const std::int64_t& x) {
  return 3 * x + 1;
}

/// Submits `count` one-row AddInts tasks over the `rows` rows of `it`, `in_flight` at a time,
/// and returns the sum of their results (each row's value: an exact check of every result).
std::int64_t stream_rows(asio::io_context& io, ProcessPool& pool, const DataIterator& it,
                         std::size_t rows, std::size_t count, std::size_t in_flight) {
  std::int64_t sum = 0;
  std::size_t next = 0, done = 0;
  std::exception_ptr failure;
  std::function<void()> submit = [&] {
    const std::size_t row = next++ % rows;
    pool.async_execute<AddInts>(it, Slice{row, row + 1},
                                [&](std::exception_ptr e, std::int64_t value) {
                                  if (e && !failure) failure = e;
                                  sum += value;
                                  if (++done < count && next < count) submit();
                                });
  };
  for (std::size_t i = 0; i < in_flight && next < count; ++i) submit();
  io.restart();
  while (done < count) io.run_one();
  if (failure) std::rethrow_exception(failure);
  return sum;
}

}  // namespace

TEST_CASE("a spinning pool returns every result exactly, small frames and frames past a ring",
          "[pool][spin]") {
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork);
  const std::size_t workers = GENERATE(1u, 2u);
  INFO(method_name(method) << ", " << workers << " worker(s)");
  asio::io_context io;
  ProcessPool pool{io.get_executor(),
                   {.workers = workers, .start_method = method, .wait = WaitMode::spin(200us)}};
  auto ints = iota_array(1000);  // row i holds i + 1
  const auto rows = DataIterator::over(ints, 1);
  // 20,000 tasks, 16 out at a time: 20 rounds of 1..1000.
  CHECK(stream_rows(io, pool, rows, 1000, 20'000, 16) == 20 * 500'500);
  // Each worker maps the rings; the parent made one segment per worker, at its hello (all have
  // said it once the pool is ready).
  auto ready = pool.async_wait_ready(asio::use_future);
  drive(io, ready);
  CHECK(corun::test::segments_of_pid(::getpid()).size() == workers + 1);  // + the array

  // 3 MB results, three times a ring's capacity: announced in the ring, carried by the socket,
  // and in order with the small frames around them.
  struct ThreeMegabytes : Worker<ThreeMegabytes, std::int64_t> {
    using Worker::Worker;
    static std::vector<std::int64_t> process(SliceView<const std::int64_t> slice) {
      std::vector<std::int64_t> v(375'000);
      std::iota(v.begin(), v.end(), slice[0]);
      return v;
    }
  };
  std::vector<std::future<std::vector<std::int64_t>>> big;
  std::vector<std::future<std::int64_t>> small;
  for (std::size_t i = 0; i < 6; ++i) {
    big.push_back(pool.async_execute<ThreeMegabytes>(rows, Slice{i, i + 1}, asio::use_future));
    small.push_back(pool.async_execute<AddInts>(rows, Slice{i, i + 1}, asio::use_future));
  }
  for (std::size_t i = 0; i < 6; ++i) {
    const auto v = drive(io, big[i]);
    REQUIRE(v.size() == 375'000);
    CHECK(v.front() == static_cast<std::int64_t>(i) + 1);
    CHECK(v.back() == static_cast<std::int64_t>(i) + 375'000);
    CHECK(drive(io, small[i]) == static_cast<std::int64_t>(i) + 1);
  }
  auto done = pool.async_shutdown(asio::use_future);
  drive(io, done);
  // The rings went with their workers; the array is the test's.
  CHECK(corun::test::segments_of_pid(::getpid()).size() == 1);
}

TEST_CASE("a map's chunk of inputs larger than a ring reaches its worker whole", "[pool][spin]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2, .wait = WaitMode::spin(100us)}};
  // 600,000 inputs in 2 chunks of 300,000 int64s: 2.4 MB arguments, past the 1 MiB ring.
  std::vector<std::int64_t> inputs(600'000);
  std::iota(inputs.begin(), inputs.end(), 0);
  auto future = async_map<&triple_plus_one>(pool, inputs, MapOptions<>{.chunk_size = 300'000},
                                            asio::use_future);
  const std::vector<std::int64_t> out = drive(io, future);
  REQUIRE(out.size() == inputs.size());
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < out.size(); ++i)
    if (out[i] != 3 * static_cast<std::int64_t>(i) + 1) ++wrong;
  CHECK(wrong == 0);
}

TEST_CASE("a timer on the same loop fires while the parent spins for results", "[pool][spin]") {
  // The parent's looks are handlers that post themselves: the loop runs its timers between
  // them. Tasks stream without pause until a 1 ms timer has fired 20 times (if its handler
  // could not run, the test would never end).
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2, .wait = WaitMode::spin(10ms)}};
  auto ints = iota_array(100);
  const auto rows = DataIterator::over(ints, 1);
  auto ready = pool.async_wait_ready(asio::use_future);
  drive(io, ready);
  int ticks = 0;
  std::size_t results_between_ticks = 0, results = 0;
  asio::steady_timer timer(io);
  std::function<void()> tick = [&] {
    timer.expires_after(1ms);
    timer.async_wait([&](std::error_code) {
      ++ticks;
      if (results > 0) ++results_between_ticks;
      if (ticks < 20) tick();
    });
  };
  tick();
  std::function<void()> submit = [&] {
    pool.async_execute<AddInts>(rows, Slice{results % 100, results % 100 + 1},
                                [&](std::exception_ptr e, std::int64_t) {
                                  REQUIRE_FALSE(e);
                                  ++results;
                                  if (ticks < 20) submit();
                                });
  };
  for (int i = 0; i < 4; ++i) submit();
  io.restart();
  while (ticks < 20) io.run_one();
  CHECK(ticks == 20);
  CHECK(results > 0);
  auto done = pool.async_shutdown(asio::use_future);
  drive(io, done);
}

TEST_CASE("a spinning worker SIGKILLed mid-stream fails only its tasks; with a retry, none",
          "[pool][spin][failure]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2, .retries = 1, .wait = WaitMode::spin(200us)}};
  auto ints = iota_array(1000);
  const auto rows = DataIterator::over(ints, 1);
  auto ready = pool.async_wait_ready(asio::use_future);
  drive(io, ready);
  const pid_t victim = pool.worker_pids().at(0);
  // The kill lands while results stream through both workers' rings: after 5,000 of 40,000.
  std::int64_t sum = 0;
  std::size_t next = 0, done = 0, failed = 0;
  std::function<void()> submit = [&] {
    const std::size_t row = next++ % 1000;
    pool.async_execute<AddInts>(rows, Slice{row, row + 1},
                                [&](std::exception_ptr e, std::int64_t value) {
                                  if (e) ++failed;
                                  sum += value;
                                  if (++done == 5000) ::kill(victim, SIGKILL);
                                  if (next < 40'000) submit();
                                });
  };
  for (int i = 0; i < 32; ++i) submit();
  io.restart();
  while (done < 40'000) io.run_one();
  CHECK(failed == 0);
  CHECK(sum == 40 * 500'500);
  const auto pids = pool.worker_pids();
  CHECK(pids.at(0) != victim);
  auto done_future = pool.async_shutdown(asio::use_future);
  drive(io, done_future);
  CHECK(corun::test::segments_of_pid(::getpid()).size() == 1);  // the array only
}

TEST_CASE("a spinning worker that stops reading holds its tasks, not the loop, until it resumes",
          "[pool][spin][failure]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1, .wait = WaitMode::spin(200us)}};
  auto ints = iota_array(1000);
  const auto rows = DataIterator::over(ints, 1);
  auto ready = pool.async_wait_ready(asio::use_future);
  drive(io, ready);
  const pid_t worker = pool.worker_pids().at(0);
  REQUIRE(::kill(worker, SIGSTOP) == 0);
  // 500 tasks for a worker that reads nothing: its ring holds what the pipeline sends, the pool
  // queues the rest, and the loop goes on serving its other handlers (the timer) meanwhile.
  std::int64_t sum = 0;
  std::size_t done = 0;
  for (std::size_t row = 0; row < 500; ++row)
    pool.async_execute<AddInts>(rows, Slice{row, row + 1},
                                [&](std::exception_ptr e, std::int64_t value) {
                                  CHECK_FALSE(e);
                                  sum += value;
                                  ++done;
                                });
  bool resumed = false;
  asio::steady_timer later(io, 300ms);
  later.async_wait([&](std::error_code) {
    CHECK(done == 0);
    resumed = true;
    ::kill(worker, SIGCONT);
  });
  io.restart();
  while (done < 500) io.run_one();
  CHECK(resumed);
  CHECK(sum == 500 * 501 / 2);
  CHECK(pool.worker_pids().at(0) == worker);
}

TEST_CASE("a run cancelled while its tasks sit in the rings ends cleanly; the next is exact",
          "[pool][spin][cancel]") {
  const auto mode = GENERATE(CancelMode::drain, CancelMode::kill);
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2, .wait = WaitMode::spin(200us)}};
  auto ints = iota_array(100'000);
  const auto it = DataIterator::over(ints, 10);  // 10,000 slices
  corun::test::Empty empty{it};
  WorkerOrchestrator orchestrator{pool, {&empty}, {.on_cancel = mode}};
  asio::cancellation_signal signal;
  std::exception_ptr error;
  bool done = false;
  orchestrator.async_run(
      asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e, RunReport) {
        error = e;
        done = true;
      }));
  // Cancelled after its first 100 results, with the pipeline (and so the rings) full.
  while (orchestrator.progress()->done.load() < 100) io.run_one();
  signal.emit(asio::cancellation_type::total);
  while (!done) io.run_one();
  REQUIRE(error);
  CHECK_THROWS_AS(std::rethrow_exception(error), std::system_error);
  // The pool is whole: a fresh run is exact.
  AddInts add{it};
  WorkerOrchestrator second{pool, {&add}};
  auto next = second.async_run(asio::use_future);
  drive(io, next);
  CHECK(add.total == std::int64_t{100'000} * 100'001 / 2);
  CHECK(add.callbacks == 10'000);
  auto shut = pool.async_shutdown(asio::use_future);
  drive(io, shut);
  CHECK(corun::test::segments_of_pid(::getpid()).size() == 1);
}

TEST_CASE("a negative spin budget is refused by name", "[pool][spin][failure]") {
  asio::io_context io;
  CHECK_THROWS_WITH(
      (ProcessPool{io.get_executor(), {.workers = 1, .wait = WaitMode::spin(-5ns)}}),
      "corun::PoolOptions::wait = WaitMode::spin(-5 ns): the budget must not be negative (0 "
      "means blocking)");
  // A budget of 0 is blocking: no rings are made.
  ProcessPool blocking{io.get_executor(), {.workers = 1, .wait = WaitMode::spin(0ns)}};
  auto ints = iota_array(4);
  auto f =
      blocking.async_execute<AddInts>(DataIterator::over(ints, 2), Slice{2, 4}, asio::use_future);
  CHECK(drive(io, f) == 7);
  CHECK(corun::test::segments_of_pid(::getpid()).size() == 1);
}
