// Rank 1 throws while the other ranks wait for it in Cluster::serve(): ~Cluster, run while the
// exception unwinds, aborts the MPI job (tests/mpi/mpirun_test.sh --fails expects mpirun to fail,
// not to hang, and nothing to be left behind).
#include <corun/cluster.hpp>

#include <cstdint>
#include <iostream>
#include <stdexcept>

int main(int argc, char** argv) {
  corun::enter_worker_if_spawned(argc, argv);
  try {
    corun::Cluster cluster{argc, argv, {.pool = {.workers = 1}}};
    auto ints = corun::DistributedArray<std::int64_t>::create(cluster, {100}, {.partitions = 4});
    if (cluster.rank() == 1) throw std::runtime_error("rank 1 cannot go on");
    cluster.serve();
  } catch (const std::exception& e) {
    std::cerr << "rank_throws: " << e.what() << '\n';
    return 2;
  }
  return 0;
}
