// Computes reduce::moments and reduce::mean of deterministic data sets with async_map_reduce on
// a real pool, for moments_numpy.py to compare with numpy.mean and numpy.var on the same values.
// Usage: moments_data DIR. Writes each data set to DIR/<name>.f8 (little-endian doubles, as
// numpy.fromfile reads them) and prints one line per set:
// `<name> <count> <mean of moments> <variance ddof 0> <variance ddof 1> <mean of mean>`.
#include <corun/map.hpp>
#include <corun/reduce.hpp>

#include <asio/io_context.hpp>
#include <asio/use_future.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <future>
#include <iostream>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace {
double same(const double& x) {
  return x;
}

template <class T>
T wait(asio::io_context& io, std::future<T>& future) {
  while (future.wait_for(std::chrono::seconds(0)) != std::future_status::ready) io.run_one();
  return future.get();
}

std::vector<std::pair<std::string, std::vector<double>>> data_sets() {
  std::mt19937_64 rng{20261204};  // fixed: the same values every run
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<std::pair<std::string, std::vector<double>>> sets;
  auto make = [&](const std::string& name, std::size_t n, auto value) {
    std::vector<double> v(n);
    for (auto& x : v) x = value();
    sets.emplace_back(name, std::move(v));
  };
  make("uniform_1m", 1'000'000, [&] { return 1.0 + unit(rng); });
  // Far from zero: the textbook sum of squares loses every digit of the variance here.
  make("offset_1e9", 200'000, [&] { return 1e9 + unit(rng); });
  make("negative", 100'000, [&] { return -1e6 * unit(rng) - 1.0; });
  make("mixed_sign", 50'000, [&] { return 100.0 * (unit(rng) - 0.25); });
  make("tiny", 10'000, [&] { return 1e-8 * (1.0 + unit(rng)); });
  make("integers", 65'536, [&] { return static_cast<double>(rng() % 1000); });
  make("two", 2, [&] { return 3.0 + unit(rng); });
  make("one", 1, [] { return -2.5; });
  return sets;
}
}  // namespace

int main(int argc, char** argv) {
  corun::enter_worker_if_spawned(argc, argv);
  if (argc != 2) {
    std::cerr << "usage: moments_data DIR\n";
    return 2;
  }
  const std::string dir = argv[1];
  asio::io_context io;
  corun::PoolOptions options;
  options.workers = 2;
  options.start_method = corun::StartMethod::fork;
  corun::ProcessPool pool(io.get_executor(), options);
  for (const auto& [name, values] : data_sets()) {
    std::ofstream(dir + "/" + name + ".f8", std::ios::binary)
        .write(reinterpret_cast<const char*>(values.data()),
               static_cast<std::streamsize>(values.size() * sizeof(double)));
    auto moments = corun::async_map_reduce<&same>(pool, values, corun::reduce::Moments{},
                                                  corun::reduce::moments{}, corun::MapOptions<>{},
                                                  asio::use_future);
    const corun::reduce::Moments m = wait(io, moments);
    auto mean =
        corun::async_map_reduce<&same>(pool, values, corun::reduce::Mean{}, corun::reduce::mean{},
                                       corun::MapOptions<>{}, asio::use_future);
    const corun::reduce::Mean a = wait(io, mean);
    std::printf("%s %llu %.17g %.17g %.17g %.17g\n", name.c_str(),
                static_cast<unsigned long long>(m.count), m.mean(), m.variance(0), m.variance(1),
                a.mean);
  }
  auto done = pool.async_shutdown(asio::use_future);
  wait(io, done);
  return 0;
}
