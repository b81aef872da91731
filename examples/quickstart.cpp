// The program of the README: sum the int64 array 1..N in worker processes, each summing its
// slice of the shared array in place, the partial sums arriving in process_callback. A failure
// is reported on stderr with exit status 1; Ctrl-C (SIGINT) or SIGTERM cancels the run through
// corun::GracefulStop, shuts the pool down gracefully and exits 130.
#include <corun/corun.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <cstdint>
#include <exception>
#include <iostream>
#include <numeric>
#include <string>
#include <xtensor/xmath.hpp>

struct AddInts : corun::Worker<AddInts, std::int64_t> {
  using Worker::Worker;
  // Runs in a worker process, on its slice of the shared array: no copy.
  static std::int64_t process(corun::SliceView<const std::int64_t> slice) {
    return xt::sum(slice)();
  }
  // Runs on the event loop, once per finished slice, never concurrently.
  void process_callback(std::int64_t partial) { total += partial; }
  std::int64_t total = 0;
};
CORUN_REGISTER_WORKER(AddInts);

int main(int argc, char** argv) try {
  corun::enter_worker_if_spawned(argc, argv);  // a worker process never returns from here
  const std::size_t n = argc > 1 ? std::stoull(argv[1]) : 100'000'000;

  auto ints = corun::SharedArray<std::int64_t>::create({n});
  std::iota(ints.begin(), ints.end(), 1);
  AddInts add{corun::DataIterator::partitioned(ints, 8)};

  asio::io_context io;
  corun::ProcessPool pool{io.get_executor(), {.workers = 2}};
  corun::GracefulStop stop{pool};  // SIGINT/SIGTERM: cancel the run, shut the pool down
  corun::WorkerOrchestrator orch{pool, {&add}};
  std::exception_ptr failure;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        const corun::RunReport report = co_await orch.async_run(stop.bind(asio::use_awaitable));
        std::cout << "sum=" << add.total << " tasks=" << report.tasks_done
                  << " seconds=" << report.wall_seconds() << '\n';
        co_await pool.async_shutdown(asio::use_awaitable);
      },
      [&](std::exception_ptr e) {
        stop.cancel();  // no more signals to wait for: lets io.run() return
        if (e && !stop.requested()) pool.terminate();  // else the idle pool keeps io.run() going
        failure = e;
      });
  io.run();
  if (stop.requested()) {
    std::cerr << "quickstart: cancelled\n";
    return 130;
  }
  if (failure) std::rethrow_exception(failure);
  return add.total == static_cast<std::int64_t>(n) * static_cast<std::int64_t>(n + 1) / 2 ? 0 : 1;
} catch (const std::exception& e) {
  std::cerr << "quickstart: " << e.what() << '\n';
  return 1;
}
