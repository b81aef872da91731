#include <corun/worker.hpp>

#include "support/drive.hpp"
#include "support/support.hpp"
#include "support/workers.hpp"

#include <unistd.h>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <numeric>
#include <optional>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <vector>

using namespace corun;
using corun::test::drive;
using corun::test::iota_array;

TEST_CASE("the result type of process is deduced with or without TaskContext", "[worker]") {
  STATIC_REQUIRE(std::is_same_v<detail::worker_result_t<test::AddInts>, std::int64_t>);
  STATIC_REQUIRE(std::is_same_v<detail::worker_result_t<test::ConcatStr>, test::Piece>);
  STATIC_REQUIRE(std::is_same_v<detail::worker_result_t<test::Square>, void>);
  STATIC_REQUIRE(std::is_same_v<detail::worker_result_t<test::Blob>, std::vector<char>>);
}

TEST_CASE("registered workers are found by their stable name", "[worker]") {
  CHECK(std::string(detail::require_registered(typeid(test::AddInts))) == "corun::test::AddInts");
  CHECK(detail::find_invoker("corun::test::AddInts") != nullptr);
  CHECK(detail::find_invoker("NoSuchWorker") == nullptr);
  CHECK(detail::registered_name(typeid(int)) == nullptr);
}

TEST_CASE("a worker checks the element type of its array when constructed", "[worker][failure]") {
  auto doubles = SharedArray<double>::create({8});
  try {
    test::AddInts add{DataIterator::over(doubles, 4)};
    FAIL("expected dtype_mismatch");
  } catch (const Error& e) {
    CHECK(e.code() == errc::dtype_mismatch);
    CHECK_THAT(e.what(), Catch::Contains("<f8") && Catch::Contains("<i8"));
  }
}

TEST_CASE("process can be unit-tested in process with a serial pool", "[worker]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.start_method = StartMethod::serial}};
  CHECK(pool.size() == 1);
  CHECK(pool.worker_pids().empty());
  auto in = iota_array(6);
  auto out = SharedArray<std::int64_t>::create({6});
  test::Square square{DataIterator::over(in, 4), out.info()};
  auto first = pool.async_execute(square, Slice{0, 4}, asio::use_future);
  test::drive(io, first);
  auto second = pool.async_execute(square, Slice{4, 6}, asio::use_future);
  test::drive(io, second);
  CHECK(std::vector<std::int64_t>(out.begin(), out.end()) ==
        std::vector<std::int64_t>{1, 4, 9, 16, 25, 36});
}

TEST_CASE("TaskContext::output without an output array is a logic error naming the fix",
          "[worker][failure]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.start_method = StartMethod::serial}};
  auto in = iota_array(4);
  test::Square square{DataIterator::over(in, 4)};  // no output array
  auto future = pool.async_execute(square, Slice{0, 4}, asio::use_future);
  try {
    test::drive(io, future);
    FAIL("expected TaskFailed");
  } catch (const TaskFailed& e) {
    CHECK(e.error().exception_type == "std::logic_error");
    CHECK_THAT(e.error().message, Catch::Contains("constructed without an output array"));
  }
}

namespace {
/// {pid: the `tasks` counts its results carried, in arrival order}.
std::map<std::int64_t, std::vector<std::int64_t>> counts_by_pid(
    const std::vector<std::vector<std::int64_t>>& seen) {
  std::map<std::int64_t, std::vector<std::int64_t>> by_pid;
  for (const auto& v : seen) by_pid[v.at(0)].push_back(v.at(1));
  return by_pid;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
}  // namespace

TEST_CASE(
    "a worker type's State lives per process, made once with its params; its hooks run "
    "once each",
    "[worker][state][hooks]") {
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork);
  char dir[] = "/tmp/corun_state_XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  ::setenv("CORUN_TEST_HOOK_DIR", dir, 1);
  // A forked worker starts with this process's count of worker_init calls.
  const int inits_before = method == StartMethod::fork ? test::PerProcess::inits : 0;
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2, .start_method = method}};
  auto ints = iota_array(30);
  test::PerProcess per{DataIterator::over(ints, 1), 40};
  WorkerOrchestrator orch{pool, {&per}};
  auto run = orch.async_run(asio::use_future);
  drive(io, run);
  REQUIRE(per.seen.size() == 30);
  for (const auto& v : per.seen) {
    CHECK(v.at(2) == 80);                // State::base (from init_state) + params
    CHECK(v.at(3) == inits_before + 1);  // worker_init ran once in that process
    CHECK(v.at(4) == 40);                // with the params
  }
  // One worker's results arrive in the order it ran them: its State counted 1, 2, 3, ...
  const auto by_pid = counts_by_pid(per.seen);
  for (const auto& [pid, counts] : by_pid) {
    std::vector<std::int64_t> expected(counts.size());
    std::iota(expected.begin(), expected.end(), 1);
    CHECK(counts == expected);
  }
  auto shutdown = pool.async_shutdown(asio::use_future);
  drive(io, shutdown);
  // worker_exit ran before each process exited, and saw its final State.
  for (const auto& [pid, counts] : by_pid)
    CHECK(read_file(std::string(dir) + "/state_" + std::to_string(pid)) ==
          std::to_string(counts.size()));
  std::filesystem::remove_all(dir);
  ::unsetenv("CORUN_TEST_HOOK_DIR");
  CHECK(test::child_pids().empty());
}

TEST_CASE("a spec the parent dropped is forgotten by the worker, which runs its worker_exit",
          "[worker][state][hooks]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.start_method = StartMethod::serial}};
  auto ints = iota_array(4);
  test::PerProcess per{DataIterator::over(ints, 2), 1};
  const int inits = test::PerProcess::inits, exits = test::PerProcess::exits;
  // Each async_execute call makes a spec of its own: its state and hooks are its own too.
  auto first = pool.async_execute(per, Slice{0, 2}, asio::use_future);
  CHECK(drive(io, first).at(1) == 1);
  CHECK(test::PerProcess::inits == inits + 1);
  CHECK(test::PerProcess::exits == exits);
  auto second = pool.async_execute(per, Slice{2, 4}, asio::use_future);
  CHECK(drive(io, second).at(1) == 1);
  CHECK(test::PerProcess::inits == inits + 2);
  CHECK(test::PerProcess::exits == exits + 1);  // the first spec, gone in the parent
  auto shutdown = pool.async_shutdown(asio::use_future);
  drive(io, shutdown);
  CHECK(test::PerProcess::exits == exits + 2);
}

TEST_CASE("TaskContext::state of a type the worker does not declare is a logic error",
          "[worker][state][failure]") {
  auto in = iota_array(4);
  // What a worker without State sees, then one whose State is a double.
  detail::SpecCache cache;
  const std::optional<ArrayInfo> output;
  const auto it = DataIterator::over(in, 4);
  const TaskContext ctx{0, Slice{0, 4}, Slice{0, 4}, it, output, 0, 0, {}, {}, &cache};
  CHECK_THROWS_WITH(ctx.state<int>(), Catch::Contains("declares no State"));
  cache.state_type = &typeid(double);
  CHECK_THROWS_WITH(ctx.state<int>(), Catch::Contains("the worker's State is double"));
}
