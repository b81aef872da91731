// The CPUs a worker ends up on, read back in the worker with sched_getaffinity:
// PoolOptions::cpu_sets (an explicit set per worker, or one for all) and cpu_pinning (worker i
// on core i), and the cpu_sets a pool refuses, by name.
#include <corun/pool.hpp>

#include "support/drive.hpp"
#include "support/support.hpp"
#include "support/workers.hpp"

#include <corun/cpu_topology.hpp>

#include <sched.h>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <cstdint>
#include <future>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

using namespace corun;
using corun::test::drive;
using corun::test::iota_array;

namespace {

/// Returns {worker_id, then the PUs this process may run on}.
struct Affinity : Worker<Affinity, std::int64_t> {
  using Worker::Worker;
  static std::vector<std::int64_t> process(SliceView<const std::int64_t>, const TaskContext& ctx) {
    std::vector<std::int64_t> out{ctx.worker_id};
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) != 0) return out;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
      if (CPU_ISSET(cpu, &set)) out.push_back(cpu);
    return out;
  }
};

using PuSet = std::set<std::int64_t>;

/// The PU set of each worker of `pool`: one task at each (after the pool is ready, the least
/// loaded worker gets the next task, so `workers` tasks at once reach every worker).
std::map<std::int64_t, PuSet> affinity_by_worker(asio::io_context& io, ProcessPool& pool) {
  auto ready = pool.async_wait_ready(asio::use_future);
  drive(io, ready);
  auto ints = iota_array(pool.size());
  const auto it = DataIterator::over(ints, 1);
  std::vector<std::future<std::vector<std::int64_t>>> results;
  for (Slice s : it) results.push_back(pool.async_execute<Affinity>(it, s, asio::use_future));
  std::map<std::int64_t, PuSet> by_worker;
  for (auto& r : results) {
    const auto v = drive(io, r);
    by_worker[v.at(0)] = PuSet(v.begin() + 1, v.end());
  }
  return by_worker;
}

const std::vector<int>& pus() {
  return CpuTopology::local().pu_os_index;
}

std::string numbered() {
  std::string text;
  for (const int pu : pus()) text += (text.empty() ? "" : ", ") + std::to_string(pu);
  return text;
}

}  // namespace

TEST_CASE("cpu_sets binds each worker to its own set, read back in the worker",
          "[pool][cpu_sets]") {
  if (pus().size() < 2) {
    WARN("SKIPPED: this machine has " << pus().size() << " PU; the test needs two");
    return;
  }
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork);
  const auto a = static_cast<unsigned>(pus()[0]);
  const auto b = static_cast<unsigned>(pus()[1]);
  asio::io_context io;
  ProcessPool pool{io.get_executor(),
                   {.workers = 2, .start_method = method, .cpu_sets = {{b}, {a}}}};
  const auto by_worker = affinity_by_worker(io, pool);
  CHECK(by_worker == std::map<std::int64_t, PuSet>{{0, {b}}, {1, {a}}});

  // A replacement (the worker crashed) is bound as the one it replaces was.
  auto poison = iota_array(2);
  poison[0] = -2;  // SIGSEGV
  const auto crash_at = DataIterator::over(poison, 1);
  auto crash = pool.async_execute<corun::test::Faulty>(crash_at, Slice{0, 1}, asio::use_future);
  CHECK_THROWS_AS(drive(io, crash), TaskFailed);
  CHECK(affinity_by_worker(io, pool) == by_worker);
  CHECK(pool.health().failed_starts == 0);
}

TEST_CASE("cpu_sets with one entry binds every worker to it", "[pool][cpu_sets]") {
  std::vector<unsigned> all;
  for (const int pu : pus()) all.push_back(static_cast<unsigned>(pu));
  const PuSet expected(all.begin(), all.end());
  const std::size_t workers = GENERATE(1u, 2u, 3u);
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = workers, .cpu_sets = {all}}};
  const auto by_worker = affinity_by_worker(io, pool);
  REQUIRE(by_worker.size() == workers);
  for (const auto& [id, set] : by_worker) {
    INFO("worker " << id);
    CHECK(set == expected);
  }
  if (pus().size() >= 2) {
    ProcessPool last_only{
        io.get_executor(),
        {.workers = workers, .cpu_sets = {{static_cast<unsigned>(pus().back())}}}};
    for (const auto& [id, set] : affinity_by_worker(io, last_only)) {
      INFO("worker " << id);
      CHECK(set == PuSet{pus().back()});
    }
  }
}

TEST_CASE("cpu_pinning puts worker i on the PUs of core i, modulo the cores",
          "[pool][cpu_sets][pinning]") {
  const CpuTopology& topology = CpuTopology::local();
  // The PUs of each core, by the core's hwloc logical index: cpu_pinning's order.
  std::map<std::int64_t, PuSet> core;
  for (std::size_t i = 0; i < topology.pu_os_index.size(); ++i)
    core[topology.core_of_pu[i]].insert(topology.pu_os_index[i]);
  const std::size_t cores = core.size();
  REQUIRE(cores == topology.cores);
  const std::size_t workers = cores + 1;  // the last one wraps round to core 0
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = workers, .cpu_pinning = true}};
  const auto by_worker = affinity_by_worker(io, pool);
  REQUIRE(by_worker.size() == workers);
  for (const auto& [id, set] : by_worker) {
    INFO("worker " << id);
    CHECK(set == core.at(static_cast<std::int64_t>(static_cast<std::size_t>(id) % cores)));
  }
}

TEST_CASE("cpu_sets a pool cannot honour are rejected by name", "[pool][cpu_sets][failure]") {
  asio::io_context io;
  const std::string count = std::to_string(pus().size());
  CHECK_THROWS_AS((ProcessPool{io.get_executor(), {.workers = 1, .cpu_sets = {{4096}}}}),
                  std::invalid_argument);
  CHECK_THROWS_WITH((ProcessPool{io.get_executor(), {.workers = 1, .cpu_sets = {{0, 4096}}}}),
                    "corun::PoolOptions::cpu_sets[0] = {0, 4096} names PU 4096, which this "
                    "machine does not have: it has " +
                        count + " PUs (hwloc), numbered " + numbered());
  CHECK_THROWS_WITH((ProcessPool{io.get_executor(), {.workers = 2, .cpu_sets = {{0}, {0}, {0}}}}),
                    "corun::PoolOptions::cpu_sets has 3 entries for 2 workers: give one entry "
                    "(for every worker) or one per worker");
  CHECK_THROWS_WITH((ProcessPool{io.get_executor(), {.workers = 2, .cpu_sets = {{0}, {}}}}),
                    "corun::PoolOptions::cpu_sets[1] is empty: name at least one PU");
  CHECK_THROWS_WITH(
      (ProcessPool{io.get_executor(), {.workers = 1, .cpu_pinning = true, .cpu_sets = {{0}}}}),
      "corun::PoolOptions::cpu_sets and cpu_pinning = true: give one or the other (cpu_sets "
      "binds each worker to the PUs it names, cpu_pinning worker i to core i)");
  CHECK(corun::test::child_pids().empty());
}
