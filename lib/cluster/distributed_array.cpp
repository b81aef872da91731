/// \file
/// Distributed arrays: how their rows are cut into blocks and dealt to the ranks, and how the
/// ranks agree on a new one.
/// Side: every rank.
#include "cluster/cluster_state.hpp"

#include "base/wire.hpp"

#include <corun/error.hpp>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>
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
  // Non-blocking collectives, waited for by MpiLink::wait: a rank that aborts instead of
  // joining makes the others throw rather than wait for ever.
  MpiLink& link = state.link();
  link.call([&] {
    MPI_Comm comm = link.collective_comm();
    MPI_Request request;
    std::uint64_t sizes[2] = {name.size(), root_descriptor.size()};
    MPI_Ibcast(sizes, 2, MPI_UINT64_T, 0, comm, &request);
    link.wait(request);
    name.resize(sizes[0]);
    root_descriptor.resize(sizes[1]);
    MPI_Ibcast(name.data(), static_cast<int>(sizes[0]), MPI_CHAR, 0, comm, &request);
    link.wait(request);
    MPI_Ibcast(root_descriptor.data(), static_cast<int>(sizes[1]), MPI_CHAR, 0, comm, &request);
    link.wait(request);
    int agree = root_descriptor == descriptor ? 1 : 0, all = 0;
    MPI_Iallreduce(&agree, &all, 1, MPI_INT, MPI_MIN, comm, &request);
    link.wait(request);
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
                  std::size_t whole_elements, void* local, std::size_t element_bytes,
                  std::size_t piece_bytes) {
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
  // Rank 0 packs each rank's blocks, as that rank's segment holds them, into pieces of at most
  // piece_bytes (one MPI message each, under its int count); the rank receives the pieces
  // straight into its segment. The buffer is allocated before the ranks agree to go on, so a
  // failed allocation makes every rank throw rather than leave the others waiting.
  const std::size_t kPiece = std::clamp<std::size_t>(piece_bytes, 1, kScatterPieceBytes);
  constexpr int kTag = 7;
  std::vector<std::byte> piece;
  bool mine_ok = rank == 0 ? whole_elements == elements : whole_elements == 0;
  std::string why;
  if (rank == 0 && mine_ok && ranks > 1) {
    std::size_t largest = 0;
    for (int r = 1; r < ranks; ++r)
      largest = std::max(largest, BlockMap::of(blocks.blocks(), static_cast<std::size_t>(r),
                                               static_cast<std::size_t>(ranks))
                                      .local_rows());
    const std::size_t buffer = std::min(kPiece, largest * row_bytes);
    try {
      piece.resize(buffer);
    } catch (const std::bad_alloc&) {
      mine_ok = false;
      why = "rank 0 could not allocate its buffer of " + std::to_string(buffer) + " bytes";
    }
  }
  // Every rank learns the lowest rank that failed, so that all of them throw.
  int bad = 0;
  MpiLink& link = state.link();
  link.call([&] {
    int mine = mine_ok ? ranks : rank;
    MPI_Request request;
    MPI_Iallreduce(&mine, &bad, 1, MPI_INT, MPI_MIN, link.collective_comm(), &request);
    link.wait(request);
  });
  if (bad != ranks) {
    if (why.empty() || bad != rank)
      why = "rank " + std::to_string(bad) + " passed " +
            (bad == rank ? std::to_string(whole_elements) + " elements"
                         : "the wrong number of elements") +
            "; rank 0 passes all " + std::to_string(elements) + " elements of array " +
            global.name + " (" + std::to_string(rows) + " rows of " + std::to_string(row_elements) +
            "), the other ranks none";
    throw std::invalid_argument("corun::DistributedArray::scatter: " + why);
  }

  const auto* from = static_cast<const std::byte*>(whole);
  link.call([&] {
    MPI_Comm comm = link.collective_comm();
    MPI_Request request;
    if (rank != 0) {
      auto* to = static_cast<std::byte*>(local);
      const std::size_t bytes = blocks.map().local_rows() * row_bytes;
      for (std::size_t at = 0; at < bytes; at += kPiece) {
        MPI_Irecv(to + at, static_cast<int>(std::min(kPiece, bytes - at)), MPI_BYTE, 0, kTag, comm,
                  &request);
        link.wait(request);
      }
      return;
    }
    for (int r = 0; r < ranks; ++r) {
      const BlockMap map = BlockMap::of(blocks.blocks(), static_cast<std::size_t>(r),
                                        static_cast<std::size_t>(ranks));
      if (r == 0) {  // rank 0's own blocks: copied in place
        for (std::size_t b = map.rank; b < map.block_count(); b += map.ranks)
          std::memcpy(static_cast<std::byte*>(local) + map.local_start(b) * row_bytes,
                      from + map.block(b).start * row_bytes, map.block(b).size() * row_bytes);
        continue;
      }
      std::size_t filled = 0;
      auto flush = [&] {
        MPI_Isend(piece.data(), static_cast<int>(filled), MPI_BYTE, r, kTag, comm, &request);
        link.wait(request);
        filled = 0;
      };
      for (std::size_t b = map.rank; b < map.block_count(); b += map.ranks) {
        const std::byte* src = from + map.block(b).start * row_bytes;
        std::size_t left = map.block(b).size() * row_bytes;
        while (left != 0) {
          const std::size_t n = std::min(left, piece.size() - filled);
          std::memcpy(piece.data() + filled, src, n);
          filled += n;
          src += n;
          left -= n;
          if (filled == piece.size()) flush();
        }
      }
      if (filled != 0) flush();
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
