// map_bench: tiny items through async_map (automatic chunks) and async_map_reduce, against
// joblib's Parallel with automatic batching over the same items with the same number of
// worker processes, run in the same benchmark run (tests/bench/joblib_baseline.py, Debian's
// python3-joblib).
//
//   map_bench [--items N] [--workers W] [--joblib SCRIPT] [--quick]
//
// The last line is one JSON object: corun_map_items_per_s, corun_map_reduce_items_per_s,
// joblib_items_per_s and map_vs_joblib (the goal is >= 10).
#include <corun/map.hpp>
#include <corun/reduce.hpp>

#include "cli.hpp"

#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <future>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

namespace {

std::int64_t square(const std::int64_t& x) {
  return x * x;
}

template <class T>
T wait(asio::io_context& io, std::future<T>& future) {
  while (future.wait_for(std::chrono::seconds(0)) != std::future_status::ready) io.run_one();
  return future.get();
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// The number the baseline's JSON line gives for `key`, or -1 when the line is not a JSON object
/// or has no such number.
double json_number(const std::string& line, const std::string& key) {
  const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return -1;
  const auto at = j.find(key);
  return at != j.end() && at->is_number() ? at->get<double>() : -1;
}

}  // namespace

int main(int argc, char** argv) {
  corun::enter_worker_if_spawned(argc, argv);
  CLI::App app("tiny items through async_map, against joblib");
  std::size_t items = 2'000'000, workers = 2;
  std::string joblib;
  bool quick = false;
  app.add_option("--items", items, "inputs");
  app.add_option("--workers", workers, "worker processes");
  app.add_option("--joblib", joblib, "tests/bench/joblib_baseline.py, run with /usr/bin/python3");
  app.add_flag("--quick", quick, "small sizes: a smoke test, not numbers");
  corun_cli::parse_or_exit(app, argc, argv);
  if (quick) items = 100'000;

  std::vector<std::int64_t> inputs(items);
  std::iota(inputs.begin(), inputs.end(), 0);
  const auto n = static_cast<std::int64_t>(items);

  asio::io_context io;
  corun::PoolOptions options;
  options.workers = workers;
  corun::ProcessPool pool(io.get_executor(), options);
  auto ready = pool.async_wait_ready(asio::use_future);
  wait(io, ready);

  auto start = std::chrono::steady_clock::now();
  auto mapped = corun::async_map<&square>(pool, inputs, corun::MapOptions<>{}, asio::use_future);
  const std::vector<std::int64_t> squares = wait(io, mapped);
  const double map_s = seconds_since(start);
  if (squares.size() != items || squares.back() != (n - 1) * (n - 1)) {
    std::cerr << "map_bench: async_map returned wrong results\n";
    return 1;
  }

  start = std::chrono::steady_clock::now();
  auto reduced = corun::async_map_reduce<&square>(
      pool, inputs, std::int64_t{0}, corun::reduce::sum{}, corun::MapOptions<>{}, asio::use_future);
  const std::int64_t sum = wait(io, reduced);
  const double reduce_s = seconds_since(start);
  // (n-1) n (2n-1) / 6 without overflowing on the way: one of n-1, n is even, and one of the
  // three factors is a multiple of 3.
  std::int64_t a = n - 1, b = n, c = 2 * n - 1;
  (a % 2 == 0 ? a : b) /= 2;
  (a % 3 == 0 ? a : b % 3 == 0 ? b : c) /= 3;
  const std::int64_t expected = a * b * c;
  if (sum != expected) {
    std::cerr << "map_bench: async_map_reduce returned " << sum << '\n';
    return 1;
  }

  double joblib_rate = -1;
  if (!joblib.empty()) {
    const std::string command = "/usr/bin/python3 " + joblib + " --items " + std::to_string(items) +
                                " --workers " + std::to_string(workers);
    if (FILE* p = ::popen(command.c_str(), "r")) {
      char line[512] = {};
      std::string last;
      while (std::fgets(line, sizeof line, p)) last = line;
      const int status = ::pclose(p);
      if (status == 0)
        joblib_rate = json_number(last, "joblib_items_per_s");
      else
        std::cerr << "map_bench: the joblib baseline did not run (status " << status << ")\n";
    }
  }

  const double map_rate = static_cast<double>(items) / map_s;
  const double reduce_rate = static_cast<double>(items) / reduce_s;
  std::printf("items %zu, workers %zu\n", items, workers);
  std::printf("async_map        %12.0f items/s\n", map_rate);
  std::printf("async_map_reduce %12.0f items/s\n", reduce_rate);
  if (joblib_rate > 0) std::printf("joblib Parallel  %12.0f items/s\n", joblib_rate);
  // Rates to the item per second and the ratio to a hundredth, as the table shows them; -1 for
  // what did not run.
  auto rounded = [](double v, double scale) { return std::round(v * scale) / scale; };
  const nlohmann::ordered_json line{
      {"items", items},
      {"workers", workers},
      {"corun_map_items_per_s", rounded(map_rate, 1)},
      {"corun_map_reduce_items_per_s", rounded(reduce_rate, 1)},
      {"joblib_items_per_s", rounded(joblib_rate, 1)},
      {"map_vs_joblib", joblib_rate > 0 ? rounded(map_rate / joblib_rate, 100) : -1.0}};
  std::printf("%s\n", line.dump().c_str());
  return 0;
}
