// Built by tests/interop/install_consumer.sh with g++ and clang++ against the installed corun, as
// an existing Asio application would include it: Asio's headers first, corun's after, and Asio's
// deprecated spelling (asio::io_service), which corun's exported flags must leave usable. Sums
// the squares of 1..100 with async_map_reduce over two worker processes.
#include <asio/co_spawn.hpp>
#include <asio/io_service.hpp>
#include <asio/use_awaitable.hpp>

#include <corun/corun.hpp>

#include <cstdint>
#include <exception>
#include <iostream>
#include <numeric>
#include <vector>

std::int64_t square(const std::int64_t& x) {
  return x * x;
}

int main(int argc, char** argv) try {
  corun::enter_worker_if_spawned(argc, argv);
  asio::io_service io;
  corun::ProcessPool pool{io.get_executor(), {.workers = 2}};
  std::vector<std::int64_t> inputs(100);
  std::iota(inputs.begin(), inputs.end(), std::int64_t{1});
  std::int64_t total = 0;
  std::exception_ptr failure;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        const corun::MapOptions<> options;
        total = co_await corun::async_map_reduce<&square>(
            pool, inputs, std::int64_t{0}, corun::reduce::sum{}, options, asio::use_awaitable);
        co_await pool.async_shutdown(asio::use_awaitable);
      },
      [&](std::exception_ptr e) {
        if (e) pool.terminate();
        failure = e;
      });
  io.run();
  if (failure) std::rethrow_exception(failure);
  std::cout << "sum_of_squares=" << total << '\n';
} catch (const std::exception& e) {
  std::cerr << "asio_first: " << e.what() << '\n';
  return 1;
}
