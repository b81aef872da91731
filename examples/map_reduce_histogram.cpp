// async_map_reduce with a histogram: the digit sums of 1..N, binned inside the workers, so
// only one vector of counts per chunk crosses the process boundary. Checks the counts
// against a serial loop; exits 1 on a mismatch.
#include <corun/corun.hpp>
#include <corun/map.hpp>
#include <corun/reduce.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <cstdint>
#include <iostream>
#include <vector>

std::int64_t digit_sum(const std::int64_t& x) {
  std::int64_t s = 0;
  for (std::int64_t v = x; v > 0; v /= 10) s += v % 10;
  return s;
}

int main(int argc, char** argv) {
  corun::enter_worker_if_spawned(argc, argv);
  const std::int64_t n = 1'000'000;  // digit sums of 1..999,999 lie in [1, 54], 1,000,000's is 1
  const corun::reduce::histogram bins{0.0, 60.0, 6};  // [0,10) [10,20) ... [50,60]
  std::vector<std::int64_t> numbers(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < numbers.size(); ++i) numbers[i] = static_cast<std::int64_t>(i) + 1;
  asio::io_context io;
  corun::ProcessPool pool{io.get_executor(), {.workers = 2}};
  std::vector<std::uint64_t> counts;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        counts = co_await corun::async_map_reduce<&digit_sum>(
            pool, numbers, std::vector<std::uint64_t>{}, bins, corun::MapOptions<>{},
            asio::use_awaitable);
        co_await pool.async_shutdown(asio::use_awaitable);
      },
      [&](std::exception_ptr e) {
        if (e) pool.terminate();
      });
  io.run();

  std::vector<std::uint64_t> expected(6, 0);
  for (std::int64_t x = 1; x <= n; ++x) ++expected[static_cast<std::size_t>(digit_sum(x) / 10)];
  for (std::size_t b = 0; b < counts.size(); ++b)
    std::cout << '[' << b * 10 << ", " << b * 10 + 10 << ") " << counts[b] << '\n';
  const bool ok = counts == expected;
  std::cout << (ok ? "ok\n" : "MISMATCH\n");
  return ok ? 0 : 1;
}
