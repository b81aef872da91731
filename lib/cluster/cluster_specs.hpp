#pragma once
/// \file
/// ClusterSpecs: rank 0's book of the task specs its ClusterPool's tasks name. Rank 0 only: a
/// task frame names its spec by an id, so each distinct spec (by its encoding) gets one, goes
/// to another rank once, before that rank's first task of it, and is translated for rank 0's
/// own pool at most once. The other ranks keep what they received in their RankServer.
/// Side: rank 0.

#include "cluster/cluster_state.hpp"
#include "seam/spec_codec.hpp"

#include <corun/detail/task_service.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace corun::detail {

class ClusterSpecs {
 public:
  /// What rank 0 knows about one distinct spec.
  struct Entry {
    std::uint64_t id = 0;
    std::string global;                               // the encoding other ranks get
    std::shared_ptr<const DistributedBlocks> blocks;  // null for a plain array
    std::optional<LocalSpec> local;                   // translated for rank 0, when needed
    DecodedSpec decoded;
  };

  /// `cluster` must outlive it.
  explicit ClusterSpecs(ClusterState& cluster);

  /// The entry of `spec`, made on its first task. Entries stay as long as the pool: their
  /// addresses and ids do not change.
  Entry& entry_of(const TaskSpec& spec);
  /// `entry` translated for rank 0's pool.
  const LocalSpec& local_spec(Entry& entry);
  /// Sends `entry` to `rank` unless it was sent there already; before the task frame that
  /// names it, which the rank could not run otherwise.
  void send_once(int rank, const Entry& entry);

 private:
  ClusterState& cluster_;
  std::uint64_t next_id_ = 1;
  std::unordered_map<std::string, Entry> entries_;
  std::vector<std::unordered_set<std::uint64_t>> sent_;  // spec ids each rank has
};

}  // namespace corun::detail
