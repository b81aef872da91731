// Shows more than one machine: the sum of 1..N held as a distributed int64 array over MPI ranks.
// Every rank fills its own blocks in place (or, with --scatter, rank 0 fills the whole array and
// scatters it); rank 0's orchestrator sends each slice to the rank holding its rows, and prints,
// on rank 0 only, `sum=<exact>` and `ranks_used=<ranks that ran slices>`.
//   mpirun -np 2 --bind-to none build/examples/mpi_sum --n 1000000 --partitions 8 --workers 2
#include <corun/cluster.hpp>
#include <corun/corun.hpp>

#include "cli.hpp"

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <xtensor/xmath.hpp>

#include <cstdint>
#include <exception>
#include <iostream>
#include <set>
#include <vector>

struct SumInts : corun::Worker<SumInts, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(corun::SliceView<const std::int64_t> slice) {
    return xt::sum(slice)();
  }
  void process_callback(std::int64_t partial) { total += partial; }
  std::int64_t total = 0;
};
CORUN_REGISTER_WORKER(SumInts);

int main(int argc, char** argv) {
  corun::enter_worker_if_spawned(argc, argv);
  std::size_t n = 1'000'000, partitions = 8, workers = 2;
  CLI::App app{"Sum 1..N over the ranks of an MPI job (run it with mpirun)"};
  app.add_option("--n", n, "elements")
      ->check(CLI::Range(std::size_t{1}, (std::size_t{1} << 32) - 1));
  app.add_option("--partitions", partitions, "blocks, dealt round-robin to the ranks")
      ->check(CLI::PositiveNumber);
  app.add_option("--workers", workers, "worker processes per rank")->check(CLI::PositiveNumber);
  bool scatter = false;
  app.add_flag("--scatter", scatter, "rank 0 fills the array and sends each rank its blocks");
  corun_cli::parse_or_exit(app, argc, argv);

  corun::Cluster cluster{argc, argv, {.pool = {.workers = workers}}};
  auto ints =
      corun::DistributedArray<std::int64_t>::create(cluster, {n}, {.partitions = partitions});
  if (scatter) {
    std::vector<std::int64_t> whole;
    if (cluster.is_root())
      for (std::size_t i = 1; i <= n; ++i) whole.push_back(static_cast<std::int64_t>(i));
    ints.scatter(whole);  // the other ranks pass nothing
  } else {
    ints.fill_rows([](std::size_t row, std::int64_t* value) { *value = std::int64_t(row) + 1; });
  }
  if (!cluster.serve()) return 0;  // ranks > 0 serve rank 0 until it is done

  asio::io_context io;
  corun::ClusterPool pool{cluster, io.get_executor()};
  SumInts sum{ints.iterator()};
  corun::WorkerOrchestrator orch{pool, {&sum}};
  std::exception_ptr failure;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        corun::RunReport report = co_await orch.run();
        std::set<int> ranks;
        for (const corun::TaskRecord& task : report.tasks) ranks.insert(task.rank);
        std::cout << "sum=" << sum.total << "\nranks_used=" << ranks.size() << std::endl;
        co_await pool.async_shutdown(asio::use_awaitable);
      },
      [&](std::exception_ptr e) { failure = e; });
  io.run();
  if (failure) try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      std::cerr << "mpi_sum: " << e.what() << '\n';
      return 1;
    }
  const auto expected = static_cast<std::int64_t>(n * (n + 1) / 2);
  return sum.total == expected ? 0 : 1;
}
