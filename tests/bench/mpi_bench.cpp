// The cluster benchmark, run under mpirun by tests/bench/mpi_bench.py (with R ranks):
//  - compute: the same compute-bound pass with 1 rank x R workers (a plain ProcessPool on rank 0)
//    and with R ranks x 1 worker (ClusterPool over a DistributedArray); efficiency = local time /
//    cluster time, best of --repeat;
//  - throughput: --tasks one-row tasks through the ClusterPool, tasks per second;
//  - map: --items tiny inputs through async_map over the ClusterPool (automatic chunks spread
//    over the ranks), items per second.
// With --lose-last-rank (under mpirun --enable-recovery), instead: a compute-bound async_map
// with every rank, the same map during which rank 0 SIGKILLs the last rank, and the same map
// again on the survivors: items per second before and after, the time from the kill to the
// loss being declared (against ClusterOptions::failure_timeout) and to the first re-sent
// chunk's result.
// Prints one JSON line on rank 0.
#include <corun/cluster.hpp>
#include <corun/corun.hpp>
#include <corun/map.hpp>

#include "cli.hpp"

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_future.hpp>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <unistd.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <future>
#include <iostream>
#include <limits>
#include <map>
#include <stdexcept>
#include <vector>

namespace {
constexpr int kSqrtsPerElement = 200;
}

/// Compute-bound: a chain of dependent square roots per element.
struct Burn : corun::Worker<Burn, double> {
  using Worker::Worker;
  static double process(corun::SliceView<const double> slice) {
    double acc = 0;
    for (double v : slice) {
      double x = v;
      for (int k = 0; k < kSqrtsPerElement; ++k) x = std::sqrt(x + 1.0);
      acc += x;
    }
    return acc;
  }
  void process_callback(double partial) { total += partial; }
  double total = 0;
};
CORUN_REGISTER_WORKER(Burn);

/// As small as a task gets: returns its one element.
struct Tiny : corun::Worker<Tiny, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(corun::SliceView<const std::int64_t> slice) { return slice(0); }
  void process_callback(std::int64_t v) { total += v; }
  std::int64_t total = 0;
};
CORUN_REGISTER_WORKER(Tiny);

/// The pid of the rank that ran the slice (a worker's parent).
struct RankPid : corun::Worker<RankPid, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(corun::SliceView<const std::int64_t>) { return ::getppid(); }
  void process_callback(std::int64_t pid, corun::Slice slice) { pids[slice.start] = pid; }
  std::map<std::size_t, std::int64_t> pids;  // by row, which is the rank here
};
CORUN_REGISTER_WORKER(RankPid);

namespace {

std::int64_t plus_one(const std::int64_t& x) {
  return x + 1;
}

/// About 20 us of dependent square roots per input.
double burn(const double& x) {
  double v = x;
  for (int k = 0; k < 2000; ++k) v = std::sqrt(v + 1.0);
  return v;
}

template <class T>
T wait(asio::io_context& io, std::future<T>& f) {
  while (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    if (io.stopped()) io.restart();
    io.run_one();
  }
  return f.get();
}

template <class Pool, class W>
double timed_run(asio::io_context& io, Pool& pool, W& worker) {
  corun::WorkerOrchestrator orch{pool, {&worker}, {.record_tasks = false}};
  auto done = orch.async_run(asio::use_future);
  return wait(io, done).wall_seconds();
}

/// The --lose-last-rank pass; prints its JSON line. `where` has one row per rank, row r on
/// rank r.
void lose_last_rank(corun::Cluster& cluster, asio::io_context& io, corun::ClusterPool& pool,
                    corun::DistributedArray<std::int64_t>& where, std::size_t items) {
  using Clock = std::chrono::steady_clock;
  const auto last = static_cast<std::size_t>(cluster.size() - 1);
  RankPid who{where.iterator()};
  timed_run(io, pool, who);
  if (who.pids.size() != last + 1) throw std::runtime_error("no pid of every rank");
  std::vector<double> inputs(items);
  for (std::size_t i = 0; i < items; ++i) inputs[i] = static_cast<double>(i % 1000);
  const double expected = [&] {
    double sum = 0;
    for (double x : inputs) sum += burn(x);
    return sum;
  }();
  // `during` runs on the loop while the map is in flight.
  auto map_seconds = [&](const std::function<void()>& during) {
    const auto start = Clock::now();
    auto mapped = corun::async_map<&burn>(pool, inputs, {}, asio::use_future);
    if (during) during();
    const auto out = wait(io, mapped);
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    double sum = 0;
    for (double x : out) sum += x;
    if (sum != expected) throw std::runtime_error("wrong async_map output");
    return s;
  };
  map_seconds({});  // warm
  const double before = map_seconds({});
  Clock::time_point killed;
  const double during = map_seconds([&] {
    // A quarter of the way through, by the time the map took before.
    asio::steady_timer timer{
        io, std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(before / 4))};
    bool fired = false;
    timer.async_wait([&](std::error_code) { fired = true; });
    while (!fired) io.run_one();
    // The pid was the rank's own (its workers' parent): one of our ranks, on this node.
    ::kill(static_cast<pid_t>(who.pids[last]), SIGKILL);
    killed = Clock::now();
  });
  const double after = map_seconds({});
  const corun::ClusterHealth health = pool.health();
  if (health.lost.size() != 1 || health.lost[0].rank != static_cast<int>(last))
    throw std::runtime_error("the last rank was not the one lost");
  const corun::RankLoss& loss = health.lost[0];
  auto since_kill = [&](Clock::time_point t) {
    return t == Clock::time_point{} ? -1.0 : std::chrono::duration<double>(t - killed).count();
  };
  const nlohmann::json out = {
      {"lose_ranks", cluster.size()},
      {"lose_items", items},
      {"lose_before_items_per_s", static_cast<double>(items) / before},
      {"lose_during_seconds", during},
      {"lose_after_items_per_s", static_cast<double>(items) / after},
      {"lose_after_vs_before", before / after},
      {"failure_timeout_s",
       std::chrono::duration<double>(cluster.options().failure_timeout).count()},
      {"kill_to_declared_s", since_kill(loss.declared)},
      {"kill_to_first_resent_result_s", since_kill(loss.first_resent_done)},
      {"chunks_resent", loss.chunks_resent},
      {"recovery_enabled", health.recovery_enabled},
  };
  std::cout << out.dump() << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  corun::enter_worker_if_spawned(argc, argv);
  std::size_t rows = 400'000, partitions = 32, tasks = 20'000, items = 2'000'000, repeat = 3;
  CLI::App app{"corun cluster benchmark (run it under mpirun, see tests/bench/mpi_bench.py)"};
  app.add_option("--rows", rows, "elements of the compute-bound pass")->check(CLI::PositiveNumber);
  app.add_option("--partitions", partitions, "slices of the compute-bound pass")
      ->check(CLI::PositiveNumber);
  app.add_option("--tasks", tasks, "tiny tasks of the throughput pass")->check(CLI::PositiveNumber);
  app.add_option("--items", items, "inputs of the async_map pass")->check(CLI::PositiveNumber);
  app.add_option("--repeat", repeat, "compute passes of each kind (the best counts)")
      ->check(CLI::PositiveNumber);
  bool lose = false;
  std::size_t lose_items = 400'000;
  app.add_flag("--lose-last-rank", lose,
               "instead: kill the last rank during a map (under mpirun --enable-recovery)");
  app.add_option("--lose-items", lose_items, "inputs of each map of --lose-last-rank")
      ->check(CLI::PositiveNumber);
  corun_cli::parse_or_exit(app, argc, argv);

  corun::Cluster cluster{argc, argv, {.pool = {.workers = 1}}};
  const auto ranks = static_cast<std::size_t>(cluster.size());
  auto value = [](std::size_t row) { return static_cast<double>(row % 1000) * 1e-3; };
  auto burn_data =
      corun::DistributedArray<double>::create(cluster, {rows}, {.partitions = partitions});
  burn_data.fill_rows([&](std::size_t row, double* v) { *v = value(row); });
  auto tiny_data =
      corun::DistributedArray<std::int64_t>::create(cluster, {tasks}, {.chunk_size = 1});
  tiny_data.fill_rows([](std::size_t row, std::int64_t* v) { *v = std::int64_t(row) + 1; });
  auto where = corun::DistributedArray<std::int64_t>::create(cluster, {ranks}, {.chunk_size = 1});
  if (!cluster.serve()) return 0;

  asio::io_context io;
  if (lose) {
    corun::ClusterPool pool{cluster, io.get_executor()};
    lose_last_rank(cluster, io, pool, where, lose_items);
    auto stop = pool.async_shutdown(asio::use_future);
    wait(io, stop);
    return 0;
  }
  auto plain = corun::SharedArray<double>::create({rows});
  for (std::size_t i = 0; i < rows; ++i) plain[i] = value(i);
  corun::ProcessPool local{io.get_executor(), {.workers = ranks}};
  corun::ClusterPool cluster_pool{cluster, io.get_executor()};
  auto ready_local = local.async_wait_ready(asio::use_future);
  auto ready_cluster = cluster_pool.async_wait_ready(asio::use_future);
  while (ready_local.wait_for(std::chrono::seconds(0)) != std::future_status::ready ||
         ready_cluster.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    if (io.stopped()) io.restart();
    io.run_one();
  }
  ready_local.get();
  ready_cluster.get();

  double local_best = std::numeric_limits<double>::infinity(), cluster_best = local_best;
  double local_total = 0, cluster_total = 0;
  for (std::size_t r = 0; r < repeat; ++r) {
    Burn on_local{corun::DataIterator::partitioned(plain, partitions)};
    local_best = std::min(local_best, timed_run(io, local, on_local));
    Burn on_cluster{burn_data.iterator()};
    cluster_best = std::min(cluster_best, timed_run(io, cluster_pool, on_cluster));
    local_total = on_local.total;
    cluster_total = on_cluster.total;
  }
  // The same partials, added in another order.
  if (std::abs(local_total - cluster_total) > 1e-9 * std::abs(local_total))
    throw std::runtime_error("the cluster's result differs from the local one");

  Tiny warm{tiny_data.iterator()};
  timed_run(io, cluster_pool, warm);
  Tiny tiny{tiny_data.iterator()};
  const double tiny_seconds = timed_run(io, cluster_pool, tiny);
  if (tiny.total != static_cast<std::int64_t>(tasks * (tasks + 1) / 2))
    throw std::runtime_error("wrong tiny-task total");

  std::vector<std::int64_t> inputs(items);
  for (std::size_t i = 0; i < items; ++i) inputs[i] = static_cast<std::int64_t>(i);
  const auto map_start = std::chrono::steady_clock::now();
  auto mapped = corun::async_map<&plus_one>(cluster_pool, inputs, {}, asio::use_future);
  const std::vector<std::int64_t> outputs = wait(io, mapped);
  const double map_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - map_start).count();
  for (std::size_t i = 0; i < items; ++i)
    if (outputs[i] != inputs[i] + 1) throw std::runtime_error("wrong async_map output");

  auto stop_local = local.async_shutdown(asio::use_future);
  auto stop_cluster = cluster_pool.async_shutdown(asio::use_future);
  wait(io, stop_local);
  wait(io, stop_cluster);

  const nlohmann::json out = {
      {"ranks", ranks},
      {"compute_rows", rows},
      {"compute_partitions", partitions},
      {"local_seconds", local_best},
      {"cluster_seconds", cluster_best},
      {"cluster_compute_efficiency", local_best / cluster_best},
      {"cluster_tasks", tasks},
      {"cluster_tasks_seconds", tiny_seconds},
      {"cluster_tasks_per_s", static_cast<double>(tasks) / tiny_seconds},
      {"cluster_map_items", items},
      {"cluster_map_seconds", map_seconds},
      {"cluster_map_items_per_s", static_cast<double>(items) / map_seconds},
  };
  std::cout << out.dump() << std::endl;
}
