#pragma once
/// \file
/// More than one machine: the same orchestrator over MPI ranks (library corun_mpi, Meson
/// feature `mpi`; the core library never depends on MPI and this header never includes mpi.h).
/// Side: every rank.
///
/// One rank per node, each with its own local ProcessPool and node-local segments. Rank 0 runs
/// the application and its orchestrators; the other ranks serve. A DistributedArray deals
/// blocks of rows round-robin to the ranks; a task goes to the rank holding its rows, where its
/// global slice becomes local rows of that rank's segment. Only task specs, slices and results
/// cross MPI.
/// \code
/// int main(int argc, char** argv) {
///   corun::enter_worker_if_spawned(argc, argv);
///   corun::Cluster cluster{argc, argv, {.pool = {.workers = 2}}};
///   auto ints = corun::DistributedArray<std::int64_t>::create(cluster, {n}, {.partitions = 8});
///   ints.fill_rows([](std::size_t row, std::int64_t* values) { values[0] = row + 1; });
///   if (!cluster.serve()) return 0;  // ranks > 0 serve here until rank 0 is done
///   asio::io_context io;
///   corun::ClusterPool pool{cluster, io.get_executor()};
///   AddInts add{ints.iterator()};
///   corun::WorkerOrchestrator orch{pool, {&add}};
///   ...  // co_await orch.run(); co_await pool.async_shutdown(asio::use_awaitable);
/// }
/// \endcode

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

// Every part of the cluster API, so that this one include is all a program needs.
#include <corun/cluster_pool.hpp>
#include <corun/distributed_array.hpp>
#include <corun/pool.hpp>

#include <chrono>
#include <memory>

namespace corun {

/// How a Cluster runs: the local pool every rank starts and how its communication thread polls.
struct ClusterOptions {
  /// Every rank's local pool of worker processes (rank 0's included). Under mpirun start the
  /// ranks with `--bind-to none`, or a rank's workers share the one core it is bound to.
  PoolOptions pool{};
  /// An idle communication thread polls MPI at least this often (it backs off from 10 us to
  /// this after the last message): the latency of a result when the cluster is idle, traded
  /// against the CPU an idle rank burns.
  std::chrono::microseconds max_poll_interval{1000};
  /// Once serving, a communication thread that sent a peer nothing for this long sends it a
  /// heartbeat (a message of one byte): rank 0 to every serving rank, each serving rank to rank
  /// 0. A busy link sends none: its tasks and results say it lives.
  std::chrono::milliseconds heartbeat_interval{500};
  /// Rank 0 declares a serving rank lost once nothing came from it for this long, once and for
  /// good: its tasks end (async_map's chunks are sent again to the other ranks, slices of its
  /// rows fail with TaskErrorKind::rank_lost) and nothing is sent to it again. A serving rank
  /// that hears nothing from rank 0 for this long stops its pool and returns from serve(). At
  /// least twice heartbeat_interval. A lost rank ends the whole job unless it was launched with
  /// `mpirun --enable-recovery` (ClusterHealth::recovery_enabled).
  std::chrono::milliseconds failure_timeout{5000};
};

namespace detail {
class ClusterState;
struct ClusterAccess;
}  // namespace detail

/// This process's place in an MPI job: initialises MPI (MPI_Init_thread, MPI_THREAD_FUNNELED:
/// only the cluster's communication thread calls MPI) and finalises it exactly once.
///
/// One per process, made after enter_worker_if_spawned (a worker process never reaches it).
class CORUN_API Cluster {
 public:
  /// Initialises MPI. Throws corun::Error when MPI cannot give the thread level it needs, or a
  /// Cluster exists already in this process.
  Cluster(int& argc, char**& argv, ClusterOptions options = {});
  /// On rank 0, stops every other rank (their pools are killed if rank 0 never shut its
  /// ClusterPool down), then finalises MPI. When an exception is propagating, aborts the whole
  /// job (MPI_Abort) instead: the other ranks would otherwise wait for rank 0 forever.
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  /// This process's MPI rank in MPI_COMM_WORLD (rank 0 runs the application, the others serve).
  int rank() const noexcept;
  /// Number of ranks.
  int size() const noexcept;
  /// Whether this is rank 0, the one that runs the application and its orchestrators.
  bool is_root() const noexcept { return rank() == 0; }
  /// The options given to the constructor.
  const ClusterOptions& options() const noexcept;

  /// Collective: every rank calls it once, after creating and filling its distributed arrays.
  /// Rank 0 returns true once every rank is ready to serve. The other ranks run their local
  /// pool for rank 0's tasks until rank 0 shuts its ClusterPool down (or its Cluster is
  /// destroyed), then return false: `if (!cluster.serve()) return 0;`.
  bool serve();

 private:
  friend struct detail::ClusterAccess;
  std::shared_ptr<detail::ClusterState> state_;
};

}  // namespace corun
