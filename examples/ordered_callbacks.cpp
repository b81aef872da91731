// Shows OrchestratorOptions::ordered and process_callback(R, corun::Slice): the partial sums of
// 1..N reach the callback in slice order, whatever order the worker processes finish them in,
// so the callback can keep a running total that, after each slice, is the sum of 1..slice.end.
#include <corun/corun.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <cstdint>
#include <exception>
#include <iostream>
#include <numeric>
#include <string>
#include <xtensor/xmath.hpp>

struct RunningTotal : corun::Worker<RunningTotal, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(corun::SliceView<const std::int64_t> slice) {
    return xt::sum(slice)();
  }
  // In order: each slice starts where the previous one ended.
  void process_callback(std::int64_t partial, corun::Slice slice) {
    const auto end = static_cast<std::int64_t>(slice.end);
    total += partial;
    in_order = in_order && slice.start == next_row && total == end * (end + 1) / 2;
    next_row = slice.end;
    ++slices;
  }
  std::size_t next_row = 0, slices = 0;
  std::int64_t total = 0;
  bool in_order = true;
};
CORUN_REGISTER_WORKER(RunningTotal);

int main(int argc, char** argv) {
  corun::enter_worker_if_spawned(argc, argv);
  const std::size_t n = argc > 1 ? std::stoull(argv[1]) : 1'000'000;
  auto ints = corun::SharedArray<std::int64_t>::create({n});
  std::iota(ints.begin(), ints.end(), std::int64_t{1});
  RunningTotal running{corun::DataIterator::over(ints, 1000)};

  asio::io_context io;
  corun::ProcessPool pool{io.get_executor(), {.workers = 2}};
  corun::WorkerOrchestrator orch{pool, {&running}, {.ordered = true}};
  bool ok = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await orch.run();
        co_await pool.async_shutdown(asio::use_awaitable);
        std::cout << "slices=" << running.slices << " total=" << running.total
                  << " in_order=" << std::boolalpha << running.in_order << '\n';
        ok = running.in_order && running.next_row == n;
      },
      [&](std::exception_ptr e) {
        if (e) pool.terminate();  // else the idle pool keeps io.run() going
      });
  io.run();
  return ok ? 0 : 1;
}
