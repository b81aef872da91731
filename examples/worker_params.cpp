// Shows worker parameters: a value chosen in main (here from the command line) reaches every
// spawned worker process, which re-executes this program and so could not see a global that
// main set. The params travel once to each worker, not with every task.
#include <corun/corun.hpp>

#include <asio/io_context.hpp>
#include <asio/use_future.hpp>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <string>
#include <xtensor/xmath.hpp>

struct Scale {  // trivially copyable: sent as its bytes (user types can use cereal)
  std::int64_t factor = 1;
};

struct ScaledSum : corun::Worker<ScaledSum, std::int64_t, Scale> {
  using Worker::Worker;
  static std::int64_t process(corun::SliceView<const std::int64_t> slice, const Scale& p) {
    return xt::sum(slice)() * p.factor;
  }
  void process_callback(std::int64_t partial) { total += partial; }
  std::int64_t total = 0;
};
CORUN_REGISTER_WORKER(ScaledSum);

int main(int argc, char** argv) {
  corun::enter_worker_if_spawned(argc, argv);
  const std::int64_t scale = argc > 1 ? std::stoll(argv[1]) : 3;

  auto ones = corun::SharedArray<std::int64_t>::create({1000});
  std::fill(ones.begin(), ones.end(), 1);
  ScaledSum sum{corun::DataIterator::partitioned(ones, 8), Scale{scale}};

  asio::io_context io;
  corun::ProcessPool pool{io.get_executor(),
                          {.workers = 2, .start_method = corun::StartMethod::spawn}};
  corun::WorkerOrchestrator orch{pool, {&sum}};
  auto run = orch.async_run(asio::use_future);
  auto shutdown = pool.async_shutdown(asio::use_future);
  io.run();
  run.get();
  shutdown.get();

  const std::int64_t expected = 1000 * scale;
  std::cout << "spawn: scale=" << scale << " expected " << expected << " got " << sum.total << '\n';
  return sum.total == expected ? EXIT_SUCCESS : EXIT_FAILURE;
}
