#include <corun/params.hpp>

#include <corun/cereal.hpp>

#include "support/drive.hpp"
#include "support/support.hpp"
#include "support/workers.hpp"

#include <cereal/types/string.hpp>
#include <cereal/types/vector.hpp>

#include <unistd.h>
#include <algorithm>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>
#include <xtensor/xmath.hpp>

using namespace corun;
using corun::test::drive;
using corun::test::iota_array;

namespace {

/// Trivially copyable: travels as its bytes.
struct Scale {
  std::int64_t factor = 1;
  std::int64_t offset = 0;
};

/// Multiplies each slice's sum by the run's factor, and adds its offset.
struct Scaled : Worker<Scaled, std::int64_t, Scale> {
  using Worker::Worker;
  static std::int64_t process(SliceView<const std::int64_t> slice, const Scale& p) {
    return xt::sum(slice)() * p.factor + p.offset;
  }
  void process_callback(std::int64_t v) { total += v; }
  std::int64_t total = 0;
};

/// Times a Label was decoded in this process.
int label_loads = 0;

/// A user type with std::string and std::vector members: travels through cereal.
struct Label {
  std::string prefix;
  std::vector<std::int64_t> weights;
  template <class Archive>
  void save(Archive& ar) const {
    ar(prefix, weights);
  }
  template <class Archive>
  void load(Archive& ar) {
    ar(prefix, weights);
    ++label_loads;
  }
};

/// "<prefix><slice sum * sum of weights>@<loads of Label in this process so far>".
struct Labelled : Worker<Labelled, std::int64_t, Label> {
  using Worker::Worker;
  static std::string process(SliceView<const std::int64_t> slice, const Label& p,
                             const TaskContext&) {
    std::int64_t w = 0;
    for (std::int64_t x : p.weights) w += x;
    return p.prefix + std::to_string(xt::sum(slice)() * w) + "@" + std::to_string(label_loads);
  }
  void process_callback(std::string s) { seen.push_back(std::move(s)); }
  std::vector<std::string> seen;
};

/// Params whose decoding fails in the worker when `refuse` is set (not trivially copyable, so
/// cereal decodes it).
struct Picky {
  bool refuse = false;
  std::string why;
  template <class Archive>
  void save(Archive& ar) const {
    ar(refuse, why);
  }
  template <class Archive>
  void load(Archive& ar) {
    ar(refuse, why);
    if (refuse) throw std::runtime_error(why);
  }
};

struct PickyWorker : Worker<PickyWorker, std::int64_t, Picky> {
  using Worker::Worker;
  static std::int64_t process(SliceView<const std::int64_t> slice) { return xt::sum(slice)(); }
};

/// init_state calls in this process.
int moody_inits = 0;

/// Its State cannot be made the first time a process tries.
struct Moody : Worker<Moody, std::int64_t, std::int64_t> {
  using Worker::Worker;
  struct State {
    std::int64_t base = 0;
  };
  static State init_state(const std::int64_t& base, const WorkerInfo&) {
    if (moody_inits++ == 0) throw std::runtime_error("no state the first time");
    return State{base};
  }
  static std::int64_t process(SliceView<const std::int64_t> slice, const TaskContext& ctx) {
    return xt::sum(slice)() + ctx.state<State>().base;
  }
};

/// A worker_exit that throws: printed on stderr, and the process still exits cleanly.
struct GrumpyExit : Worker<GrumpyExit, std::int64_t> {
  using Worker::Worker;
  static void worker_exit(const NoParams&, const WorkerInfo&) {
    throw std::runtime_error("GrumpyExit::worker_exit throws on purpose");
  }
  static std::int64_t process(SliceView<const std::int64_t> slice) { return xt::sum(slice)(); }
};

StartMethod method_named(const std::string& name) {
  return name == "spawn"  ? StartMethod::spawn
         : name == "fork" ? StartMethod::fork
                          : StartMethod::serial;
}

}  // namespace

CORUN_REGISTER_WORKER(Scaled);
CORUN_REGISTER_WORKER(Labelled);
CORUN_REGISTER_WORKER(PickyWorker);
CORUN_REGISTER_WORKER(Moody);
CORUN_REGISTER_WORKER(GrumpyExit);

TEST_CASE("each kind of params type round-trips through its encoding", "[params]") {
  CHECK(encode_params(NoParams{}).empty());
  CHECK(encode_params(Scale{3, 4}).size() == sizeof(Scale));
  const Scale s = decode_params<Scale>(encode_params(Scale{3, 4}));
  CHECK(s.factor == 3);
  CHECK(s.offset == 4);
  CHECK(decode_params<std::string>(encode_params(std::string("abc"))) == "abc");
  CHECK(decode_params<std::vector<double>>(encode_params(std::vector<double>{1.5, 2.5})) ==
        std::vector<double>{1.5, 2.5});
  const Label l = decode_params<Label>(encode_params(Label{"x", {1, 2, 3}}));
  CHECK(l.prefix == "x");
  CHECK(l.weights == std::vector<std::int64_t>{1, 2, 3});
  // Standard containers cereal knows (its headers for them included above) go through cereal.
  CHECK(decode_params<std::vector<std::string>>(encode_params(
            std::vector<std::string>{"a", "bc"})) == std::vector<std::string>{"a", "bc"});
  STATIC_REQUIRE(params_encodable<Label>);
  struct Opaque {
    std::string text;
  };
  STATIC_REQUIRE_FALSE(params_encodable<Opaque>);
}

TEST_CASE("malformed params bytes are a std::invalid_argument naming the type",
          "[params][failure]") {
  CHECK_THROWS_AS(decode_params<Scale>("abc"), std::invalid_argument);
  CHECK_THROWS_WITH(decode_params<NoParams>("x"), Catch::Contains("unexpected bytes"));
  const std::string bytes = encode_params(Label{"prefix", {1, 2}});
  for (std::size_t cut = 0; cut < bytes.size(); ++cut)
    CHECK_THROWS_WITH(decode_params<Label>(bytes.substr(0, cut)),
                      Catch::Contains("corun: params of type"));
  CHECK_THROWS_WITH(decode_params<Label>(bytes + "z"), Catch::Contains("trailing bytes"));
  std::string longer = bytes;
  longer[1] = '\x01';  // the string's length, now beyond the bytes there are
  CHECK_THROWS_AS(decode_params<Label>(longer), std::invalid_argument);
}

TEST_CASE("params set at run time reach every worker, whatever the start method",
          "[params][process]") {
  const std::string method = GENERATE("spawn", "fork", "serial");
  const std::size_t workers = GENERATE(1, 2);
  INFO(method << " with " << workers << " workers");
  // A value only this run knows: a spawned worker cannot have it unless it is sent.
  const auto factor = static_cast<std::int64_t>(std::random_device{}() % 1000 + 2);
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = workers, .start_method = method_named(method)}};
  auto ints = iota_array(1000);
  Scaled scaled{DataIterator::over(ints, 100), Scale{factor, 1}};
  WorkerOrchestrator orch{pool, {&scaled}};
  auto run = orch.async_run(asio::use_future);
  drive(io, run);
  CHECK(scaled.total == 500500 * factor + 10);
  auto shutdown = pool.async_shutdown(asio::use_future);
  drive(io, shutdown);
  CHECK(corun::test::child_pids().empty());
}

TEST_CASE("params of a user type travel through cereal and are decoded once per process",
          "[params][process]") {
  const std::string method = GENERATE("spawn", "fork", "serial");
  INFO(method);
  // A forked worker starts with this process's count; a spawned one from zero.
  const int before = method == "spawn" ? 0 : label_loads;
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2, .start_method = method_named(method)}};
  auto ints = iota_array(40);
  Labelled labelled{DataIterator::over(ints, 4), Label{"sum=", {2, 5}}};
  WorkerOrchestrator orch{pool, {&labelled}};
  auto run = orch.async_run(asio::use_future);
  const RunReport report = drive(io, run);
  CHECK(report.failures.empty());
  std::vector<std::string> expected;
  for (std::int64_t first = 1; first <= 40; first += 4)
    expected.push_back("sum=" + std::to_string((4 * first + 6) * 7) + "@" +
                       std::to_string(before + 1));
  std::sort(labelled.seen.begin(), labelled.seen.end());
  std::sort(expected.begin(), expected.end());
  CHECK(labelled.seen == expected);
  auto shutdown = pool.async_shutdown(asio::use_future);
  drive(io, shutdown);
  CHECK(corun::test::child_pids().empty());
}

TEST_CASE("params that fail to decode in the worker fail the task cleanly, not the pool",
          "[params][failure]") {
  const std::string method = GENERATE("spawn", "fork", "serial");
  INFO(method);
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1, .start_method = method_named(method)}};
  auto ints = iota_array(10);
  PickyWorker bad{DataIterator::over(ints, 10), Picky{true, "Picky refuses to be decoded"}};
  auto failed = pool.async_execute(bad, Slice{0, 10}, asio::use_future);
  try {
    drive(io, failed);
    FAIL("expected TaskFailed");
  } catch (const TaskFailed& e) {
    CHECK(e.error().kind == TaskErrorKind::exception);
    CHECK(e.error().exception_type == "std::runtime_error");
    CHECK(e.error().message == "Picky refuses to be decoded");
  }
  PickyWorker good{DataIterator::over(ints, 10), Picky{false, {}}};
  auto ok = pool.async_execute(good, Slice{0, 10}, asio::use_future);
  CHECK(drive(io, ok) == 55);
  auto shutdown = pool.async_shutdown(asio::use_future);
  drive(io, shutdown);
}

TEST_CASE("a State that cannot be made fails its task; the next task of the worker makes it",
          "[params][state][failure]") {
  // A spawned worker starts counting from zero; the serial pool counts in this process.
  const std::string method = GENERATE("spawn", "serial");
  INFO(method);
  moody_inits = 0;
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1, .start_method = method_named(method)}};
  auto ints = iota_array(10);
  Moody moody{DataIterator::over(ints, 5), 100};
  WorkerOrchestrator orch{pool, {&moody}, {.on_error = ErrorPolicy::collect}};
  auto run = orch.async_run(asio::use_future);
  const RunReport report = drive(io, run);
  REQUIRE(report.failures.size() == 1);
  CHECK(report.failures[0].exception_type == "std::runtime_error");
  CHECK(report.failures[0].message == "no state the first time");
  CHECK(report.tasks_done == 1);
  auto shutdown = pool.async_shutdown(asio::use_future);
  drive(io, shutdown);
}

TEST_CASE("a worker_exit that throws is reported on stderr; the worker still ends cleanly",
          "[params][hooks][failure]") {
  const std::string method = GENERATE("spawn", "fork", "serial");
  INFO(method);
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1, .start_method = method_named(method)}};
  auto ints = iota_array(10);
  GrumpyExit grumpy{DataIterator::over(ints, 10)};
  auto sum = pool.async_execute(grumpy, Slice{0, 10}, asio::use_future);
  CHECK(drive(io, sum) == 55);
  auto shutdown = pool.async_shutdown(asio::use_future);
  CHECK_NOTHROW(drive(io, shutdown));
  CHECK(pool.health().failed_starts == 0);
  CHECK(corun::test::child_pids().empty());
}
