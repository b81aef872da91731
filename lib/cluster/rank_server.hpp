#pragma once
/// \file
/// RankServer: what a rank other than 0 does inside Cluster::serve(). It runs the tasks rank 0
/// sends on the rank's local pool and sends their results back.
/// Side: other ranks.

#include "cluster/cluster_state.hpp"

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

namespace corun::detail {

class RankServer : public std::enable_shared_from_this<RankServer> {
 public:
  /// `pool` runs on a strand of `io`, on which on_batch() is called too. Holds `io` busy until
  /// rank 0 sends `stop` and the pool stopped.
  RankServer(ClusterState& state, asio::io_context& io, ProcessPool& pool);

  /// Handles one batch of frames from rank 0.
  void on_batch(std::string batch);
  /// Nothing came from rank 0 for ClusterOptions::failure_timeout (it died, or it declared this
  /// rank lost): kills the pool's workers and leaves serve() without a bye.
  void on_root_lost();

 private:
  class Done;

  void run(std::uint64_t id, std::uint64_t spec_id, Slice slice, std::string argument,
           const TaskOptions& options);
  void refuse(std::uint64_t id, std::string why);

  ClusterState& state_;
  ProcessPool& pool_;
  std::shared_ptr<TaskService> service_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  bool leaving_ = false;  // the pool was told to stop (by rank 0, or rank 0 was lost)
  std::unordered_map<std::uint64_t, LocalSpec> specs_;        // by rank 0's spec id
  std::unordered_map<std::uint64_t, std::uint64_t> running_;  // rank 0's task id -> local id
};

}  // namespace corun::detail
