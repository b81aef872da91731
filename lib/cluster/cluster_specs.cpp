/// \file
/// Rank 0's book of the task specs of its cluster's tasks: their ids, which ranks have them,
/// and their translation for rank 0's own pool.
/// Side: rank 0.
#include "cluster/cluster_specs.hpp"

#include "base/wire.hpp"

#include <utility>

namespace corun::detail {

ClusterSpecs::ClusterSpecs(ClusterState& cluster)
    : cluster_(cluster), sent_(static_cast<std::size_t>(cluster.size())) {}

ClusterSpecs::Entry& ClusterSpecs::entry_of(const TaskSpec& spec) {
  const auto it = entries_.find(spec.encoded);
  if (it != entries_.end()) return it->second;
  Entry e;
  e.id = next_id_++;
  e.global = spec.encoded;
  e.decoded = decoded_copy(spec);
  if (const auto found = cluster_.find(spec.iterator.shm_name)) e.blocks = found->blocks;
  return entries_.emplace(spec.encoded, std::move(e)).first->second;
}

const LocalSpec& ClusterSpecs::local_spec(Entry& entry) {
  if (!entry.local) entry.local = cluster_.translate(entry.decoded);
  return *entry.local;
}

void ClusterSpecs::send_once(int rank, const Entry& entry) {
  if (!sent_[static_cast<std::size_t>(rank)].insert(entry.id).second) return;
  std::string frame;
  ByteWriter w(frame);
  w.put(entry.id);
  w.bytes(entry.global);
  cluster_.link().send(rank, FrameKind::spec, frame);
}

}  // namespace corun::detail
