#pragma once
/// \file
/// ClusterService: the TaskService behind a ClusterPool, on rank 0.
/// lib/cluster/cluster_service.cpp routes tasks (each to the rank holding its rows, async_map's
/// chunks to the least busy rank), with the specs they name in lib/cluster/cluster_specs.cpp;
/// lib/cluster/cluster_pool.cpp holds its life across ranks (ready rounds, an orderly shutdown
/// that waits for every rank's bye, terminate) and ClusterPool itself.
/// Side: rank 0.

#include "cluster/cluster_specs.hpp"
#include "cluster/cluster_state.hpp"

#include <corun/pool.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/strand.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace corun::detail {

class ClusterService final : public TaskService,
                             public BatchSink,
                             public std::enable_shared_from_this<ClusterService> {
 public:
  ClusterService(std::shared_ptr<ClusterState> cluster, asio::any_io_executor executor);
  ~ClusterService() override;

  int ranks() const noexcept { return cluster_->size(); }
  /// Each rank's pool, rank 0's first.
  const std::vector<ClusterState::PoolShape>& pools() const noexcept { return pools_; }

  // ---- TaskService ----
  asio::any_io_executor executor() const override { return strand_; }
  std::size_t max_tasks_active() const override;
  std::size_t concurrency() const override;
  std::uint64_t submit(std::shared_ptr<const TaskSpec> spec, Slice slice, std::string argument,
                       const TaskOptions& options, std::unique_ptr<TaskCompletion> done) override;
  void cancel(std::uint64_t id, CancelMode mode) override;

  // ---- BatchSink (the link's thread) ----
  void deliver(int peer, std::string batch) override;
  void lost(int peer) override;

  /// Any thread: the ranks lost so far and what became of their tasks.
  std::vector<RankLoss> losses() const;

  // ---- lifecycle, on the strand (lib/cluster/cluster_pool.cpp) ----
  void wait_ready(std::unique_ptr<TaskCompletion> done);
  void shutdown(std::unique_ptr<TaskCompletion> done);
  /// Any thread: kills rank 0's workers and tells the other ranks to kill theirs.
  void terminate() noexcept;

 private:
  using Clock = std::chrono::steady_clock;
  enum class State { running, closing, stopping, closed, terminated };

  struct Pending {
    std::unique_ptr<TaskCompletion> done;
    int rank = 0;
    std::uint64_t local_id = 0;
    std::shared_ptr<const TaskSpec> spec;
    Slice slice;
    Clock::time_point submitted;
    /// While another rank runs the task the executor has work: its io_context::run() must not
    /// return for lack of it (rank 0's own tasks keep its pool's reads pending instead).
    asio::any_io_executor work;
    /// An async_map chunk on another rank keeps its inputs and options, to be sent again if
    /// that rank is lost.
    std::string argument;
    TaskOptions options;
    /// The lost rank this chunk was sent again from, or -1.
    int resent_from = -1;
  };
  using Entry = ClusterSpecs::Entry;
  struct ReadyRound {
    std::unique_ptr<TaskCompletion> done;
    asio::any_io_executor work;
    int remaining = 0;
    std::exception_ptr error;
  };
  class LocalDone;

  // ---- routing (lib/cluster/cluster_service.cpp) ----
  void submit_local(std::uint64_t id, Pending p, Entry& entry, std::string argument,
                    const TaskOptions& options);
  void submit_remote(std::uint64_t id, Pending p, Entry& entry, std::string argument,
                     const TaskOptions& options);
  void track(std::uint64_t id, Pending p);
  /// The pending task `id` (empty when it completed already), no longer counted as busy.
  std::unordered_map<std::uint64_t, Pending>::node_type untrack(std::uint64_t id);
  /// The rank not lost with the fewest tasks per worker (the lowest such rank on a tie).
  int least_busy_rank() const noexcept;
  /// Sends a pending async_map chunk again, to the least busy rank, under the same id.
  void resend(std::uint64_t id, Pending p);
  void on_batch(int peer, const std::string& batch);
  /// Rank `peer` is lost: its tasks are sent again or fail, its ready rounds are answered.
  void on_rank_lost(int peer);
  void on_local(std::uint64_t id, TaskResult&& result);
  void on_remote_result(int peer, std::string_view bytes);
  void finish(Pending p, TaskResult result);
  void fail_later(Pending p, TaskResult result);
  void complete_later(std::unique_ptr<TaskCompletion> done, std::exception_ptr error);
  asio::any_io_executor tracked() const;

  // ---- lifecycle (lib/cluster/cluster_pool.cpp) ----
  void on_ready(int peer, std::string_view bytes);
  void on_bye(int peer);
  void ready_reply(ReadyRound& round, std::exception_ptr e);
  void check_shutdown();
  void terminate_on_strand();
  /// Instead of terminate_on_strand(), when the executor will never run it (its io_context is
  /// being destroyed): the completions are destroyed without being called.
  void release_completions();
  static std::exception_ptr closed_error();

  std::shared_ptr<ClusterState> cluster_;
  asio::strand<asio::any_io_executor> strand_;
  ProcessPool local_pool_;
  std::shared_ptr<TaskService> local_;
  State state_ = State::running;
  std::uint64_t next_id_ = 1;
  std::unordered_map<std::uint64_t, Pending> tasks_;
  std::vector<ClusterState::PoolShape> pools_;
  std::vector<std::size_t> busy_;    // tasks_ per rank
  std::vector<bool> lost_;           // by rank
  std::vector<bool> said_bye_;       // by rank
  mutable std::mutex losses_mutex_;  // the link's thread adds, health() reads from anywhere
  std::vector<RankLoss> losses_;
  RankLoss* loss_of(int rank);  // under losses_mutex_
  /// The result of a task whose rows lived only on lost rank `rank` (counted in its loss).
  TaskResult rows_lost_with(int rank, const TaskSpec& spec, Slice slice);
  ClusterSpecs specs_;
  std::vector<std::deque<std::shared_ptr<ReadyRound>>> ready_rounds_;
  std::vector<std::unique_ptr<TaskCompletion>> shutdown_waiters_;
  bool local_stopped_ = false;
  asio::any_io_executor stopping_work_;
};

}  // namespace corun::detail
