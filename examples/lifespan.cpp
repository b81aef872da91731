// Shows PoolOptions::worker_lifespan: each worker process is replaced after 3 tasks, as one
// would to contain a leak in user code. Replacement is graceful: no task is lost or failed.
#include <corun/corun.hpp>

#include <asio/io_context.hpp>
#include <asio/use_future.hpp>

#include <unistd.h>
#include <cstdlib>
#include <iostream>
#include <map>
#include <numeric>
#include <xtensor/xmath.hpp>

struct Partial {  // trivially copyable: a result sent as its bytes
  std::int64_t sum;
  pid_t pid;  // which worker process computed it
};

struct SumWithPid : corun::Worker<SumWithPid, std::int64_t> {
  using Worker::Worker;
  static Partial process(corun::SliceView<const std::int64_t> slice) {
    return {xt::sum(slice)(), ::getpid()};
  }
  void process_callback(Partial r) {
    total += r.sum;
    ++tasks_by_pid[r.pid];
  }
  std::int64_t total = 0;
  std::map<pid_t, int> tasks_by_pid;
};  // no CORUN_REGISTER_WORKER needed: using it in an orchestrator registers it

int main(int argc, char** argv) {
  corun::enter_worker_if_spawned(argc, argv);
  auto ints = corun::SharedArray<std::int64_t>::create({20});
  std::iota(ints.begin(), ints.end(), std::int64_t{1});
  SumWithPid sum{corun::DataIterator::over(ints, 1)};  // 20 tasks

  asio::io_context io;
  corun::ProcessPool pool{io.get_executor(), {.workers = 2, .worker_lifespan = 3}};
  corun::WorkerOrchestrator orch{pool, {&sum}};
  auto run = orch.async_run(asio::use_future);
  auto shutdown = pool.async_shutdown(asio::use_future);
  io.run();
  const corun::RunReport report = run.get();
  shutdown.get();

  bool ok = sum.total == 210 && report.failures.empty() && sum.tasks_by_pid.size() >= 7;
  for (const auto& [pid, tasks] : sum.tasks_by_pid) {
    std::cout << "worker " << pid << " ran " << tasks << " tasks\n";
    ok &= tasks <= 3;
  }
  std::cout << "total " << sum.total << " (expected 210) over " << sum.tasks_by_pid.size()
            << " worker processes\n";
  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
