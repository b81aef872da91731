// Rank 1's pool cannot be made (pipeline_depth 0): rank 1 throws that error from serve(), and
// every other rank throws too, naming rank 1, instead of waiting for it. Each rank catches, so
// the job ends cleanly (tests/mpi/mpirun_test.sh --expect checks rank 0's line, then that
// nothing is left behind).
#include <corun/cluster.hpp>

#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  corun::enter_worker_if_spawned(argc, argv);
  const char* rank = std::getenv("OMPI_COMM_WORLD_RANK");
  const bool broken = rank != nullptr && std::string(rank) == "1";
  corun::Cluster cluster{argc, argv, {.pool = {.workers = 1, .pipeline_depth = broken ? 0u : 1u}}};
  std::string outcome = "served";
  try {
    if (cluster.serve()) outcome = "rank 0 served";
  } catch (const std::exception& e) {
    outcome = e.what();
  }
  // Only rank 0 prints to stdout, which the test compares; rank 1's own error goes to stderr.
  if (cluster.is_root()) std::cout << outcome << '\n';
  if (broken) std::cerr << "rank 1: " << outcome << '\n';
  return 0;
}
