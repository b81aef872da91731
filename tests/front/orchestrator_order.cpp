// The orchestrator's order and feedback: ordered callbacks, process_callback(R, Slice),
// per-process insights of real runs, and the progress bar's option.
#include <corun/orchestrator.hpp>

#include "support/drive.hpp"
#include "support/support.hpp"
#include "support/workers.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>
#include <xtensor/xmath.hpp>

using namespace corun;
using corun::test::drive;
using corun::test::iota_array;

namespace {

/// Its slices run on two workers in an order the test arranges. The value of a slice's first
/// row says what it does: -k waits until k bytes were written to the FIFO named by
/// CORUN_TEST_RELAY_FIFO; -100 throws; 1000 or more writes one byte there; the value is the
/// result. The callback records the slices in the order it sees them.
struct Relay : Worker<Relay, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(SliceView<const std::int64_t> slice) {
    const std::int64_t v = slice(0);
    if (v == -100) throw std::runtime_error("relay slice fails on purpose");
    const char* fifo = std::getenv("CORUN_TEST_RELAY_FIFO");
    if (v < 0) {
      const int fd = ::open(fifo, O_RDONLY | O_CLOEXEC);
      char bytes[64];
      for (std::int64_t got = 0; got < -v;) {
        const ssize_t n = ::read(fd, bytes, static_cast<std::size_t>(-v - got));
        if (n <= 0) throw std::runtime_error("relay fifo failed");
        got += n;
      }
      ::close(fd);
    } else if (v >= 1000) {
      const int fd = ::open(fifo, O_WRONLY | O_CLOEXEC);
      if (fd < 0 || ::write(fd, "x", 1) != 1) throw std::runtime_error("relay fifo failed");
      ::close(fd);
    }
    return v;
  }
  void process_callback(std::int64_t value, Slice slice) {
    values.push_back(value);
    slices.push_back(slice.start);
  }
  std::vector<std::int64_t> values;
  std::vector<std::size_t> slices;
};

/// A FIFO that outlives the tasks writing to it: the test holds it open for reading and
/// writing, so no byte is lost between a writer closing and the reader opening.
class RelayFifo {
 public:
  RelayFifo() : path_("/tmp/corun_test_relay_" + std::to_string(::getpid())) {
    ::unlink(path_.c_str());
    if (::mkfifo(path_.c_str(), 0600) != 0) throw std::runtime_error("mkfifo failed");
    fd_ = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
    ::setenv("CORUN_TEST_RELAY_FIFO", path_.c_str(), 1);
  }
  ~RelayFifo() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  RelayFifo(const RelayFifo&) = delete;
  RelayFifo& operator=(const RelayFifo&) = delete;

 private:
  std::string path_;
  int fd_ = -1;
};

/// Rows 0..n-1: row 0 holds `first`, row i the value 1000 + i.
SharedArray<std::int64_t> relay_rows(std::size_t n, std::int64_t first) {
  auto a = SharedArray<std::int64_t>::create({n});
  for (std::size_t i = 0; i < n; ++i) a[i] = 1000 + static_cast<std::int64_t>(i);
  a[0] = first;
  return a;
}

RunReport run_to_end(asio::io_context& io, ProcessPool& pool, std::vector<WorkerRef> workers,
                     OrchestratorOptions options = {}) {
  WorkerOrchestrator orch{pool, std::move(workers), options};
  auto future = orch.async_run(asio::use_future);
  return drive(io, future);
}

std::vector<std::size_t> upto(std::size_t n) {
  std::vector<std::size_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

/// Where slice `start` is in the report's completion order.
std::size_t arrival_of(const RunReport& report, std::size_t start) {
  for (std::size_t i = 0; i < report.tasks.size(); ++i)
    if (report.tasks[i].slice.start == start) return i;
  return report.tasks.size();
}

const TaskRecord& record_of(const RunReport& report, std::size_t start) {
  return report.tasks.at(arrival_of(report, start));
}

// Each accepted form with the Slice.
struct SliceByConstRef : Worker<SliceByConstRef, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(SliceView<const std::int64_t> slice) { return xt::sum(slice)(); }
  void process_callback(const std::int64_t& partial, Slice slice) {
    total += partial;
    rows += slice.size();
  }
  std::int64_t total = 0;
  std::size_t rows = 0;
};
struct SliceByRvalue : Worker<SliceByRvalue, std::int64_t> {
  using Worker::Worker;
  static std::string process(SliceView<const std::int64_t> slice) {
    return std::to_string(slice.size());
  }
  void process_callback(std::string&& size, const Slice& slice) {
    if (std::to_string(slice.size()) == size) ++matching;
  }
  int matching = 0;
};
struct VoidWithSlice : Worker<VoidWithSlice, std::int64_t> {
  using Worker::Worker;
  static void process(SliceView<const std::int64_t>) {}
  void process_callback(Slice slice) { starts.push_back(slice.start); }
  std::vector<std::size_t> starts;
};

}  // namespace
CORUN_REGISTER_WORKER(Relay);
CORUN_REGISTER_WORKER(SliceByConstRef);
CORUN_REGISTER_WORKER(SliceByRvalue);
CORUN_REGISTER_WORKER(VoidWithSlice);

TEST_CASE("ordered callbacks arrive in slice order though slice 0 finishes after the others",
          "[orchestrator][ordered]") {
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork);
  RelayFifo fifo;
  asio::io_context io;
  // One task per worker at a time: slice 0 holds one worker until the other has run all the
  // other slices, whose results reach the parent before slice 7 is even sent.
  ProcessPool pool{
      io.get_executor(),
      {.workers = 2, .start_method = method, .pipeline_depth = 1, .max_pipeline_depth = 1}};
  auto rows = relay_rows(8, -7);
  Relay relay{DataIterator::over(rows, 1)};
  const RunReport report = run_to_end(io, pool, {&relay}, {.max_tasks_active = 8, .ordered = true});
  CHECK(relay.slices == upto(8));
  CHECK(relay.values == std::vector<std::int64_t>{-7, 1001, 1002, 1003, 1004, 1005, 1006, 1007});
  CHECK(report.tasks_done == 8);
  REQUIRE(report.tasks.size() == 8);
  CHECK(arrival_of(report, 0) >= 6);  // slices 1..6 arrived first and were held
}

TEST_CASE("unordered callbacks of the same run follow completion order", "[orchestrator]") {
  RelayFifo fifo;
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2, .pipeline_depth = 1, .max_pipeline_depth = 1}};
  auto rows = relay_rows(8, -7);
  Relay relay{DataIterator::over(rows, 1)};
  const RunReport report = run_to_end(io, pool, {&relay}, {.max_tasks_active = 8});
  REQUIRE(report.tasks.size() == 8);
  // Callbacks follow arrival, which put slices 1..6 before slice 0.
  for (std::size_t i = 0; i < 8; ++i) CHECK(relay.slices[i] == report.tasks[i].slice.start);
  CHECK(arrival_of(report, 0) >= 6);
}

TEST_CASE("held results count against max_tasks_active: the next slice waits for slice 0",
          "[orchestrator][ordered]") {
  RelayFifo fifo;
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2, .pipeline_depth = 1, .max_pipeline_depth = 1}};
  // Slice 0 waits for slices 1 and 2; then 1 running + 2 held fill a window of 3.
  auto rows = relay_rows(6, -2);
  Relay relay{DataIterator::over(rows, 1)};
  const RunReport report = run_to_end(io, pool, {&relay}, {.max_tasks_active = 3, .ordered = true});
  CHECK(relay.slices == upto(6));
  REQUIRE(report.tasks.size() == 6);
  // Slice 3 was submitted only once slice 0's result had come back (an order of events, both
  // on the one monotonic clock: the worker's end of slice 0, the parent's submission of 3).
  CHECK(record_of(report, 3).submitted >= record_of(report, 0).finished);
  CHECK(record_of(report, 2).submitted < record_of(report, 0).finished);
}

TEST_CASE("an ordered run that collects failures skips the failed slice and keeps the order",
          "[orchestrator][ordered][failure]") {
  const auto method = GENERATE(StartMethod::serial, StartMethod::spawn);
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2, .start_method = method}};
  auto rows = relay_rows(10, 0);  // no FIFO: values 0, 1001..1009 except row 4
  rows[4] = -100;
  rows[1] = 1;
  for (std::size_t i = 2; i < 10; ++i)
    if (i != 4) rows[i] = static_cast<std::int64_t>(i);
  Relay relay{DataIterator::over(rows, 1)};
  const RunReport report =
      run_to_end(io, pool, {&relay}, {.on_error = ErrorPolicy::collect, .ordered = true});
  CHECK(relay.slices == std::vector<std::size_t>{0, 1, 2, 3, 5, 6, 7, 8, 9});
  CHECK(relay.values == std::vector<std::int64_t>{0, 1, 2, 3, 5, 6, 7, 8, 9});
  CHECK(report.tasks_done == 9);
  CHECK(report.tasks_failed == 1);
  REQUIRE(report.failures.size() == 1);
  CHECK(report.failures[0].slice == Slice{4, 5});
}

TEST_CASE("an ordered run failing fast delivers the slices before the failure, then fails",
          "[orchestrator][ordered][failure]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1}};
  auto rows = relay_rows(6, 0);
  for (std::size_t i = 1; i < 6; ++i) rows[i] = static_cast<std::int64_t>(i);
  rows[2] = -100;
  Relay relay{DataIterator::over(rows, 1)};
  WorkerOrchestrator orch{pool, {&relay}, {.ordered = true}};
  auto future = orch.async_run(asio::use_future);
  CHECK_THROWS_AS(drive(io, future), RunError);
  CHECK(relay.slices == std::vector<std::size_t>{0, 1});
}

TEST_CASE("cancelling an ordered run drops the held results; the pool then runs in order again",
          "[orchestrator][ordered][cancel]") {
  RelayFifo fifo;
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2, .pipeline_depth = 1, .max_pipeline_depth = 1}};
  // Slice 0 waits for bytes nobody writes; slices 1..3 fail, 4..9 succeed and are held.
  auto rows = relay_rows(10, -50);
  for (std::size_t i = 1; i < 10; ++i) rows[i] = i <= 3 ? -100 : static_cast<std::int64_t>(i);
  Relay relay{DataIterator::over(rows, 1)};
  WorkerOrchestrator orch{pool, {&relay}, {.on_error = ErrorPolicy::collect, .ordered = true}};
  asio::cancellation_signal signal;
  std::exception_ptr error;
  bool done = false;
  orch.async_run(asio::bind_cancellation_slot(signal.slot(), [&](std::exception_ptr e, RunReport) {
    error = e;
    done = true;
  }));
  // Once the three failures are in, slice 0 is stuck at its worker: kill it.
  while (orch.progress()->failed.load() < 3) io.run_one();
  signal.emit(asio::cancellation_type::terminal);
  while (!done) io.run_one();
  REQUIRE(error);
  try {
    std::rethrow_exception(error);
  } catch (const std::system_error& e) {
    CHECK(e.code() == asio::error::operation_aborted);
  }
  CHECK(relay.slices.empty());  // nothing passes slice 0, which never finished

  rows[0] = 0;
  Relay again{DataIterator::over(rows, 1)};
  rows[2] = 2;
  const RunReport report =
      run_to_end(io, pool, {&again}, {.on_error = ErrorPolicy::collect, .ordered = true});
  CHECK(again.slices == std::vector<std::size_t>{0, 2, 4, 5, 6, 7, 8, 9});
  CHECK(report.tasks_failed == 2);
}

TEST_CASE("process_callback may take the Slice after the result, or only the Slice for void",
          "[orchestrator]") {
  const auto method = GENERATE(StartMethod::serial, StartMethod::spawn);
  const bool ordered = GENERATE(false, true);
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2, .start_method = method}};
  auto ints = iota_array(10);
  SliceByConstRef by_ref{DataIterator::partitioned(ints, 3)};
  SliceByRvalue by_rvalue{DataIterator::over(ints, 4)};
  VoidWithSlice void_slice{DataIterator::over(ints, 2)};
  const RunReport report =
      run_to_end(io, pool, {&by_ref, &by_rvalue, &void_slice}, {.ordered = ordered});
  CHECK(report.tasks_done == 3 + 3 + 5);
  CHECK(by_ref.total == 55);
  CHECK(by_ref.rows == 10);
  CHECK(by_rvalue.matching == 3);
  std::vector<std::size_t> starts = void_slice.starts;
  if (!ordered) std::sort(starts.begin(), starts.end());
  CHECK(starts == std::vector<std::size_t>{0, 2, 4, 6, 8});
  if (ordered) CHECK(void_slice.starts == std::vector<std::size_t>{0, 2, 4, 6, 8});
}

TEST_CASE("insights count every task of a run per worker process, with start-up times",
          "[orchestrator][insights]") {
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork, StartMethod::serial);
  const bool record_tasks = GENERATE(true, false);
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2, .start_method = method}};
  // Both ready before the run: a run this short may end before a late worker says hello.
  auto ready = pool.async_wait_ready(asio::use_future);
  drive(io, ready);
  auto ints = iota_array(10'000);
  corun::test::AddInts add{DataIterator::over(ints, 100)};
  const RunReport report = run_to_end(io, pool, {&add}, {.record_tasks = record_tasks});
  CHECK(add.total == 50'005'000);
  const RunInsights insights = report.insights();
  INFO("method " << static_cast<int>(method) << "\n" << insights.to_string());
  const std::size_t processes = method == StartMethod::serial ? 1 : 2;
  REQUIRE(insights.workers.size() == processes);
  CHECK(insights.worker_slots == processes);
  std::size_t tasks = 0;
  std::vector<pid_t> pids;
  for (const WorkerInsight& w : insights.workers) {
    tasks += w.tasks;
    pids.push_back(w.pid);
    REQUIRE(w.start_up.has_value());
    REQUIRE(w.init.has_value());
    CHECK(w.start_up->count() >= 0);
    CHECK(w.init->count() >= 0);
    CHECK(w.waiting.count() >= 0);
  }
  CHECK(tasks == 100);
  std::sort(pids.begin(), pids.end());
  std::vector<pid_t> expected = pool.worker_pids();
  if (method == StartMethod::serial) expected = {::getpid()};
  std::sort(expected.begin(), expected.end());
  CHECK(pids == expected);
  CHECK(insights.efficiency > 0);
  CHECK(insights.efficiency <= 1);
  const std::string table = insights.to_string();
  CHECK(table.rfind("worker      pid  start-up ms   init ms   tasks   working ms   waiting ms\n",
                    0) == 0);
  CHECK(table.find("efficiency ") != std::string::npos);
}

TEST_CASE("insights of a second run on a warm pool keep the processes' start-up times",
          "[orchestrator][insights]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2}};
  auto ready = pool.async_wait_ready(asio::use_future);
  drive(io, ready);
  auto ints = iota_array(1000);
  corun::test::AddInts first{DataIterator::partitioned(ints, 4)};
  const RunInsights a = run_to_end(io, pool, {&first}).insights();
  corun::test::AddInts second{DataIterator::partitioned(ints, 6)};
  const RunInsights b = run_to_end(io, pool, {&second}).insights();
  REQUIRE(a.workers.size() == 2);
  REQUIRE(b.workers.size() == 2);
  std::size_t tasks = 0;
  for (std::size_t i = 0; i < 2; ++i) {
    CHECK(a.workers[i].pid == b.workers[i].pid);
    CHECK(a.workers[i].start_up == b.workers[i].start_up);
    CHECK(a.workers[i].init == b.workers[i].init);
    tasks += b.workers[i].tasks;
  }
  CHECK(tasks == 6);
}

TEST_CASE("a crashed worker's replacement appears in the insights with its own start-up",
          "[orchestrator][insights][failure]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1}};
  auto rows = SharedArray<std::int64_t>::create({4});
  rows[0] = 1;
  rows[1] = -2;  // SIGSEGV
  rows[2] = 3;
  rows[3] = 4;
  const pid_t first_pid = pool.worker_pids().at(0);
  corun::test::Faulty faulty{DataIterator::over(rows, 1)};
  const RunReport report = run_to_end(io, pool, {&faulty}, {.on_error = ErrorPolicy::collect});
  CHECK(faulty.total == 8);
  const RunInsights insights = report.insights();
  REQUIRE(insights.workers.size() == 2);
  CHECK(insights.worker_slots == 1);
  CHECK(insights.workers[0].pid == first_pid);
  CHECK(insights.workers[0].tasks == 1);  // slice 0; the crash has no time measured
  CHECK(insights.workers[1].pid == pool.worker_pids().at(0));
  CHECK(insights.workers[1].tasks == 2);
  CHECK(insights.workers[1].start_up.has_value());
}
