// A program whose only corun include is the umbrella header <corun/corun.hpp>: the maps
// (async_map, async_map_reduce) and the ready-made reductions must come with it. Completion
// callbacks, so that no Asio header beyond the io_context is needed either. Exits 0 when every
// result is exact, 1 (saying which) otherwise.
#include <corun/corun.hpp>

#include <asio/io_context.hpp>

#include <cstdint>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

static std::int64_t square(const std::int64_t& x) {
  return x * x;
}

int main(int argc, char** argv) {
  corun::enter_worker_if_spawned(argc, argv);
  std::vector<std::int64_t> inputs(1000);
  for (std::size_t i = 0; i < inputs.size(); ++i) inputs[i] = static_cast<std::int64_t>(i);

  asio::io_context io;
  corun::ProcessPool pool{io.get_executor(), {.workers = 2}};
  std::vector<std::int64_t> squares;
  std::int64_t sum = -1;
  std::exception_ptr failure;
  corun::async_map<&square>(
      pool, inputs, {}, [&](std::exception_ptr e, std::vector<std::int64_t> r) {
        if (e) failure = e;
        squares = std::move(r);
        corun::async_map_reduce<&square>(pool, inputs, std::int64_t{0}, corun::reduce::sum{}, {},
                                         [&](std::exception_ptr e2, std::int64_t total) {
                                           if (e2) failure = e2;
                                           sum = total;
                                           pool.async_shutdown([](std::exception_ptr) {});
                                         });
      });
  io.run();
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      std::cerr << "umbrella_only: " << e.what() << '\n';
      return 1;
    }
  }
  bool ok = squares.size() == inputs.size() && sum == 332'833'500;  // sum of i^2, i < 1000
  for (std::size_t i = 0; ok && i < squares.size(); ++i) ok = squares[i] == inputs[i] * inputs[i];
  std::cout << "squares=" << squares.size() << " sum=" << sum << '\n';
  return ok ? 0 : 1;
}
