// Shows incremental work composed from single-slice tasks with pool.async_execute: a
// pairwise-sum pyramid. Level 0 sums chunks of the input; each next level sums pairs of the
// level below, stored in a new shared array, until one number is left. Every level's tasks
// run concurrently over the pool; a coroutine awaits each level before building the next.
#include <corun/corun.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <iostream>
#include <numeric>
#include <xtensor/xmath.hpp>

struct Sum : corun::Worker<Sum, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(corun::SliceView<const std::int64_t> s) { return xt::sum(s)(); }
};
CORUN_REGISTER_WORKER(Sum);

/// Runs every slice of `data` concurrently and stores slice i's sum in out[i].
asio::awaitable<void> sum_slices(corun::ProcessPool& pool, const corun::DataIterator& data,
                                 corun::SharedArray<std::int64_t>& out) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer all_done{executor, asio::steady_timer::time_point::max()};
  std::size_t pending = data.slice_count();
  std::exception_ptr failure;
  std::size_t i = 0;
  for (corun::Slice slice : data) {
    pool.async_execute<Sum>(data, slice, [&, i](std::exception_ptr e, std::int64_t sum) {
      if (e) failure = e;
      out[i] = sum;
      if (--pending == 0) all_done.cancel();
    });
    ++i;
  }
  if (pending != 0) {
    std::error_code ignored;
    co_await all_done.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  }
  if (failure) std::rethrow_exception(failure);
}

int main(int argc, char** argv) {
  corun::enter_worker_if_spawned(argc, argv);
  const std::size_t n = 10'000'000;
  auto input = corun::SharedArray<std::int64_t>::create({n});
  std::iota(input.begin(), input.end(), std::int64_t{1});

  asio::io_context io;
  corun::ProcessPool pool{io.get_executor(), {.workers = 2}};
  std::int64_t total = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto level = corun::DataIterator::over(input, 100'000);  // level 0: 100 chunks
        std::vector<corun::SharedArray<std::int64_t>> levels;
        while (true) {
          levels.push_back(corun::SharedArray<std::int64_t>::create({level.slice_count()}));
          co_await sum_slices(pool, level, levels.back());
          std::cout << "level " << levels.size() - 1 << ": " << levels.back().size()
                    << " partial sums\n";
          if (levels.back().size() == 1) break;
          level = corun::DataIterator::over(levels.back(), 2);  // pairs of the level below
        }
        total = levels.back()[0];
        std::cout << "sum=" << total << '\n';
        co_await pool.async_shutdown(asio::use_awaitable);
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  io.run();
  return total == static_cast<std::int64_t>(n) * static_cast<std::int64_t>(n + 1) / 2 ? 0 : 1;
}
