#include <corun/map.hpp>
#include <corun/reduce.hpp>
#include <corun/shared_array.hpp>

#include "support/drive.hpp"
#include "support/support.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <catch2/catch.hpp>

#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <numeric>
#include <ranges>
#include <stdexcept>
#include <string>
#include <vector>

using namespace corun;
using corun::test::drive;

/// Large params whose decodes this process counts.
struct BigParams {
  std::vector<char> bytes;
  static inline std::int64_t decodes = 0;
};

template <>
struct corun::codec<BigParams> {
  static void encode(const BigParams& p, std::string& out) {
    out.append(p.bytes.data(), p.bytes.size());
  }
  static BigParams decode(std::string_view bytes) {
    ++BigParams::decodes;
    return BigParams{std::vector<char>(bytes.begin(), bytes.end())};
  }
};

namespace {

std::int64_t square(const std::int64_t& x) {
  return x * x;
}

std::string shout(const std::string& s) {
  std::string out = s;
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out + "!";
}

struct Scale {
  std::int64_t factor = 1;
  std::int64_t offset = 0;
};
std::int64_t scaled(const std::int64_t& x, const Scale& s) {
  return x * s.factor + s.offset;
}

std::int64_t fails_on_13(const std::int64_t& x) {
  if (x == 13) throw std::domain_error("13 is unlucky");
  return x;
}

std::int64_t fails_on_13_14_500(const std::int64_t& x) {
  if (x == 13 || x == 14 || x == 500) throw std::out_of_range(std::to_string(x) + " is out");
  return x + 1;
}

std::int64_t throws_42_at_7(const std::int64_t& x) {
  if (x == 7) throw 42;
  return x;
}

/// 1 byte for the first 2000 inputs, 16 KiB after: automatic chunks sized from the cheap
/// ones hold far more than max_result_bytes of the expensive ones.
std::vector<char> grows_at_2000(const std::int64_t& x) {
  return std::vector<char>(x < 2000 ? 1 : 16 << 10, static_cast<char>(x % 127));
}

/// How many times this process decoded BigParams, when it ran input x.
std::int64_t decodes_of_big_params(const std::int64_t&, const BigParams& p) {
  return p.bytes.empty() ? -1 : BigParams::decodes;
}

std::vector<std::int64_t> digits(const std::int64_t& x) {
  std::vector<std::int64_t> d;
  for (std::int64_t v = x; v > 0; v /= 10) d.insert(d.begin(), v % 10);
  return d;
}

double identity(const double& x) {
  return x;
}

std::int64_t takes_2ms(const std::int64_t& x) {
  ::usleep(2000);  // stands for 2 ms of work
  return x;
}

/// Counts inputs and chunks: each chunk's fold starts at {0, 1}.
struct CountChunks {
  using value = std::array<std::int64_t, 2>;
  value identity(const value&) const { return {0, 1}; }
  value operator()(value acc, std::int64_t) const { return {acc[0] + 1, acc[1]}; }
  value merge(value a, const value& b) const { return {a[0] + b[0], a[1] + b[1]}; }
};

/// Blocks until the parent kills it: cancellation must not wait for it.
std::int64_t hangs_on_5(const std::int64_t& x) {
  if (x == 5) ::pause();
  return x;
}

std::vector<std::int64_t> iota(std::int64_t n) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

PoolOptions options_for(StartMethod method, std::size_t workers = 2) {
  PoolOptions o;
  o.workers = workers;
  o.start_method = method;
  return o;
}

}  // namespace

TEST_CASE("async_map returns f of every input in input order, in every start method", "[map]") {
  for (StartMethod method : {StartMethod::spawn, StartMethod::fork, StartMethod::serial}) {
    asio::io_context io;
    ProcessPool pool(io.get_executor(), options_for(method));
    for (std::size_t chunk : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{5000}}) {
      INFO("start method " << int(method) << ", chunk_size " << chunk);
      const auto inputs = iota(10'007);
      auto future =
          async_map<&square>(pool, inputs, MapOptions<>{.chunk_size = chunk}, asio::use_future);
      const std::vector<std::int64_t> out = drive(io, future);
      REQUIRE(out.size() == inputs.size());
      for (std::size_t i = 0; i < out.size(); ++i) REQUIRE(out[i] == inputs[i] * inputs[i]);
    }
  }
}

TEST_CASE("async_map takes inputs of any codec type, owned or borrowed, and empty ranges",
          "[map]") {
  asio::io_context io;
  ProcessPool pool(io.get_executor(), options_for(StartMethod::fork));
  auto strings = async_map<&shout>(pool, std::vector<std::string>{"a", "", "corun", "zz"},
                                   MapOptions<>{}, asio::use_future);
  CHECK(drive(io, strings) == std::vector<std::string>{"A!", "!", "CORUN!", "ZZ!"});

  auto none =
      async_map<&square>(pool, std::vector<std::int64_t>{}, MapOptions<>{}, asio::use_future);
  CHECK(drive(io, none).empty());

  // A lazy range of unknown length: the results vector grows as chunks come back.
  auto lazy =
      std::views::iota(std::int64_t{0}) | std::views::take_while([](auto x) { return x < 1000; });
  auto from_lazy = async_map<&square>(pool, lazy, MapOptions<>{.chunk_size = 64}, asio::use_future);
  const auto out = drive(io, from_lazy);
  REQUIRE(out.size() == 1000);
  CHECK(out[999] == 999 * 999);

  // Inputs convert to the function's input type (int -> std::int64_t).
  auto converted =
      async_map<&square>(pool, std::vector<int>{1, 2, 3}, MapOptions<>{}, asio::use_future);
  CHECK(drive(io, converted) == std::vector<std::int64_t>{1, 4, 9});
}

TEST_CASE("a map function's params reach spawned workers", "[map][params]") {
  asio::io_context io;
  ProcessPool pool(io.get_executor(), options_for(StartMethod::spawn));
  auto future = async_map<&scaled>(
      pool, iota(1000), MapOptions<Scale>{.chunk_size = 10, .params = {3, 1}}, asio::use_future);
  const auto out = drive(io, future);
  REQUIRE(out.size() == 1000);
  CHECK(out[0] == 1);
  CHECK(out[999] == 2998);
}

TEST_CASE("async_imap delivers (index, value) in input order, or as results come", "[map]") {
  asio::io_context io;
  ProcessPool pool(io.get_executor(), options_for(StartMethod::fork));
  for (bool ordered : {true, false}) {
    INFO("ordered " << ordered);
    std::vector<std::size_t> order;
    std::vector<std::int64_t> values(5000, -1);
    auto future = async_imap<&square>(
        pool, iota(5000), MapOptions<>{.chunk_size = 3, .ordered = ordered, .max_tasks_active = 8},
        [&](std::size_t index, std::int64_t value) {
          order.push_back(index);
          values[index] = value;
        },
        asio::use_future);
    drive(io, future);
    REQUIRE(order.size() == 5000);
    for (std::size_t i = 0; i < values.size(); ++i) REQUIRE(values[i] == std::int64_t(i * i));
    if (ordered)
      for (std::size_t i = 0; i < order.size(); ++i) REQUIRE(order[i] == i);
  }
}

TEST_CASE("async_imap consumes an endless generator lazily and stops when told", "[map]") {
  asio::io_context io;
  ProcessPool pool(io.get_executor(), options_for(StartMethod::fork));
  std::size_t pulled = 0;
  auto endless = std::views::iota(std::int64_t{0}) | std::views::transform([&](std::int64_t x) {
                   ++pulled;
                   return x;
                 });
  std::size_t seen = 0;
  auto future = async_imap<&square>(
      pool, endless, MapOptions<>{.chunk_size = 10, .max_tasks_active = 4},
      [&](std::size_t index, std::int64_t value) {
        REQUIRE(value == std::int64_t(index * index));
        if (++seen == 1000) throw std::runtime_error("enough");
      },
      asio::use_future);
  CHECK_THROWS_WITH(drive(io, future), "enough");
  // At most the window (4 chunks of 10) was pulled beyond what was delivered.
  CHECK(pulled >= 1000);
  CHECK(pulled <= 1000 + 4 * 10);
}

TEST_CASE("a failing input is named, other results stay exact, and the pool goes on",
          "[map][failure]") {
  asio::io_context io;
  ProcessPool pool(io.get_executor(), options_for(StartMethod::fork));
  auto future =
      async_map<&fails_on_13>(pool, iota(100), MapOptions<>{.chunk_size = 10}, asio::use_future);
  try {
    drive(io, future);
    FAIL("no error");
  } catch (const RunError& e) {
    REQUIRE(e.errors().size() == 1);
    const TaskError& error = e.errors().front();
    CHECK(error.exception_type == "std::domain_error");
    CHECK(error.message == "input 13: 13 is unlucky");
    CHECK(error.slice.start == 13);
    CHECK(error.slice.end == 14);
  }

  std::vector<std::size_t> delivered;
  auto collected = async_imap<&fails_on_13>(
      pool, iota(100), MapOptions<>{.chunk_size = 10, .on_error = ErrorPolicy::collect},
      [&](std::size_t index, std::int64_t value) {
        REQUIRE(value == std::int64_t(index));
        delivered.push_back(index);
      },
      asio::use_future);
  CHECK_THROWS_AS(drive(io, collected), RunError);
  // Every input but 13 was delivered, in order.
  REQUIRE(delivered.size() == 99);
  CHECK(delivered[12] == 12);
  CHECK(delivered[13] == 14);

  auto again = async_map<&square>(pool, iota(10), MapOptions<>{}, asio::use_future);
  CHECK(drive(io, again)[9] == 81);
}

TEST_CASE("async_map_reduce reduces inside the workers with ready-made reductions",
          "[map][reduce]") {
  asio::io_context io;
  ProcessPool pool(io.get_executor(), options_for(StartMethod::fork));
  const auto inputs = iota(10'000);
  auto run = [&](auto init, auto op, std::size_t chunk = 0) {
    auto future = async_map_reduce<&square>(pool, inputs, init, op,
                                            MapOptions<>{.chunk_size = chunk}, asio::use_future);
    return drive(io, future);
  };
  // sum of squares 0..9999 = (n-1)n(2n-1)/6
  CHECK(run(std::int64_t{0}, reduce::sum{}) == 333'283'335'000);
  CHECK(run(std::int64_t{5}, reduce::sum{}, 3) == 333'283'335'005);
  CHECK(run(std::int64_t{0}, reduce::max{}) == 9999 * 9999);
  CHECK(run(std::int64_t{1000}, reduce::min{}) == 0);
  CHECK(run(false, reduce::any{}));
  CHECK_FALSE(run(true, reduce::all{}));  // 0 * 0 is false
  // A user's associative operation, as a captureless lambda.
  CHECK(run(
            std::int64_t{0}, [](std::int64_t a, std::int64_t b) { return a + b; }, 17) ==
        333'283'335'000);

  auto concat =
      async_map_reduce<&square>(pool, iota(100), std::vector<std::int64_t>{}, reduce::concat{},
                                MapOptions<>{.chunk_size = 7}, asio::use_future);
  const auto concatenated = drive(io, concat);
  REQUIRE(concatenated.size() == 100);
  for (std::size_t i = 0; i < 100; ++i) REQUIRE(concatenated[i] == std::int64_t(i * i));

  auto flat = async_map_reduce<&digits>(pool, std::vector<std::int64_t>{12, 345, 6},
                                        std::vector<std::int64_t>{}, reduce::flatten{},
                                        MapOptions<>{.chunk_size = 1}, asio::use_future);
  CHECK(drive(io, flat) == std::vector<std::int64_t>{1, 2, 3, 4, 5, 6});

  std::vector<double> samples;
  for (int i = 0; i < 1000; ++i) samples.push_back(i / 100.0);  // 0.00 .. 9.99
  samples.push_back(10.0);                                      // the last bin includes hi
  samples.push_back(-1.0);                                      // outside: not counted
  samples.push_back(std::nan(""));
  auto hist = async_map_reduce<&identity>(pool, samples, std::vector<std::uint64_t>{},
                                          reduce::histogram{0.0, 10.0, 5},
                                          MapOptions<>{.chunk_size = 100}, asio::use_future);
  CHECK(drive(io, hist) == std::vector<std::uint64_t>{200, 200, 200, 200, 201});

  CHECK_THROWS_WITH(reduce::histogram(1.0, 1.0, 4),
                    "corun::reduce::histogram: range [1, 1] with 4 bins: lo must be below hi "
                    "and bins at least 1");
}

TEST_CASE("automatic chunks batch tiny inputs and spread expensive ones", "[map][chunking]") {
  asio::io_context io;
  ProcessPool pool(io.get_executor(), options_for(StartMethod::fork));
  auto chunks_for = [&](auto future) {
    const std::array<std::int64_t, 2> counted = drive(io, future);
    return counted;
  };
  const auto tiny =
      chunks_for(async_map_reduce<&square>(pool, iota(200'000), std::array<std::int64_t, 2>{},
                                           CountChunks{}, MapOptions<>{}, asio::use_future));
  CHECK(tiny[0] == 200'000);
  // One task per input would be 200,000 tasks; a few probes, then chunks of ~2 ms of work.
  CHECK(tiny[1] < 1000);
  const auto slow =
      chunks_for(async_map_reduce<&takes_2ms>(pool, iota(20), std::array<std::int64_t, 2>{},
                                              CountChunks{}, MapOptions<>{}, asio::use_future));
  CHECK(slow[0] == 20);
  CHECK(slow[1] == 20);  // each input is worth a task of its own
}

TEST_CASE("cancelling a map kills its running chunks and leaves the pool usable", "[map][cancel]") {
  asio::io_context io;
  ProcessPool pool(io.get_executor(), options_for(StartMethod::fork));
  asio::cancellation_signal signal;
  std::size_t delivered = 0;
  auto future = async_imap<&hangs_on_5>(
      pool, iota(10), MapOptions<>{.chunk_size = 1, .on_cancel = CancelMode::kill},
      [&](std::size_t index, std::int64_t) {
        ++delivered;
        if (index == 4) signal.emit(asio::cancellation_type::partial);
      },
      asio::bind_cancellation_slot(signal.slot(), asio::use_future));
  try {
    drive(io, future);
    FAIL("not cancelled");
  } catch (const std::system_error& e) {
    CHECK(e.code() == asio::error::operation_aborted);
  }
  CHECK(delivered == 5);
  auto again = async_map<&square>(pool, iota(10), MapOptions<>{}, asio::use_future);
  CHECK(drive(io, again)[3] == 9);
}

TEST_CASE("MapOptions::progress_bar draws inputs done out of all, and ends at 100%",
          "[map][progress]") {
  asio::io_context io;
  ProcessPool pool(io.get_executor(), options_for(StartMethod::fork));
  // The bar goes to stderr: catch it in a pipe (a few short lines fit its buffer).
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const int saved = ::dup(STDERR_FILENO);
  ::dup2(fds[1], STDERR_FILENO);
  auto future = async_map<&square>(
      pool, iota(1000), MapOptions<>{.chunk_size = 100, .progress_bar = ProgressBar::always},
      asio::use_future);
  const auto out = drive(io, future);
  ::dup2(saved, STDERR_FILENO);
  ::close(saved);
  ::close(fds[1]);
  std::string drawn;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) drawn.append(buffer, n);
  ::close(fds[0]);
  CHECK(out.size() == 1000);
  const std::string last = drawn.substr(drawn.find_last_of('\r') + 1);
  INFO(drawn);
  CHECK(last.rfind("1000/1000 [##############################] 100% | ", 0) == 0);
  CHECK(last.find(" items/s | ") != std::string::npos);
  CHECK(last.back() == '\n');
}

TEST_CASE("a loop stopped under a map destroys its handler, and what it owns, unrun",
          "[map][lifecycle]") {
  const std::size_t workers = GENERATE(1, 2);
  auto job = std::make_shared<SharedArray<std::int64_t>>(SharedArray<std::int64_t>::create({64}));
  const std::string segment = job->name();
  const auto fate = corun::test::stop_loop_with_operation_in_flight(
      [&](asio::any_io_executor ex) {
        return std::make_unique<ProcessPool>(ex, PoolOptions{.workers = workers});
      },
      std::move(job),
      [&](ProcessPool& pool, auto handler) {
        async_map<&square>(pool, iota(100'000), {}, std::move(handler));
      });
  CHECK_FALSE(fate.called);
  CHECK(fate.destroyed);
  CHECK(corun::test::shm_entries(segment).empty());
  CHECK(corun::test::child_pids().empty());
}

TEST_CASE("collect keeps every good input's result and names every failed input",
          "[map][failure]") {
  const auto method = GENERATE(StartMethod::fork, StartMethod::serial);
  const std::size_t chunk = GENERATE(0, 249, 1000);
  asio::io_context io;
  ProcessPool pool(io.get_executor(), options_for(method));
  auto future = async_map<&fails_on_13_14_500>(
      pool, iota(1000), MapOptions<>{.chunk_size = chunk, .on_error = ErrorPolicy::collect},
      asio::use_future);
  std::vector<std::int64_t> results;
  try {
    drive(io, future);
    FAIL("no error");
  } catch (const RunError& e) {
    REQUIRE(e.errors().size() == 3);
    const std::size_t failed[] = {13, 14, 500};
    for (std::size_t i = 0; i < 3; ++i) {
      const TaskError& error = e.errors()[i];
      CHECK(error.kind == TaskErrorKind::exception);
      CHECK(error.exception_type == "std::out_of_range");
      CHECK(error.message ==
            "input " + std::to_string(failed[i]) + ": " + std::to_string(failed[i]) + " is out");
      CHECK(error.slice.start == failed[i]);
      CHECK(error.slice.end == failed[i] + 1);
    }
  }
  // The vector of a failed async_map is not returned; async_imap shows what came back.
  std::vector<std::pair<std::size_t, std::int64_t>> delivered;
  auto collected = async_imap<&fails_on_13_14_500>(
      pool, iota(1000), MapOptions<>{.chunk_size = chunk, .on_error = ErrorPolicy::collect},
      [&](std::size_t index, std::int64_t value) { delivered.emplace_back(index, value); },
      asio::use_future);
  CHECK_THROWS_AS(drive(io, collected), RunError);
  REQUIRE(delivered.size() == 997);
  std::size_t next = 0;
  for (const auto& [index, value] : delivered) {
    while (next == 13 || next == 14 || next == 500) ++next;
    REQUIRE(index == next);
    REQUIRE(value == std::int64_t(index) + 1);
    ++next;
  }
}

TEST_CASE("a throw of something other than a std::exception names its input", "[map][failure]") {
  asio::io_context io;
  ProcessPool pool(io.get_executor(), options_for(StartMethod::spawn));
  auto future =
      async_map<&throws_42_at_7>(pool, iota(100), MapOptions<>{.chunk_size = 24}, asio::use_future);
  try {
    drive(io, future);
    FAIL("no error");
  } catch (const RunError& e) {
    REQUIRE(e.errors().size() == 1);
    const TaskError& error = e.errors().front();
    CHECK(error.exception_type == "unknown");
    CHECK(error.message == "input 7: a non-std::exception was thrown");
    CHECK(error.slice.start == 7);
    CHECK(error.slice.end == 8);
  }
}

TEST_CASE("automatic chunks learn result sizes, and a chunk over max_result_bytes loses no input",
          "[map][chunking]") {
  const std::size_t workers = GENERATE(1, 2);
  asio::io_context io;
  PoolOptions options = options_for(StartMethod::fork, workers);
  options.max_result_bytes = std::size_t{1} << 20;  // 64 of the large results
  ProcessPool pool(io.get_executor(), options);
  auto future = async_map<&grows_at_2000>(pool, iota(6000), MapOptions<>{}, asio::use_future);
  const std::vector<std::vector<char>> results = drive(io, future);
  REQUIRE(results.size() == 6000);
  for (std::size_t x = 0; x < results.size(); ++x) {
    REQUIRE(results[x].size() == (x < 2000 ? 1u : 16u << 10));
    REQUIRE(results[x].front() == static_cast<char>(x % 127));
  }
}

TEST_CASE("an input whose own result is over max_result_bytes fails alone, named",
          "[map][failure]") {
  asio::io_context io;
  PoolOptions options = options_for(StartMethod::fork, 1);
  options.max_result_bytes = 4096;
  ProcessPool pool(io.get_executor(), options);
  std::vector<std::pair<std::size_t, std::size_t>> delivered;
  auto future = async_imap<&grows_at_2000>(
      pool, std::vector<std::int64_t>{1, 2, 3000, 4},
      MapOptions<>{.chunk_size = 4, .on_error = ErrorPolicy::collect},
      [&](std::size_t index, std::vector<char> r) { delivered.emplace_back(index, r.size()); },
      asio::use_future);
  try {
    drive(io, future);
    FAIL("no error");
  } catch (const RunError& e) {
    REQUIRE(e.errors().size() == 1);
    const TaskError& error = e.errors().front();
    CHECK(error.slice.start == 2);
    CHECK(error.slice.end == 3);
    CHECK(error.exception_type == "std::length_error");
    CHECK(error.message ==
          "input 2: result of 16388 bytes exceeds PoolOptions::max_result_bytes (4096)");
  }
  using P = std::pair<std::size_t, std::size_t>;
  CHECK(delivered == std::vector<P>{{0, 1}, {1, 1}, {3, 1}});
}

TEST_CASE("a map's params are decoded once per process, however large, and chunks stay large",
          "[map][params][chunking]") {
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork);
  asio::io_context io;
  ProcessPool pool(io.get_executor(), options_for(method));
  MapOptions<BigParams> options;
  options.params.bytes.assign(std::size_t{60} << 20, 'p');
  auto future = async_map<&decodes_of_big_params>(pool, iota(2000), options, asio::use_future);
  const std::vector<std::int64_t> decodes = drive(io, future);
  REQUIRE(decodes.size() == 2000);
  // A forked worker inherits the parent's count (0: it never decodes in the parent).
  for (std::int64_t d : decodes) REQUIRE(d == 1);
  auto counted = async_map_reduce<&decodes_of_big_params>(
      pool, iota(2000), std::array<std::int64_t, 2>{}, CountChunks{}, options, asio::use_future);
  const std::array<std::int64_t, 2> chunks = drive(io, counted);
  CHECK(chunks[0] == 2000);
  // A fixed cost per chunk counted as cost per input would make 2000 chunks of one.
  CHECK(chunks[1] < 100);
}

namespace {
/// This process's resident set now, and its peak since reset_peak_rss(), in bytes.
std::size_t rss_field(const char* field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind(field, 0) == 0) return std::stoul(line.substr(std::strlen(field))) << 10;
  return 0;
}
void reset_peak_rss() {
  std::ofstream("/proc/self/clear_refs") << "5";
}
}  // namespace

TEST_CASE("a lazy endless map holds at most max_bytes_in_flight of inputs and results",
          "[map][memory]") {
  const bool ordered = GENERATE(false, true);
  asio::io_context io;
  ProcessPool pool(io.get_executor(), options_for(StartMethod::fork));
  const std::size_t before = rss_field("VmRSS:");
  reset_peak_rss();
  constexpr std::size_t kInputs = 12'000'000;
  std::size_t seen = 0;
  std::int64_t sum = 0;
  auto future = async_imap<&square>(
      pool, std::views::iota(std::int64_t{0}), MapOptions<>{.ordered = ordered},
      [&](std::size_t, std::int64_t value) {
        sum += value % 7;
        if (++seen == kInputs) throw std::runtime_error("enough");
      },
      asio::use_future);
  CHECK_THROWS_WITH(drive(io, future), "enough");
  const std::size_t peak = rss_field("VmHWM:");
  CHECK(seen == kInputs);
  // 64 MiB of window, with room for the allocator's slack (and AddressSanitizer's quarantine
  // of freed memory, 256 MiB); without the byte bound the window held over 1 GiB.
  std::size_t allowed = std::size_t{160} << 20;
#if defined(__SANITIZE_ADDRESS__)
  allowed += std::size_t{256} << 20;
#endif
  INFO("peak RSS grew by " << (peak - std::min(peak, before)) / (1 << 20) << " MiB");
  CHECK(peak - std::min(peak, before) < allowed);
}
