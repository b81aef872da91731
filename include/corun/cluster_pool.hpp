#pragma once
/// \file
/// ClusterPool: the pool rank 0 runs tasks on, over every rank's local pool (library
/// corun_mpi). Rank 0 only: the other ranks serve its tasks inside Cluster::serve. Included by
/// <corun/cluster.hpp>, which defines the Cluster it needs.
/// Side: rank 0.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/data_iterator.hpp>
#include <corun/detail/completion.hpp>
#include <corun/detail/task_service.hpp>
#include <corun/pool.hpp>
#include <corun/slice.hpp>
#include <corun/worker.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <utility>
#include <vector>

namespace corun {

class Cluster;

namespace detail {
class ClusterState;
class ClusterService;
}  // namespace detail

/// One rank rank 0 declared lost, and what became of its tasks.
struct RankLoss {
  /// The lost rank.
  int rank = -1;
  /// When rank 0 declared it lost: ClusterOptions::failure_timeout after the last message from
  /// it, give or take a poll of the communication thread.
  std::chrono::steady_clock::time_point declared{};
  /// Its async_map chunks sent again to surviving ranks.
  std::uint64_t chunks_resent = 0;
  /// When the first of those chunks completed there (the epoch while none has).
  std::chrono::steady_clock::time_point first_resent_done{};
  /// Its tasks that failed with TaskErrorKind::rank_lost (slices of rows that lived only on it).
  std::uint64_t tasks_failed = 0;
};

/// What ClusterPool::health() reports: which ranks are lost, and whether losing one would end
/// the job.
struct ClusterHealth {
  /// Ranks the job started with, rank 0 included.
  int ranks = 0;
  /// The ranks declared lost, in the order they were lost. New tasks go to the others only.
  std::vector<RankLoss> lost;
  /// Whether the job was launched with `mpirun --enable-recovery`. Without it Open MPI ends
  /// the whole job, rank 0's application included, as soon as one rank dies: nothing corun
  /// does afterwards runs.
  bool recovery_enabled = false;

  /// The ranks of `lost`, in its order.
  std::vector<int> lost_ranks() const {
    std::vector<int> out;
    for (const RankLoss& loss : lost) out.push_back(loss.rank);
    return out;
  }
};

/// Rank 0's pool-like object: runs tasks on the rank that holds their rows, with every rank's
/// local pool (rank 0's own included). Tasks over a plain SharedArray run on rank 0; the chunks
/// of async_map, async_imap and async_map_reduce (which read only their inputs) go to the rank
/// with the fewest tasks per worker, their inputs travelling with them. Pass it to
/// WorkerOrchestrator or async_map as a ProcessPool; RunReport's records and TaskErrors carry the
/// rank.
///
/// Threading: as ProcessPool; its state lives on a strand of the executor it was given. MPI is
/// driven by the cluster's communication thread, which posts results to that strand: nothing
/// here blocks the executor.
class CORUN_API ClusterPool {
 public:
  /// The executor given to the constructor; the pool's handlers run on a strand of it.
  using executor_type = asio::any_io_executor;

  /// On rank 0, after Cluster::serve() returned true; throws corun::Error otherwise.
  ClusterPool(Cluster& cluster, executor_type executor);
  /// Kills rank 0's workers (call async_shutdown first for a graceful end); the other ranks
  /// are stopped by ~Cluster.
  ~ClusterPool();
  ClusterPool(const ClusterPool&) = delete;
  ClusterPool& operator=(const ClusterPool&) = delete;

  /// The executor given to the constructor: async operations' default completion tokens use it.
  executor_type get_executor() const noexcept { return executor_; }
  /// Ranks in the cluster.
  int ranks() const noexcept;
  /// The workers of each rank's pool, rank 0's first. Nodes may differ (PoolOptions::workers 0
  /// means one per core of that node); async_map's chunks go where the fewest tasks per worker
  /// are.
  std::vector<std::size_t> workers() const;
  /// Which ranks are lost and whether the job survives losing one. Any thread.
  ClusterHealth health() const;
  /// What WorkerOrchestrator runs its tasks on.
  std::shared_ptr<detail::TaskService> task_service() const;

  /// Runs worker type W's `process` on `slice` (global rows) of the array `iterator` describes,
  /// on the rank holding those rows; as ProcessPool::async_execute.
  ///
  /// Completion signature: `void(std::exception_ptr, R)`, R the result type of `W::process`
  /// (`void(std::exception_ptr)` when it returns void); the exception is a corun::TaskFailed whose
  /// TaskError names the rank. Cancellation: as ProcessPool::async_execute, on the owning rank.
  template <class W, class Token = asio::default_completion_token_t<executor_type>>
  auto async_execute(const DataIterator& iterator, Slice slice, Token&& token = {}) {
    return detail::async_execute_task<W>(task_service(), detail::default_task_spec<W>(iterator),
                                         slice, std::forward<Token>(token));
  }
  /// The same, with the worker object's iterator, params and output array.
  template <class W, class Token = asio::default_completion_token_t<executor_type>>
  auto async_execute(const W& worker, Slice slice, Token&& token = {}) {
    return detail::async_execute_task<W>(task_service(), detail::worker_task_spec(worker), slice,
                                         std::forward<Token>(token));
  }

  /// Completes when every rank's workers have started.
  /// Completion signature: `void(std::exception_ptr)`; the exception names the failed rank.
  template <class Token = asio::default_completion_token_t<executor_type>>
  auto async_wait_ready(Token&& token = {}) {
    return async_lifecycle(false, std::forward<Token>(token));
  }
  /// Graceful shutdown: new tasks are refused, running ones finish, then every rank's pool
  /// stops and the other ranks return from Cluster::serve(). Completion signature:
  /// `void(std::exception_ptr)`.
  template <class Token = asio::default_completion_token_t<executor_type>>
  auto async_shutdown(Token&& token = {}) {
    return async_lifecycle(true, std::forward<Token>(token));
  }

 private:
  template <class Token>
  auto async_lifecycle(bool shutdown, Token&& token) {
    return asio::async_initiate<Token, void(std::exception_ptr)>(
        [](auto handler, bool stop, std::shared_ptr<detail::ClusterService> service,
           std::shared_ptr<detail::TaskService> seam) {
          lifecycle(service, stop,
                    std::make_unique<detail::HandlerCompletion<void, decltype(handler)>>(
                        std::move(handler), std::move(seam)));
        },
        token, shutdown, service_, task_service());
  }
  static void lifecycle(const std::shared_ptr<detail::ClusterService>& service, bool shutdown,
                        std::unique_ptr<detail::TaskCompletion> done);

  executor_type executor_;
  std::shared_ptr<detail::ClusterState> cluster_;
  std::shared_ptr<detail::ClusterService> service_;
};

}  // namespace corun
