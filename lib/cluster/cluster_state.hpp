#pragma once
/// \file
/// What every rank of a cluster shares: the MPI link, the registry of distributed arrays, the
/// translation of a task spec from global to local rows, and the frames ranks exchange.
/// Side: every rank.

#include "cluster/mpi_link.hpp"
#include "seam/spec_codec.hpp"

#include <corun/cluster.hpp>
#include <corun/detail/task_service.hpp>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace corun::detail {

class ByteReader;

/// A spec translated for this rank: local segments and shapes, or why it cannot run here.
struct LocalSpec {
  std::shared_ptr<const TaskSpec> spec;             // null when `error` says why
  std::shared_ptr<const DistributedBlocks> blocks;  // null for a plain array (rank 0 only)
  std::string error;
};

/// How a task ended, as a `result` frame carries it.
enum class ResultStatus : std::uint8_t { ok, task_error, aborted, error };

/// Encodes a `result` frame of task `id` from the local TaskResult; times become offsets from
/// the moment the rank's pool accepted the task (clocks of two nodes are not comparable).
std::string encode_result(std::uint64_t id, const TaskResult& result);
/// Decodes a `result` frame into a TaskResult of rank `rank` for `spec` and `slice`, whose
/// times are placed after `submitted` (rank 0's clock).
TaskResult decode_result(std::string_view bytes, std::uint64_t& id, int rank,
                         const std::string& worker, Slice slice,
                         std::chrono::steady_clock::time_point submitted);

/// Appends a task's TaskOptions to a `task` frame: its priority, delay and RetryPolicy travel
/// with it, so the rank that runs the task schedules and retries it in its own pool (a crashed
/// task is run again on that rank, on a fresh worker, with no round trip through rank 0).
void put_task_options(std::string& frame, const TaskOptions& options);
/// Reads what put_task_options wrote; throws std::invalid_argument when malformed.
TaskOptions get_task_options(ByteReader& r);

/// Rewrites a local result as one of rank `rank` over the global `slice`.
void globalize(TaskResult& result, int rank, Slice slice);

/// Where rank 0's link delivers the batches of the other ranks.
class BatchSink {
 public:
  virtual ~BatchSink() = default;
  /// On the link's thread; must not block.
  virtual void deliver(int peer, std::string batch) = 0;
  /// On the link's thread, after the last batch of `peer`: it is lost. Must not block.
  virtual void lost(int peer) = 0;
};

class ClusterState {
 public:
  ClusterState(int& argc, char**& argv, ClusterOptions options);

  MpiLink& link() noexcept { return link_; }
  const ClusterOptions& options() const noexcept { return options_; }
  int rank() const noexcept { return link_.rank(); }
  int size() const noexcept { return link_.size(); }

  // ---- distributed arrays (any thread) ----
  struct Registered {
    std::shared_ptr<const DistributedBlocks> blocks;
    ArrayInfo local;
  };
  void add(std::shared_ptr<const DistributedBlocks> blocks, ArrayInfo local);
  void remove(const std::string& global_name) noexcept;
  std::optional<Registered> find(const std::string& global_name) const;
  /// The next collective array's number (the same on every rank).
  std::size_t next_array() noexcept { return arrays_created_++; }

  /// Translates a spec of rank 0 (its own encoding crosses MPI: names and shapes, whose
  /// inodes mean nothing on another node and are not used) for this rank.
  LocalSpec translate(const DecodedSpec& global) const;

  // ---- the ranks' pools ----
  /// The size of one rank's pool: its workers and how many tasks it keeps in flight.
  struct PoolShape {
    std::uint64_t workers = 0;
    std::uint64_t max_tasks_active = 0;
  };
  /// Collective, inside serve(): every rank gives its pool's shape (rank 0 zeros: its pool
  /// comes later, with the ClusterPool; another rank zeros when it could not make its pool) and
  /// learns every other rank's. Throws corun::Error, naming the rank, when another rank other
  /// than 0 has no pool.
  void gather_pool_shapes(PoolShape mine);
  /// By rank, after serve(); rank 0's entry is zero.
  const std::vector<PoolShape>& pool_shapes() const noexcept { return pool_shapes_; }

  // ---- lifecycle ----
  bool serving = false;    // serve() was called
  bool pool_made = false;  // rank 0: a ClusterPool exists or existed
  int uncaught_at_start = 0;

  /// Rank 0: where batches go (the ClusterPool's service), or nowhere.
  void set_sink(std::weak_ptr<BatchSink> sink);
  /// Rank 0, the link's thread.
  void deliver(int peer, std::string batch);
  /// Rank 0, the link's thread: tells the sink that `peer` is lost.
  void deliver_lost(int peer);

  /// Rank 0, any thread: a `stop` frame went to every other rank not lost (once).
  void stop_all(bool kill);
  /// Rank 0, the link's thread: rank `peer` left serve().
  void note_bye(int peer);
  /// Rank 0: blocks until every rank that was sent `stop` said bye or was lost.
  void wait_byes();

  // ---- lost ranks ----
  /// In serve(), after its collective: the link watches the peers this rank talks to (rank 0:
  /// every other rank; another rank: rank 0) and calls `lost` on its thread when one is lost,
  /// after noting it here.
  void watch_peers(std::function<void(int peer)> lost);
  /// Whether a rank was lost (ClusterPool::health() has the details).
  bool any_lost() const;
  /// Whether mpirun was told to keep the job alive when a rank dies (--enable-recovery).
  bool recovery_enabled() const noexcept { return recovery_enabled_; }

 private:
  MpiLink link_;
  ClusterOptions options_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Registered> arrays_;
  std::size_t arrays_created_ = 0;
  std::vector<PoolShape> pool_shapes_;
  std::condition_variable byes_changed_;
  std::mutex sink_mutex_;
  std::weak_ptr<BatchSink> sink_;
  bool stop_sent_ = false;
  enum class PeerState : std::uint8_t { serving, said_bye, lost };
  std::vector<PeerState> peers_;  // by rank, under mutex_
  bool recovery_enabled_ = false;
};

struct ClusterAccess {
  static ClusterState& state(Cluster& c) noexcept { return *c.state_; }
  static const std::shared_ptr<ClusterState>& shared(Cluster& c) noexcept { return c.state_; }
};

}  // namespace corun::detail
