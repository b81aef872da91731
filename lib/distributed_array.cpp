/// \file
/// Distributed arrays: how their rows are cut into blocks and dealt to the ranks, and how the
/// ranks agree on a new one.
#include "cluster_state.hpp"

#include "wire.hpp"

#include <corun/error.hpp>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <utility>
#include <vector>

namespace corun::detail {

DistributedBlocks::DistributedBlocks(ArrayInfo global, BlockLayout layout, int rank, int ranks)
    : global_(std::move(global)), layout_(layout) {
  if ((layout.partitions == 0) == (layout.chunk_size == 0))
    throw std::invalid_argument(
        "corun::BlockLayout: set exactly one of partitions and chunk_size (partitions = " +
        std::to_string(layout.partitions) + ", chunk_size = " + std::to_string(layout.chunk_size) +
        ")");
  blocks_ = layout.partitions != 0 ? DataIterator::partitioned(global_, layout.partitions)
                                   : DataIterator::over(global_, layout.chunk_size);
  map_ = BlockMap::of(blocks_, static_cast<std::size_t>(rank), static_cast<std::size_t>(ranks));
  const std::size_t count = map_.block_count();
  for (std::size_t b = static_cast<std::size_t>(rank); b < count;
       b += static_cast<std::size_t>(ranks))
    local_blocks_.push_back({map_.block(b), map_.local_start(b)});
}

std::shared_ptr<DistributedBlocks> create_distributed(Cluster& cluster,
                                                      std::vector<std::size_t> shape, DType dtype,
                                                      BlockLayout layout) {
  ClusterState& state = ClusterAccess::state(cluster);
  if (state.serving)
    throw std::logic_error(
        "corun::DistributedArray::create: every rank creates its arrays before "
        "Cluster::serve()");
  // Rank 0 names the array; every rank checks it was given the same shape, type and layout, and
  // all throw if one differs (a rank throwing alone would leave the others waiting).
  std::string descriptor;
  ByteWriter w(descriptor);
  w.put<std::uint64_t>(shape.size());
  for (std::size_t d : shape) w.put<std::uint64_t>(d);
  w.str(dtype.str());
  w.put<std::uint64_t>(layout.partitions);
  w.put<std::uint64_t>(layout.chunk_size);
  const std::size_t number = state.next_array();
  std::string name = state.rank() == 0 ? "corun-dist-" + unique_segment_name().substr(6) + "-" +
                                             std::to_string(number)
                                       : std::string();
  std::string root_descriptor = descriptor;
  bool all_agree = false;
  state.link().call([&] {
    MPI_Comm comm = state.link().collective_comm();
    std::uint64_t sizes[2] = {name.size(), root_descriptor.size()};
    MPI_Bcast(sizes, 2, MPI_UINT64_T, 0, comm);
    name.resize(sizes[0]);
    root_descriptor.resize(sizes[1]);
    MPI_Bcast(name.data(), static_cast<int>(sizes[0]), MPI_CHAR, 0, comm);
    MPI_Bcast(root_descriptor.data(), static_cast<int>(sizes[1]), MPI_CHAR, 0, comm);
    int agree = root_descriptor == descriptor ? 1 : 0, all = 0;
    MPI_Allreduce(&agree, &all, 1, MPI_INT, MPI_MIN, comm);
    all_agree = all == 1;
  });
  if (!all_agree)
    throw std::invalid_argument(
        "corun::DistributedArray::create: the ranks disagree on the shape, element type or "
        "BlockLayout of array number " +
        std::to_string(number) + " (every rank must pass the same ones)");
  return std::make_shared<DistributedBlocks>(ArrayInfo{name, std::move(shape), dtype}, layout,
                                             state.rank(), state.size());
}

void scatter_rows(Cluster& cluster, const DistributedBlocks& blocks, const void* whole,
                  std::size_t whole_elements, void* local, std::size_t element_bytes) {
  ClusterState& state = ClusterAccess::state(cluster);
  if (state.serving)
    throw std::logic_error(
        "corun::DistributedArray::scatter: every rank calls it before Cluster::serve()");
  const ArrayInfo& global = blocks.global();
  const std::size_t rows = global.rows();
  const std::size_t row_elements = global.row_elements();
  const std::size_t elements = rows * row_elements;
  const std::size_t row_bytes = row_elements * element_bytes;
  const int rank = state.rank(), ranks = state.size();
  const bool mine_ok = rank == 0 ? whole_elements == elements : whole_elements == 0;
  // Every rank learns the lowest rank that passed a wrong size, so that all of them throw.
  int bad = 0;
  state.link().call([&] {
    int mine = mine_ok ? ranks : rank;
    MPI_Allreduce(&mine, &bad, 1, MPI_INT, MPI_MIN, state.link().collective_comm());
  });
  if (bad != ranks)
    throw std::invalid_argument(
        "corun::DistributedArray::scatter: rank " + std::to_string(bad) + " passed " +
        (bad == rank ? std::to_string(whole_elements) + " elements"
                     : "the wrong number of elements") +
        "; rank 0 passes all " + std::to_string(elements) + " elements of array " + global.name +
        " (" + std::to_string(rows) + " rows of " + std::to_string(row_elements) +
        "), the other ranks none");

  // Each rank's blocks, packed as its segment holds them, go in one message (in pieces under
  // MPI's int count).
  constexpr std::size_t kPiece = std::size_t{1} << 30;
  constexpr int kTag = 7;
  auto copy_blocks = [&](const BlockMap& map, std::byte* to) {
    const auto* from = static_cast<const std::byte*>(whole);
    for (std::size_t b = map.rank; b < map.block_count(); b += map.ranks) {
      const Slice r = map.block(b);
      std::memcpy(to + map.local_start(b) * row_bytes, from + r.start * row_bytes,
                  r.size() * row_bytes);
    }
  };
  state.link().call([&] {
    MPI_Comm comm = state.link().collective_comm();
    const BlockMap& mine = blocks.map();
    if (rank != 0) {
      auto* to = static_cast<std::byte*>(local);
      const std::size_t bytes = mine.local_rows() * row_bytes;
      for (std::size_t at = 0; at < bytes; at += kPiece)
        MPI_Recv(to + at, static_cast<int>(std::min(kPiece, bytes - at)), MPI_BYTE, 0, kTag, comm,
                 MPI_STATUS_IGNORE);
      return;
    }
    if (row_bytes == 0) return;
    copy_blocks(mine, static_cast<std::byte*>(local));
    std::vector<std::byte> packed;
    for (int r = 1; r < ranks; ++r) {
      const BlockMap theirs = BlockMap::of(blocks.blocks(), static_cast<std::size_t>(r),
                                           static_cast<std::size_t>(ranks));
      const std::size_t bytes = theirs.local_rows() * row_bytes;
      packed.resize(bytes);
      copy_blocks(theirs, packed.data());
      for (std::size_t at = 0; at < bytes; at += kPiece)
        MPI_Send(packed.data() + at, static_cast<int>(std::min(kPiece, bytes - at)), MPI_BYTE, r,
                 kTag, comm);
    }
  });
}

void register_distributed(Cluster& cluster, std::shared_ptr<DistributedBlocks> blocks,
                          ArrayInfo local) {
  ClusterAccess::state(cluster).add(std::move(blocks), std::move(local));
}

void unregister_distributed(Cluster& cluster, const std::string& global_name) noexcept {
  ClusterAccess::state(cluster).remove(global_name);
}

}  // namespace corun::detail
