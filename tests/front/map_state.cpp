// Map functions that see their worker (a TaskContext) and keep a per-process State
// (corun::map_function<&f, &init_state, &exit_hook>), on real pools of every start method: the
// State is built once per worker process and (function, params), lives across maps, and its
// exit hook runs when the worker exits (seen through PoolOptions::worker_output).
#include <corun/map.hpp>
#include <corun/map_with_state.hpp>
#include <corun/reduce.hpp>

#include "support/drive.hpp"
#include "support/support.hpp"

#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using namespace corun;
using corun::test::drive;

namespace {

std::vector<std::int64_t> iota(std::int64_t n) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

/// What a map function saw of its worker.
struct Seen {
  std::int32_t worker_id = -1;
  std::int32_t pid = 0;
  std::uint64_t start = 0, end = 0;
};
Seen where(const std::int64_t&, const TaskContext& ctx) {
  return {ctx.worker_id, ctx.worker_info().pid, ctx.slice.start, ctx.slice.end};
}

struct Scale {
  std::int64_t factor = 1;
};
/// x * factor, or -1 when the context is not a worker's.
std::int64_t scaled_in_worker(const std::int64_t& x, const Scale& s, const TaskContext& ctx) {
  const bool ok = ctx.worker_id >= 0 && ctx.worker_id < 2 && ctx.worker_info().pid == ::getpid() &&
                  ctx.slice.start < ctx.slice.end;
  return ok ? x * s.factor : -1;
}

/// The State: an offset table built from the params.
struct Offset {
  std::int64_t offset = 0;
  bool fail = false;  // then padding: equal params compare by value, not by their bytes
  friend bool operator==(const Offset&, const Offset&) = default;
};
struct Table {
  std::int64_t offset = 0;
  Table(std::int64_t o) : offset(o) {}
  Table(const Table&) = delete;  // built in place: a State need not be movable
  Table& operator=(const Table&) = delete;
};
using ProcessSlot = std::pair<pid_t, int>;
/// Tables built and dropped in this process, per worker slot (a serial pool's slots share the
/// process; a forked worker starts with the parent's counts, under the parent's pid).
std::map<ProcessSlot, int>& builds() {
  static std::map<ProcessSlot, int> counts;
  return counts;
}
std::map<ProcessSlot, std::set<std::int64_t>>& drops() {
  static std::map<ProcessSlot, std::set<std::int64_t>> dropped;
  return dropped;
}
Table build_table(const Offset& p, const WorkerInfo& info) {
  if (p.fail)
    throw std::runtime_error("cannot build the table of offset " + std::to_string(p.offset));
  ++builds()[{info.pid, info.worker_id}];
  return Table(p.offset);
}
void drop_table(Table& table, const Offset& p, const WorkerInfo& info) {
  drops()[{info.pid, info.worker_id}].insert(p.offset);
  std::printf("dropped table %lld of params %lld in worker %d\n",
              static_cast<long long>(table.offset), static_cast<long long>(p.offset),
              info.worker_id);
  std::fflush(stdout);
}

struct Looked {
  std::int64_t value = 0;
  std::int32_t worker_id = -1;
  std::int32_t pid = 0;
  std::int32_t builds = 0;  ///< tables this worker process had built when it mapped the input
};
Looked look_up(const std::int64_t& x, const Offset&, const TaskContext& ctx) {
  const Table& table = ctx.state<Table>();
  const WorkerInfo info = ctx.worker_info();
  return {x + table.offset, info.worker_id, info.pid, builds()[{info.pid, info.worker_id}]};
}
constexpr auto table_lookup = map_function<&look_up, &build_table, &drop_table>;

/// The largest Looked::builds.
struct MostBuilds {
  std::int32_t identity(std::int32_t) const { return 0; }
  std::int32_t operator()(std::int32_t acc, const Looked& l) const {
    return std::max(acc, l.builds);
  }
  std::int32_t merge(std::int32_t a, std::int32_t b) const { return std::max(a, b); }
};

std::int64_t wrong_state(const std::int64_t& x, const Offset&, const TaskContext& ctx) {
  return x + static_cast<std::int64_t>(ctx.state<double>());
}
std::int64_t asks_state(const std::int64_t& x, const TaskContext& ctx) {
  return x + ctx.state<int>();
}

/// A State built without params: one for every params.
struct Counter {
  std::int64_t uses = 0;
};
int counter_builds = 0;
Counter make_counter(const WorkerInfo&) {
  ++counter_builds;
  return {};
}
std::int64_t count_use(const std::int64_t&, const Scale& s, const TaskContext& ctx) {
  return s.factor * 1000 + ++ctx.state<Counter>().uses;
}

PoolOptions options_for(StartMethod method, std::size_t workers = 2) {
  PoolOptions o;
  o.workers = workers;
  o.start_method = method;
  return o;
}

const char* name_of(StartMethod method) {
  return method == StartMethod::spawn ? "spawn" : method == StartMethod::fork ? "fork" : "serial";
}

}  // namespace

TEST_CASE("a map function sees its worker: worker_id, worker_info and its chunk's inputs",
          "[map][context]") {
  for (StartMethod method : {StartMethod::spawn, StartMethod::fork, StartMethod::serial}) {
    INFO("start method " << name_of(method));
    asio::io_context io;
    ProcessPool pool(io.get_executor(), options_for(method));
    auto ready = pool.async_wait_ready(asio::use_future);
    drive(io, ready);
    std::vector<pid_t> pids = pool.worker_pids();
    if (method == StartMethod::serial) pids = {::getpid()};

    auto seen =
        async_map<&where>(pool, iota(1000), MapOptions<>{.chunk_size = 7}, asio::use_future);
    const std::vector<Seen> out = drive(io, seen);
    REQUIRE(out.size() == 1000);
    for (std::uint64_t i = 0; i < out.size(); ++i) {
      INFO("input " << i);
      REQUIRE(out[i].start <= i);
      REQUIRE(i < out[i].end);
      REQUIRE(out[i].end - out[i].start <= 7);
      REQUIRE((out[i].worker_id == 0 || out[i].worker_id == 1));
      REQUIRE(std::count(pids.begin(), pids.end(), out[i].pid) == 1);
    }

    std::vector<std::int64_t> delivered(500, 0);
    auto each = async_imap<&scaled_in_worker>(
        pool, iota(500), MapOptions<Scale>{.chunk_size = 9, .params = {3}},
        [&](std::size_t i, std::int64_t v) { delivered[i] = v; }, asio::use_future);
    drive(io, each);
    for (std::size_t i = 0; i < delivered.size(); ++i)
      REQUIRE(delivered[i] == 3 * static_cast<std::int64_t>(i));

    auto total = async_map_reduce<&scaled_in_worker>(
        pool, iota(500), std::int64_t{0}, reduce::sum{},
        MapOptions<Scale>{.chunk_size = 9, .params = {2}}, asio::use_future);
    CHECK(drive(io, total) == 2 * 499 * 500 / 2);
    auto done = pool.async_shutdown(asio::use_future);
    drive(io, done);
  }
}

TEST_CASE(
    "a map State is built once per worker process and params, kept across maps, and its "
    "exit hook runs when the worker exits",
    "[map][state]") {
  for (StartMethod method : {StartMethod::spawn, StartMethod::fork, StartMethod::serial}) {
    INFO("start method " << name_of(method));
    std::vector<std::string> lines;
    PoolOptions options = options_for(method);
    options.worker_output = [&](const WorkerOutputLine& line) {
      lines.push_back(std::to_string(line.pid) + " " + std::string(line.text));
    };
    asio::io_context io;
    ProcessPool pool(io.get_executor(), options);
    auto ready = pool.async_wait_ready(asio::use_future);
    drive(io, ready);
    const pid_t self = ::getpid();
    // The tables each worker process built, as the results say it must have: one per params.
    std::map<ProcessSlot, std::set<std::int64_t>> built;
    auto check = [&](const std::vector<Looked>& out, std::int64_t offset) {
      REQUIRE(out.size() == 2000);
      for (const Looked& l : out) built[{l.pid, l.worker_id}].insert(offset);
      for (std::size_t i = 0; i < out.size(); ++i) {
        INFO("input " << i << " offset " << offset);
        REQUIRE(out[i].value == static_cast<std::int64_t>(i) + offset);
        REQUIRE((method == StartMethod::serial) == (out[i].pid == self));
        REQUIRE(out[i].builds == static_cast<int>(built[{out[i].pid, out[i].worker_id}].size()));
      }
    };
    for (const std::int64_t offset : {100, 100, 200, 100}) {
      MapOptions<Offset> o{.chunk_size = 10, .params = {offset, false}};
      auto map = async_map<table_lookup>(pool, iota(2000), o, asio::use_future);
      check(drive(io, map), offset);
    }
    // async_imap and async_map_reduce of the same map_function and params share the State.
    std::vector<Looked> imapped(2000);
    auto each = async_imap<table_lookup>(
        pool, iota(2000), MapOptions<Offset>{.chunk_size = 10, .params = {200, false}},
        [&](std::size_t i, Looked l) { imapped[i] = l; }, asio::use_future);
    drive(io, each);
    check(imapped, 200);
    auto done = pool.async_shutdown(asio::use_future);
    drive(io, done);
    // One exit hook per table built, in the process that built it.
    std::multiset<std::string> expected, got;
    for (const auto& [slot, offsets] : built)
      for (const std::int64_t offset : offsets)
        expected.insert(std::to_string(slot.first) + " dropped table " + std::to_string(offset) +
                        " of params " + std::to_string(offset) + " in worker " +
                        std::to_string(slot.second));
    if (method == StartMethod::serial) {
      CHECK(lines.empty());  // no worker processes: the hooks ran here
      for (const auto& [slot, offsets] : built) CHECK(drops()[slot] == offsets);
    } else {
      got.insert(lines.begin(), lines.end());
      CHECK(got == expected);
    }
  }
}

TEST_CASE("async_map_reduce of the same map_function and params shares the State of async_map",
          "[map][state]") {
  for (StartMethod method : {StartMethod::fork, StartMethod::serial}) {
    INFO("start method " << name_of(method));
    asio::io_context io;
    ProcessPool pool(io.get_executor(), options_for(method, 1));
    builds()[{::getpid(), 0}] = 0;
    auto map = async_map<table_lookup>(
        pool, iota(100), MapOptions<Offset>{.chunk_size = 10, .params = {100}}, asio::use_future);
    CHECK(drive(io, map).back().builds == 1);
    for (const auto& [offset, most] : {std::pair{100, 1}, std::pair{300, 2}, std::pair{100, 2}}) {
      auto reduced = async_map_reduce<table_lookup>(
          pool, iota(100), std::int32_t{0}, MostBuilds{},
          MapOptions<Offset>{.chunk_size = 10, .params = {offset}}, asio::use_future);
      CHECK(drive(io, reduced) == most);
    }
  }
}

TEST_CASE(
    "a process keeps the States of 16 idle (function, params) pairs, dropping the least "
    "recently used beyond",
    "[map][state]") {
  asio::io_context io;
  ProcessPool pool(io.get_executor(), options_for(StartMethod::serial, 1));
  const ProcessSlot slot{::getpid(), 0};
  builds()[slot] = 0;
  drops()[slot].clear();
  auto run = [&](std::int64_t offset) {
    auto map = async_map<table_lookup>(
        pool, iota(20), MapOptions<Offset>{.chunk_size = 5, .params = {offset}}, asio::use_future);
    return drive(io, map).back().value - 19;
  };
  for (std::int64_t offset = 0; offset < 16; ++offset) CHECK(run(offset) == offset);
  CHECK(builds()[slot] == 16);
  CHECK(drops()[slot].empty());
  CHECK(run(5) == 5);  // kept: no build
  CHECK(builds()[slot] == 16);
  CHECK(run(16) == 16);  // the 17th: the least recently used (0) goes
  CHECK(builds()[slot] == 17);
  CHECK(drops()[slot] == std::set<std::int64_t>{0});
  CHECK(run(0) == 0);  // built again; 1 goes
  CHECK(builds()[slot] == 18);
  CHECK(drops()[slot] == std::set<std::int64_t>{0, 1});
  auto done = pool.async_shutdown(asio::use_future);
  drive(io, done);
  std::set<std::int64_t> all;
  for (std::int64_t offset = 0; offset <= 16; ++offset) all.insert(offset);
  CHECK(drops()[slot] == all);  // the 16 kept ran their exit hooks at shutdown
}

TEST_CASE("an init_state without params builds one State for every params", "[map][state]") {
  asio::io_context io;
  ProcessPool pool(io.get_executor(), options_for(StartMethod::serial, 1));
  counter_builds = 0;
  for (std::int64_t factor : {1, 2}) {
    auto map = async_map<map_function<&count_use, &make_counter>>(
        pool, iota(3), MapOptions<Scale>{.params = {factor}}, asio::use_future);
    const std::int64_t first_use = factor == 1 ? 1 : 4;
    CHECK(drive(io, map) == std::vector<std::int64_t>{factor * 1000 + first_use,
                                                      factor * 1000 + first_use + 1,
                                                      factor * 1000 + first_use + 2});
  }
  CHECK(counter_builds == 1);
}

TEST_CASE("ctx.state of another type fails the input, naming both types", "[map][state][failure]") {
  for (StartMethod method : {StartMethod::fork, StartMethod::serial}) {
    INFO("start method " << name_of(method));
    asio::io_context io;
    ProcessPool pool(io.get_executor(), options_for(method, 1));
    auto wrong = async_map<map_function<&wrong_state, &build_table>>(
        pool, iota(30), MapOptions<Offset>{.chunk_size = 10, .params = {7}}, asio::use_future);
    try {
      drive(io, wrong);
      FAIL("no error");
    } catch (const RunError& e) {
      REQUIRE(!e.errors().empty());
      const TaskError& error = e.errors().front();
      CHECK(error.exception_type == "std::logic_error");
      CHECK(error.message ==
            "input 0: corun::TaskContext::state<double>: the map function's State is "
            "(anonymous namespace)::Table");
      CHECK(error.slice.start == 0);
      CHECK(error.slice.end == 1);
    }
    auto none = async_map<&asks_state>(pool, iota(3), MapOptions<>{}, asio::use_future);
    try {
      drive(io, none);
      FAIL("no error");
    } catch (const RunError& e) {
      REQUIRE(!e.errors().empty());
      CHECK(e.errors().front().message ==
            "input 0: corun::TaskContext::state<int>: the map function has no State: give "
            "async_map corun::map_function<&f, &init_state> to build one");
    }
  }
}

TEST_CASE(
    "an init_state that throws fails its chunk with its message; the next map builds the "
    "State",
    "[map][state][failure]") {
  asio::io_context io;
  ProcessPool pool(io.get_executor(), options_for(StartMethod::fork, 1));
  auto failing = async_map<table_lookup>(
      pool, iota(30), MapOptions<Offset>{.chunk_size = 10, .params = {9, true}}, asio::use_future);
  try {
    drive(io, failing);
    FAIL("no error");
  } catch (const RunError& e) {
    REQUIRE(!e.errors().empty());
    const TaskError& error = e.errors().front();
    CHECK(error.exception_type == "std::runtime_error");
    CHECK(error.message == "cannot build the table of offset 9");
    CHECK(error.slice.start == 0);
    CHECK(error.slice.end == 10);  // the State is built before the chunk's first input
  }
  auto working = async_map<table_lookup>(
      pool, iota(30), MapOptions<Offset>{.chunk_size = 10, .params = {9, false}}, asio::use_future);
  const auto out = drive(io, working);
  REQUIRE(out.size() == 30);
  CHECK(out[29].value == 38);
  CHECK(out[29].builds == 1);
}
