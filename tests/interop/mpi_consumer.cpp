// Built by tests/interop/install_consumer.sh against the installed corun_mpi (through pkg-config
// and through CMake's corun::corun_mpi) and run under mpirun with 2 ranks: 1..1000 as a
// DistributedArray dealt to both ranks, summed by rank 0's orchestrator; rank 0 prints
// `ranks=2 sum=500500`.
#include <corun/cluster.hpp>
#include <corun/corun.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <xtensor/xmath.hpp>

#include <cstdint>
#include <exception>
#include <iostream>

struct SumInts : corun::Worker<SumInts, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(corun::SliceView<const std::int64_t> slice) {
    return xt::sum(slice)();
  }
  void process_callback(std::int64_t partial) { total += partial; }
  std::int64_t total = 0;
};

int main(int argc, char** argv) {
  corun::enter_worker_if_spawned(argc, argv);
  corun::Cluster cluster{argc, argv, {.pool = {.workers = 1}}};
  auto ints = corun::DistributedArray<std::int64_t>::create(cluster, {1000}, {.partitions = 4});
  ints.fill_rows([](std::size_t row, std::int64_t* value) { *value = std::int64_t(row) + 1; });
  if (!cluster.serve()) return 0;

  asio::io_context io;
  corun::ClusterPool pool{cluster, io.get_executor()};
  SumInts sum{ints.iterator()};
  corun::WorkerOrchestrator orch{pool, {&sum}};
  std::exception_ptr failure;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await orch.run();
        co_await pool.async_shutdown(asio::use_awaitable);
      },
      [&](std::exception_ptr e) { failure = e; });
  io.run();
  if (failure) try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      std::cerr << "mpi_consumer: " << e.what() << '\n';
      return 1;
    }
  std::cout << "ranks=" << cluster.size() << " sum=" << sum.total << '\n';
}
