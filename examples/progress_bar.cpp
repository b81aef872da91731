// Shows OrchestratorOptions::progress_bar: while a run's slices finish, a bar on stderr shows
// done/total, percent, slices/s, elapsed time and ETA, when stderr is a terminal
// (CORUN_PROGRESS_BAR=always draws it into a file or pipe too, =never hides it). Each slice
// counts the primes among its numbers by trial division; the parent checks with a sieve.
#include <corun/corun.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <exception>
#include <iostream>
#include <numeric>
#include <vector>

struct CountPrimes : corun::Worker<CountPrimes, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(corun::SliceView<const std::int64_t> slice) {
    std::int64_t count = 0;
    for (std::int64_t v : slice) {
      bool prime = v >= 2;
      for (std::int64_t d = 2; prime && d * d <= v; ++d) prime = v % d != 0;
      count += prime;
    }
    return count;
  }
  void process_callback(std::int64_t count) { primes += count; }
  std::int64_t primes = 0;
};
CORUN_REGISTER_WORKER(CountPrimes);

int main(int argc, char** argv) {
  corun::enter_worker_if_spawned(argc, argv);
  const std::size_t n = argc > 1 ? std::stoull(argv[1]) : 3'000'000;
  auto numbers = corun::SharedArray<std::int64_t>::create({n});
  std::iota(numbers.begin(), numbers.end(), std::int64_t{0});
  CountPrimes count{corun::DataIterator::partitioned(numbers, 200)};

  asio::io_context io;
  corun::ProcessPool pool{io.get_executor(), {.workers = 2}};
  corun::WorkerOrchestrator orch{pool, {&count}, {.progress_bar = corun::ProgressBar::on}};
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await orch.run();
        co_await pool.async_shutdown(asio::use_awaitable);
      },
      [&](std::exception_ptr e) {
        if (e) pool.terminate();  // else the idle pool keeps io.run() going
      });
  io.run();
  std::vector<bool> composite(n, false);  // the parent's own count: a sieve
  std::int64_t sieved = 0;
  for (std::size_t i = 2; i < n; ++i) {
    if (composite[i]) continue;
    ++sieved;
    for (std::size_t j = i * i; j < n; j += i) composite[j] = true;
  }
  std::cout << "primes below " << n << ": " << count.primes << '\n';
  return count.primes == sieved ? 0 : 1;
}
