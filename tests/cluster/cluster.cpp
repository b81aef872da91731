// corun/cluster.hpp under a real mpirun (tests/mpi/mpirun_test.sh starts it with 2 and 3 ranks).
// Every rank makes the distributed arrays; rank 0 runs the Catch2 test cases against one
// ClusterPool while the other ranks serve; then rank 0 shuts the cluster down gracefully.
#include <corun/cluster.hpp>
#include <corun/map.hpp>
#include <corun/reduce.hpp>

#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "support/drive.hpp"
#include "support/workers.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <xtensor/xmath.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <numeric>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>

using corun::test::AddInts;
using corun::test::Faulty;

/// A second worker type, over another element type: sums the squares of its slice.
struct SumSquares : corun::Worker<SumSquares, double> {
  using Worker::Worker;
  static double process(corun::SliceView<const double> slice) { return xt::sum(slice * slice)(); }
  void process_callback(double partial) { total += partial; }
  double total = 0;
};
CORUN_REGISTER_WORKER(SumSquares);

/// Faulty's process; each callback calls `on_callback` (the test's hook into a running run).
struct Watched : corun::Worker<Watched, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(corun::SliceView<const std::int64_t> slice) {
    return Faulty::process(slice);
  }
  void process_callback(std::int64_t partial) {
    total += partial;
    if (on_callback) on_callback(++callbacks);
  }
  std::int64_t total = 0;
  int callbacks = 0;
  std::function<void(int)> on_callback;
};
CORUN_REGISTER_WORKER(Watched);

/// Returns the first row of its task as TaskContext::slice counts it, or -1 when the view does
/// not hold that row (arrays are filled with row + 1); writes each row's number to the output
/// array when it has one.
struct RowsSeen : corun::Worker<RowsSeen, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(corun::SliceView<const std::int64_t> view,
                              const corun::TaskContext& ctx) {
    if (view.size() != ctx.slice.size()) return -1;
    for (std::size_t i = 0; i < view.size(); ++i)
      if (view(i) != static_cast<std::int64_t>(ctx.slice.start + i) + 1) return -1;
    if (ctx.output_info) {
      auto out = ctx.output<std::int64_t>();
      for (std::size_t i = 0; i < out.size(); ++i)
        out(i) = static_cast<std::int64_t>(ctx.slice.start + i);
    }
    return static_cast<std::int64_t>(ctx.slice.start);
  }
  void process_callback(std::int64_t first_row, corun::Slice slice) {
    if (first_row != static_cast<std::int64_t>(slice.start)) ++wrong;
    ++seen;
  }
  int wrong = 0;
  int seen = 0;
};
CORUN_REGISTER_WORKER(RowsSeen);

namespace {

using Int64Array = corun::DistributedArray<std::int64_t>;

struct Cluster {
  corun::Cluster* cluster = nullptr;
  asio::io_context* io = nullptr;
  corun::ClusterPool* pool = nullptr;
  std::map<std::string, Int64Array*> ints;
  corun::DistributedArray<double>* doubles = nullptr;
  corun::DistributedArray<double>* matrix = nullptr;  // scattered from rank 0
  std::string scatter_refusal;                        // what a wrong-sized scatter threw
};
Cluster g;

std::int64_t triangle(std::size_t n) {
  return static_cast<std::int64_t>(n * (n + 1) / 2);
}

corun::RunReport run(std::vector<corun::WorkerRef> workers,
                     corun::OrchestratorOptions options = {}) {
  corun::WorkerOrchestrator orch{*g.pool, std::move(workers), options};
  auto done = orch.async_run(asio::use_future);
  return corun::test::drive(*g.io, done);
}

/// Which block of `blocks` a slice is (its index in the iterator).
std::size_t block_index(const corun::DataIterator& blocks, corun::Slice slice) {
  for (std::size_t i = 0; i < blocks.slice_count(); ++i)
    if (blocks.slice(i) == slice) return i;
  FAIL("slice " << slice << " is no block");
  return 0;
}

}  // namespace

TEST_CASE("every rank's workers start", "[cluster]") {
  auto ready = g.pool->async_wait_ready(asio::use_future);
  corun::test::drive(*g.io, ready);
  CHECK(g.pool->ranks() == g.cluster->size());
}

TEST_CASE("slices run on the rank holding their rows, and the sums are exact", "[cluster]") {
  const int ranks = g.cluster->size();
  for (const char* name : {"one", "ten", "big", "chunked"}) {
    INFO("array " << name);
    Int64Array& array = *g.ints.at(name);
    AddInts add{array.iterator()};
    const corun::RunReport report = run({&add});
    CHECK(add.total == triangle(array.shape()[0]));
    CHECK(report.tasks_done == array.iterator().slice_count());
    std::set<int> used;
    for (const corun::TaskRecord& t : report.tasks) {
      CHECK(t.rank == static_cast<int>(block_index(array.iterator(), t.slice)) % ranks);
      CHECK(t.outcome == corun::TaskOutcome::ok);
      used.insert(t.rank);
    }
    CHECK(used.size() == std::min<std::size_t>(array.iterator().slice_count(), ranks));
  }
}

TEST_CASE("inside process, TaskContext::slice counts rows of the whole distributed array",
          "[cluster]") {
  for (const char* name : {"ten", "big", "chunked"}) {
    INFO("array " << name);
    Int64Array& array = *g.ints.at(name);
    RowsSeen blocks{array.iterator()};
    run({&blocks});
    CHECK(blocks.wrong == 0);
    CHECK(blocks.seen == static_cast<int>(array.iterator().slice_count()));
  }
  // Slices smaller than the blocks: 16 rows inside each block of 64.
  RowsSeen small{corun::DataIterator::over(g.ints.at("chunked")->info(), 16)};
  run({&small});
  CHECK(small.wrong == 0);
  CHECK(small.seen == 1000 / 16 + 1);
}

TEST_CASE("a distributed output array receives each task's rows on the rank holding them",
          "[cluster]") {
  Int64Array& in = *g.ints.at("chunked");
  Int64Array& out = *g.ints.at("chunked_out");
  RowsSeen write{corun::DataIterator::over(in.info(), 16), out.info()};
  run({&write});
  CHECK(write.wrong == 0);
  // Row r of the output now holds r: their sum, read on every rank, is 0 + 1 + ... + 999.
  AddInts add{out.iterator()};
  run({&add});
  CHECK(add.total == triangle(999));
}

TEST_CASE("arrays scattered from rank 0 hold rank 0's rows on every rank", "[cluster][scatter]") {
  for (const char* name : {"scattered", "scattered_in_pieces"}) {
    INFO("array " << name);
    Int64Array& ints = *g.ints.at(name);
    RowsSeen rows{ints.iterator()};  // checks each row holds row + 1
    run({&rows});
    CHECK(rows.wrong == 0);
    CHECK(rows.seen == 7);
    AddInts add{ints.iterator()};
    run({&add});
    CHECK(add.total == triangle(10'007));
  }
  // 301 rows of 3 columns holding 1..903: the sum of their squares is n(n+1)(2n+1)/6.
  SumSquares squares{g.matrix->iterator()};
  run({&squares});
  CHECK(squares.total == 903.0 * 904.0 * 1807.0 / 6.0);
}

TEST_CASE("a scatter of the wrong size throws on every rank, naming the rank and the sizes",
          "[cluster][scatter][failure]") {
  using Catch::Matchers::Contains;
  using Catch::Matchers::StartsWith;
  CHECK_THAT(g.scatter_refusal,
             StartsWith("corun::DistributedArray::scatter: rank 0 passed 10 elements; rank 0 "
                        "passes all 10007 elements of array corun-dist-"));
  CHECK_THAT(g.scatter_refusal, Contains("(10007 rows of 1), the other ranks none"));
}

TEST_CASE("two worker types over two distributed arrays share one run", "[cluster]") {
  Int64Array& big = *g.ints.at("big");
  AddInts add{big.iterator()};
  SumSquares squares{g.doubles->iterator()};
  const corun::RunReport report = run({&add, &squares});
  CHECK(add.total == triangle(big.shape()[0]));
  const std::size_t n = g.doubles->shape()[0];  // rows 1..n: sum of squares n(n+1)(2n+1)/6
  CHECK(squares.total == static_cast<double>(n * (n + 1) * (2 * n + 1) / 6));
  CHECK(report.tasks_done == big.iterator().slice_count() + g.doubles->iterator().slice_count());
}

TEST_CASE("a task failing on rank 1 is a TaskError naming rank 1", "[cluster][failure]") {
  Int64Array& poison = *g.ints.at("poison");  // row 15, in block 1 of 6, holds -1
  const corun::Slice block1 = poison.iterator().slice(1);
  SECTION("collected") {
    Faulty faulty{poison.iterator()};
    const corun::RunReport report = run({&faulty}, {.on_error = corun::ErrorPolicy::collect});
    REQUIRE(report.failures.size() == 1);
    const corun::TaskError& e = report.failures[0];
    CHECK(e.kind == corun::TaskErrorKind::exception);
    CHECK(e.rank == 1);
    CHECK(e.slice == block1);
    CHECK(e.worker == "corun::test::Faulty");
    CHECK(e.message == "row value -1 is poison");
    CHECK(e.describe().find("on rank 1") != std::string::npos);
    const auto poisoned =
        static_cast<std::int64_t>((block1.start + 1 + block1.end) * block1.size() / 2);
    CHECK(faulty.total == triangle(60) - poisoned);
  }
  SECTION("failing fast") {
    Faulty faulty{poison.iterator()};
    try {
      run({&faulty});
      FAIL("the run did not fail");
    } catch (const corun::RunError& e) {
      REQUIRE(e.errors().size() == 1);
      CHECK(e.errors()[0].rank == 1);
      CHECK(std::string(e.what()).find("on rank 1") != std::string::npos);
    }
  }
}

TEST_CASE("a worker crashing on rank 1 is reported with its rank and replaced",
          "[cluster][failure]") {
  Int64Array& crash = *g.ints.at("crash");  // row 15 holds -2: SIGSEGV
  Faulty faulty{crash.iterator()};
  const corun::RunReport report = run({&faulty}, {.on_error = corun::ErrorPolicy::collect});
  REQUIRE(report.failures.size() == 1);
  CHECK(report.failures[0].kind == corun::TaskErrorKind::crashed);
  CHECK(report.failures[0].rank == 1);
  CHECK(report.failures[0].signal == SIGSEGV);
  AddInts add{g.ints.at("big")->iterator()};
  run({&add});
  CHECK(add.total == triangle(g.ints.at("big")->shape()[0]));
}

TEST_CASE("a run's RetryPolicy travels with its tasks: rank 1's pool retries them there",
          "[cluster][failure][retry]") {
  using namespace std::chrono_literals;
  SECTION("an exception, three runs") {
    Faulty faulty{g.ints.at("poison")->iterator()};
    const corun::RunReport report =
        run({&faulty}, {.on_error = corun::ErrorPolicy::collect,
                        .retry = corun::RetryPolicy{.attempts = 3, .backoff = {.initial = 1ms}},
                        .priority = 2});
    REQUIRE(report.failures.size() == 1);
    CHECK(report.failures[0].rank == 1);
    CHECK(report.failures[0].attempts == 3);  // the ranks' pools have retries = 0
  }
  SECTION("an exception of a type the policy does not name, one run") {
    Faulty faulty{g.ints.at("poison")->iterator()};
    const corun::RunReport report = run(
        {&faulty}, {.on_error = corun::ErrorPolicy::collect,
                    .retry = corun::RetryPolicy{
                        .attempts = 3, .retry_on = {.exception_types = {"std::domain_error"}}}});
    REQUIRE(report.failures.size() == 1);
    CHECK(report.failures[0].attempts == 1);
  }
  SECTION("a crash, on a fresh worker of rank 1") {
    Faulty faulty{g.ints.at("crash")->iterator()};
    const corun::RunReport report =
        run({&faulty},
            {.on_error = corun::ErrorPolicy::collect,
             .retry = corun::RetryPolicy{.attempts = 2,
                                         .backoff = {.initial = 0ms},
                                         .retry_on = {.kinds = {corun::TaskErrorKind::crashed}}}});
    REQUIRE(report.failures.size() == 1);
    CHECK(report.failures[0].kind == corun::TaskErrorKind::crashed);
    CHECK(report.failures[0].rank == 1);
    CHECK(report.failures[0].attempts == 2);
  }
}

TEST_CASE("cancelling a run kills a task blocked on rank 1; the cluster stays usable",
          "[cluster][cancel]") {
  Int64Array& hang = *g.ints.at("hang");  // row 15 holds -5: blocks forever
  Watched watched{hang.iterator()};
  asio::cancellation_signal signal;
  const int others = static_cast<int>(hang.iterator().slice_count()) - 1;
  watched.on_callback = [&](int callbacks) {
    if (callbacks == others) signal.emit(asio::cancellation_type::terminal);
  };
  corun::WorkerOrchestrator orch{*g.pool, {&watched}};
  auto done = orch.async_run(asio::bind_cancellation_slot(signal.slot(), asio::use_future));
  try {
    corun::test::drive(*g.io, done);
    FAIL("the run was not cancelled");
  } catch (const std::system_error& e) {
    CHECK(e.code() == asio::error::operation_aborted);
  }
  CHECK(watched.callbacks == others);
  AddInts add{g.ints.at("ten")->iterator()};
  run({&add});
  CHECK(add.total == triangle(10));
}

TEST_CASE("a drained cancellation completes the run with operation_aborted", "[cluster][cancel]") {
  Watched watched{g.ints.at("chunked")->iterator()};  // 16 blocks over the ranks
  asio::cancellation_signal signal;
  watched.on_callback = [&](int callbacks) {
    if (callbacks == 1) signal.emit(asio::cancellation_type::partial);
  };
  corun::WorkerOrchestrator orch{*g.pool, {&watched}};
  auto done = orch.async_run(asio::bind_cancellation_slot(signal.slot(), asio::use_future));
  CHECK_THROWS_MATCHES(corun::test::drive(*g.io, done), std::system_error,
                       Catch::Predicate<std::system_error>([](const std::system_error& e) {
                         return e.code() == asio::error::operation_aborted;
                       }));
  CHECK(watched.callbacks == 1);  // results arriving after the cancellation are discarded
}

TEST_CASE("async_execute runs one slice on the rank holding it", "[cluster]") {
  Int64Array& big = *g.ints.at("big");
  const int ranks = g.cluster->size();
  for (std::size_t b = 0; b < big.iterator().slice_count(); ++b) {
    const corun::Slice slice = big.iterator().slice(b);
    auto sum = g.pool->async_execute<AddInts>(big.iterator(), slice, asio::use_future);
    const auto expected =
        static_cast<std::int64_t>((slice.start + 1 + slice.end) * slice.size() / 2);
    CHECK(corun::test::drive(*g.io, sum) == expected);
    // The worker-object form: process sees the rows of the whole array there too.
    RowsSeen writer{big.iterator()};
    auto first = g.pool->async_execute(writer, slice, asio::use_future);
    CHECK(corun::test::drive(*g.io, first) == static_cast<std::int64_t>(slice.start));
  }
  Int64Array& poison = *g.ints.at("poison");
  auto failing = g.pool->async_execute<Faulty>(poison.iterator(), poison.iterator().slice(1),
                                               asio::use_future);
  try {
    corun::test::drive(*g.io, failing);
    FAIL("the task did not fail");
  } catch (const corun::TaskFailed& e) {
    CHECK(e.error().rank == 1 % ranks);
    CHECK(e.error().slice == poison.iterator().slice(1));
  }
}

TEST_CASE("a slice crossing blocks fails with a message naming the array", "[cluster][failure]") {
  Int64Array& ten = *g.ints.at("ten");  // blocks [0,4) [4,7) [7,10); slices [0,4) [4,8) [8,10)
  AddInts add{corun::DataIterator::over(ten.info(), 4)};
  const corun::RunReport report = run({&add}, {.on_error = corun::ErrorPolicy::collect});
  REQUIRE(report.failures.size() == 1);
  CHECK(report.failures[0].kind == corun::TaskErrorKind::protocol);
  CHECK(report.failures[0].slice == corun::Slice{4, 8});
  CHECK(report.failures[0].message.find("crosses blocks of distributed array '" +
                                        ten.info().name) != std::string::npos);
  CHECK(add.total == triangle(4) + (9 + 10));
}

TEST_CASE("a plain SharedArray runs on rank 0", "[cluster]") {
  auto ints = corun::SharedArray<std::int64_t>::create({1000});
  for (std::size_t i = 0; i < ints.size(); ++i) ints[i] = static_cast<std::int64_t>(i) + 1;
  AddInts add{corun::DataIterator::partitioned(ints, 5)};
  const corun::RunReport report = run({&add});
  CHECK(add.total == triangle(1000));
  for (const corun::TaskRecord& t : report.tasks) CHECK(t.rank == 0);
}

namespace {
std::int64_t cube(const std::int64_t& x) {
  return x * x * x;
}

/// The rank whose pool ran the input (mpirun gives each rank's processes, workers included, their
/// rank in the environment), times 1000, plus the input.
std::int64_t rank_and_input(const std::int64_t& x) {
  const char* rank = std::getenv("OMPI_COMM_WORLD_RANK");
  if (rank == nullptr) throw std::runtime_error("OMPI_COMM_WORLD_RANK is not set");
  return std::stoll(rank) * 1000 + x;
}

/// Input 13 fails, naming the rank it ran on.
std::int64_t unlucky(const std::int64_t& x) {
  if (x == 13)
    throw std::domain_error("13 is unlucky on rank " + std::to_string(rank_and_input(0) / 1000));
  return x;
}
}  // namespace

TEST_CASE("async_map and async_map_reduce spread their chunks over every rank", "[cluster][map]") {
  std::vector<std::int64_t> inputs(1000);
  for (std::size_t i = 0; i < inputs.size(); ++i) inputs[i] = static_cast<std::int64_t>(i);
  auto mapped = corun::async_map<&cube>(*g.pool, inputs, corun::MapOptions<>{.chunk_size = 10},
                                        asio::use_future);
  const auto cubes = corun::test::drive(*g.io, mapped);
  REQUIRE(cubes.size() == 1000);
  for (std::size_t i = 0; i < cubes.size(); ++i)
    REQUIRE(cubes[i] == inputs[i] * inputs[i] * inputs[i]);
  auto reduced =
      corun::async_map_reduce<&cube>(*g.pool, inputs, std::int64_t{0}, corun::reduce::sum{},
                                     corun::MapOptions<>{}, asio::use_future);
  CHECK(corun::test::drive(*g.io, reduced) == triangle(999) * triangle(999));  // sum of cubes

  // Every rank ran chunks: the least busy rank takes the next one, and the first window alone
  // holds more chunks than one rank's pool.
  auto where = corun::async_map<&rank_and_input>(
      *g.pool, inputs, corun::MapOptions<>{.chunk_size = 10}, asio::use_future);
  const auto tagged = corun::test::drive(*g.io, where);
  REQUIRE(tagged.size() == 1000);
  std::set<std::int64_t> ranks;
  for (std::size_t i = 0; i < tagged.size(); ++i) {
    REQUIRE(tagged[i] % 1000 == inputs[i]);
    ranks.insert(tagged[i] / 1000);
  }
  std::set<std::int64_t> all;
  for (int r = 0; r < g.cluster->size(); ++r) all.insert(r);
  CHECK(ranks == all);
}

TEST_CASE("a map's chunks go where the fewest tasks per worker are: a bigger node takes more",
          "[cluster][map]") {
  std::vector<std::size_t> expected(static_cast<std::size_t>(g.cluster->size()), 2);
  expected.back() = 3;
  REQUIRE(g.pool->workers() == expected);
  // As many chunks as workers, all sent in the first window (before any result comes back):
  // each rank runs as many as it has workers.
  const std::size_t workers = std::accumulate(expected.begin(), expected.end(), std::size_t{0});
  std::vector<std::int64_t> inputs(10 * workers);
  std::iota(inputs.begin(), inputs.end(), 0);
  auto where = corun::async_map<&rank_and_input>(
      *g.pool, inputs, corun::MapOptions<>{.chunk_size = 10, .max_tasks_active = workers},
      asio::use_future);
  const auto tagged = corun::test::drive(*g.io, where);
  REQUIRE(tagged.size() == inputs.size());
  std::vector<std::size_t> chunks(expected.size(), 0);
  for (std::size_t i = 0; i < tagged.size(); i += 10)
    ++chunks.at(static_cast<std::size_t>(tagged[i] / 1000));
  CHECK(chunks == expected);
}

TEST_CASE("a failing async_map input on any rank names the input and its rank",
          "[cluster][map][failure]") {
  std::vector<std::int64_t> inputs(100);
  for (std::size_t i = 0; i < inputs.size(); ++i) inputs[i] = static_cast<std::int64_t>(i);
  auto mapped = corun::async_map<&unlucky>(*g.pool, inputs, corun::MapOptions<>{.chunk_size = 1},
                                           asio::use_future);
  try {
    corun::test::drive(*g.io, mapped);
    FAIL("no error");
  } catch (const corun::RunError& e) {
    REQUIRE(e.errors().size() == 1);
    const corun::TaskError& t = e.errors().front();
    CHECK(t.message == "input 13: 13 is unlucky on rank " + std::to_string(t.rank));
    CHECK(t.exception_type == "std::domain_error");
    CHECK(t.slice == corun::Slice{13, 14});
  }
}

TEST_CASE("a map's RetryPolicy re-runs an input that threw on whichever rank runs it",
          "[cluster][map][retry]") {
  using namespace std::chrono_literals;
  std::vector<std::int64_t> inputs(40);
  for (std::size_t i = 0; i < inputs.size(); ++i) inputs[i] = static_cast<std::int64_t>(i);
  const int attempts = GENERATE(1, 2, 4);
  auto mapped = corun::async_map<&unlucky>(
      *g.pool, inputs,
      corun::MapOptions<>{
          .chunk_size = 4,
          .retry = corun::RetryPolicy{.attempts = attempts,
                                      .backoff = {.initial = 1ms},
                                      .retry_on = {.exception_types = {"std::domain_error"}}},
          .priority = -1},
      asio::use_future);
  try {
    corun::test::drive(*g.io, mapped);
    FAIL("no error");
  } catch (const corun::RunError& e) {
    REQUIRE(e.errors().size() == 1);
    CHECK(e.errors()[0].slice == corun::Slice{13, 14});
    CHECK(e.errors()[0].attempts == attempts);
  }
}

TEST_CASE("ClusterPool exists on rank 0 once, after serve", "[cluster]") {
  CHECK_THROWS_AS(corun::ClusterPool(*g.cluster, g.io->get_executor()), corun::Error);
}

int main(int argc, char** argv) {
  corun::enter_worker_if_spawned(argc, argv);
  // One task at a time per worker: in the cancellation test nothing waits behind the blocked task.
  // The last rank stands for a node with more cores: 3 workers, the others 2.
  auto env_int = [](const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr ? std::atoi(v) : -1;
  };
  const bool last_rank = env_int("OMPI_COMM_WORLD_RANK") == env_int("OMPI_COMM_WORLD_SIZE") - 1;
  // Bad failure-detection options are refused before MPI starts (on every rank alike), naming
  // the value and the fix.
  auto refused_with = [&](corun::ClusterOptions bad) {
    try {
      corun::Cluster refused{argc, argv, bad};
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no exception");
  };
  const std::string no_beat = refused_with({.heartbeat_interval = std::chrono::milliseconds(0)});
  const std::string short_timeout =
      refused_with({.heartbeat_interval = std::chrono::milliseconds(500),
                    .failure_timeout = std::chrono::milliseconds(999)});
  if (no_beat !=
          "corun::ClusterOptions::heartbeat_interval is 0 ms: give a positive interval "
          "(the default is 500 ms)" ||
      short_timeout !=
          "corun::ClusterOptions::failure_timeout is 999 ms, under twice "
          "heartbeat_interval (500 ms): a rank that lives would be declared lost; "
          "raise it")
    throw std::runtime_error("wrong refusals: " + no_beat + " | " + short_timeout);
  // Seven workers (sanitized, in CI) exec at once on two cores: their handshake gets 10 s, not
  // the default 1 s, which a loaded machine can miss without anything being wrong.
  corun::Cluster cluster{argc,
                         argv,
                         {.pool = {.workers = last_rank ? 3u : 2u,
                                   .pipeline_depth = 1,
                                   .max_pipeline_depth = 1,
                                   .handshake_timeout = std::chrono::seconds(10)}}};

  // Every rank, in the same order: the arrays of all test cases.
  auto fill = [](std::int64_t poison_value) {
    return [poison_value](std::size_t row, std::int64_t* v) {
      *v = row == 15 && poison_value != 0 ? poison_value : std::int64_t(row) + 1;
    };
  };
  std::map<std::string, Int64Array> arrays;
  auto make = [&](const std::string& name, std::size_t n, corun::BlockLayout layout,
                  std::int64_t poison = 0) {
    auto a = Int64Array::create(cluster, {n}, layout);
    a.fill_rows(fill(poison));
    arrays.emplace(name, std::move(a));
  };
  make("one", 1, {.partitions = 1});
  make("ten", 10, {.partitions = 3});
  make("big", 100'003, {.partitions = 7});
  make("chunked", 1000, {.chunk_size = 64});
  make("chunked_out", 1000, {.chunk_size = 64});
  make("poison", 60, {.partitions = 6}, -1);
  make("crash", 60, {.partitions = 6}, -2);
  make("hang", 60, {.partitions = 6}, -5);
  auto doubles = corun::DistributedArray<double>::create(cluster, {2000}, {.chunk_size = 300});
  doubles.fill_rows([](std::size_t row, double* v) { *v = double(row) + 1; });

  // Filled from rank 0: a wrong size first (every rank must throw, none may hang), then the data.
  auto scattered = Int64Array::create(cluster, {10'007}, {.partitions = 7});
  std::vector<std::int64_t> whole;
  if (cluster.is_root())
    for (std::int64_t v = 1; v <= 10'007; ++v) whole.push_back(v);
  std::string refusal;
  try {
    scattered.scatter(std::span<const std::int64_t>(whole).first(cluster.is_root() ? 10 : 0));
  } catch (const std::invalid_argument& e) {
    refusal = e.what();
  }
  if (refusal.empty()) throw std::runtime_error("a wrong-sized scatter did not throw");
  scattered.scatter(whole);
  arrays.emplace("scattered", std::move(scattered));
  // The same rows in messages of 1000 bytes, which cut rows (of 8 bytes) and blocks apart.
  auto pieces = Int64Array::create(cluster, {10'007}, {.partitions = 7});
  const corun::detail::DistributedBlocks layout{
      pieces.info(), {.partitions = 7}, cluster.rank(), cluster.size()};
  corun::detail::scatter_rows(cluster, layout, whole.data(), whole.size(), pieces.local().data(),
                              sizeof(std::int64_t), 1000);
  arrays.emplace("scattered_in_pieces", std::move(pieces));
  auto matrix = corun::DistributedArray<double>::create(cluster, {301, 3}, {.chunk_size = 50});
  std::vector<double> cells;
  if (cluster.is_root())
    for (int v = 1; v <= 903; ++v) cells.push_back(v);
  matrix.scatter(cells);

  if (!cluster.serve()) return 0;

  asio::io_context io;
  corun::ClusterPool pool{cluster, io.get_executor()};
  g.cluster = &cluster;
  g.io = &io;
  g.pool = &pool;
  for (auto& [name, array] : arrays) g.ints[name] = &array;
  g.doubles = &doubles;
  g.matrix = &matrix;
  g.scatter_refusal = refusal;
  const int failures = Catch::Session().run(argc, argv);
  auto stopped = pool.async_shutdown(asio::use_future);
  corun::test::drive(io, stopped);
  return failures != 0 ? 1 : 0;
}
