#pragma once
/// \file
/// DistributedArray: an array whose rows are dealt to the ranks of a cluster (library
/// corun_mpi), with the layout of its blocks and the collectives behind it. Made on every rank
/// alike, rank 0 and the others, before Cluster::serve; rank 0's tasks then name it. Included by
/// <corun/cluster.hpp>, which defines the Cluster it needs.
/// Side: every rank.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/data_iterator.hpp>
#include <corun/detail/block_map.hpp>
#include <corun/dtype.hpp>
#include <corun/shared_array.hpp>
#include <corun/slice.hpp>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace corun {

class Cluster;

/// How a distributed array's rows are cut into blocks, which are dealt round-robin to the
/// ranks (block b lives on rank b % size): exactly one of the two is non-zero.
struct BlockLayout {
  std::size_t partitions = 0;  ///< this many balanced blocks (DataIterator::partitioned)
  std::size_t chunk_size = 0;  ///< blocks of this many rows (DataIterator::over)
};

/// One block of a distributed array held by this rank.
struct LocalBlock {
  Slice rows;               ///< its rows, counted in the whole array
  std::size_t local_start;  ///< where they start in this rank's segment
};

namespace detail {
/// The type-erased part of a DistributedArray: its global metadata and where its blocks live.
class CORUN_API DistributedBlocks {
 public:
  DistributedBlocks(ArrayInfo global, BlockLayout layout, int rank, int ranks);

  const ArrayInfo& global() const noexcept { return global_; }
  const BlockLayout& layout() const noexcept { return layout_; }
  /// The iterator whose slices are the blocks.
  const DataIterator& blocks() const noexcept { return blocks_; }
  /// Where the blocks are, seen from this rank.
  const BlockMap& map() const noexcept { return map_; }
  /// Rows held by this rank.
  std::size_t local_rows() const noexcept { return map_.local_rows(); }
  const std::vector<LocalBlock>& local_blocks() const noexcept { return local_blocks_; }
  /// The rank holding all rows of `slice`, or -1 when they are in more than one block.
  int owner(Slice slice) const noexcept { return map_.owner(slice); }
  /// `slice` in this rank's segment; requires owner(slice) == this rank.
  Slice to_local(Slice slice) const noexcept { return map_.to_local(slice); }

 private:
  ArrayInfo global_;
  BlockLayout layout_;
  DataIterator blocks_;
  BlockMap map_;
  std::vector<LocalBlock> local_blocks_;
};

/// Collective: agrees on the global name of a new distributed array, checks every rank passed
/// the same shape, type and layout, and returns its blocks.
CORUN_API std::shared_ptr<DistributedBlocks> create_distributed(Cluster& cluster,
                                                                std::vector<std::size_t> shape,
                                                                DType dtype, BlockLayout layout);
/// The largest message scatter_rows sends (MPI counts are ints).
inline constexpr std::size_t kScatterPieceBytes = std::size_t{1} << 30;
/// Collective: rank 0's `whole` (every element of the array, row-major) is cut into blocks and
/// each rank's go to its segment `local`, in messages of at most `piece_bytes` (every rank
/// passes the same); the other ranks pass none. Throws std::invalid_argument on every rank when
/// one passed a wrong number of elements.
CORUN_API void scatter_rows(Cluster& cluster, const DistributedBlocks& blocks, const void* whole,
                            std::size_t whole_elements, void* local, std::size_t element_bytes,
                            std::size_t piece_bytes = kScatterPieceBytes);
/// Makes `blocks` (whose rows on this rank are in segment `local`) known to tasks on this rank.
CORUN_API void register_distributed(Cluster& cluster, std::shared_ptr<DistributedBlocks> blocks,
                                    ArrayInfo local);
CORUN_API void unregister_distributed(Cluster& cluster, const std::string& global_name) noexcept;
}  // namespace detail

/// An array whose rows are spread over the ranks of a cluster, each rank's blocks in a
/// node-local SharedArray. Workers take its iterator() (or any DataIterator over info() whose
/// slices never cross a block) and run unchanged: on the rank holding a slice, `process` sees
/// that slice's rows of the local segment, TaskContext::slice counts rows of the whole array
/// (TaskContext::segment_rows the same rows in the local segment, which
/// TaskContext::iterator describes), and an output DistributedArray of the same layout receives
/// the task's rows there too. Move-only; outlives no Cluster.
template <element_type T>
class DistributedArray {
 public:
  /// Collective (every rank, same arguments, before Cluster::serve). Throws
  /// std::invalid_argument for a bad shape or layout, or when ranks disagree.
  static DistributedArray create(Cluster& cluster, std::vector<std::size_t> shape,
                                 BlockLayout layout) {
    auto blocks = detail::create_distributed(cluster, std::move(shape), DType::of<T>(), layout);
    std::vector<std::size_t> local_shape = blocks->global().shape;
    local_shape[0] = blocks->local_rows();
    return DistributedArray(cluster, std::move(blocks),
                            SharedArray<T>::create(std::move(local_shape)));
  }
  /// Takes over the array; the moved-from object unregisters nothing when destroyed.
  DistributedArray(DistributedArray&&) noexcept = default;
  DistributedArray& operator=(DistributedArray&&) = delete;
  ~DistributedArray() {
    if (blocks_) detail::unregister_distributed(*cluster_, blocks_->global().name);
  }

  /// The whole array: what DataIterator::over and DataIterator::partitioned take. Its name
  /// names no segment; the cluster translates it on each rank.
  const ArrayInfo& info() const noexcept { return blocks_->global(); }
  /// Shape of the whole array (info().shape).
  const std::vector<std::size_t>& shape() const noexcept { return blocks_->global().shape; }
  /// One slice per block: the iterator to give workers.
  const DataIterator& iterator() const noexcept { return blocks_->blocks(); }

  /// This rank's rows, blocks concatenated in order.
  SharedArray<T>& local() noexcept { return local_; }
  /// The same, read-only.
  const SharedArray<T>& local() const noexcept { return local_; }
  /// This rank's blocks, in order: each one's rows in the whole array and where they start in
  /// local().
  const std::vector<LocalBlock>& local_blocks() const noexcept { return blocks_->local_blocks(); }

  /// Collective (every rank, before Cluster::serve): rank 0 passes every element of the array
  /// (row-major), and each rank receives its blocks into local(); the other ranks pass nothing.
  /// Moves (R-1)/R of the array over the network, once; when each rank can compute or read its
  /// own rows, fill_rows moves nothing. Throws std::invalid_argument on every rank when one
  /// passed a wrong number of elements.
  void scatter(std::span<const T> whole = {}) {
    detail::scatter_rows(*cluster_, *blocks_, whole.data(), whole.size(), local_.data(), sizeof(T));
  }

  /// Fills this rank's rows in place: `f(global_row, T* row_elements)` for each local row.
  template <class F>
  void fill_rows(F f) {
    std::size_t row_elements = 1;
    for (std::size_t i = 1; i < shape().size(); ++i) row_elements *= shape()[i];
    for (const LocalBlock& b : local_blocks())
      for (std::size_t r = b.rows.start; r < b.rows.end; ++r)
        f(r, local_.data() + (b.local_start + (r - b.rows.start)) * row_elements);
  }

 private:
  DistributedArray(Cluster& cluster, std::shared_ptr<detail::DistributedBlocks> blocks,
                   SharedArray<T> local)
      : cluster_(&cluster), blocks_(std::move(blocks)), local_(std::move(local)) {
    detail::register_distributed(cluster, blocks_, local_.info());
  }

  Cluster* cluster_;
  std::shared_ptr<detail::DistributedBlocks> blocks_;
  SharedArray<T> local_;
};

}  // namespace corun
