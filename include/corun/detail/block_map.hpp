#pragma once
/// \file
/// BlockMap: where the rows of a distributed array lie. Its rows are cut into blocks as
/// DataIterator::partitioned or DataIterator::over cut them; block b is held by rank b % ranks,
/// and each rank keeps its blocks one after the other in its own segment. The cluster uses it to
/// send a slice to the rank holding it; a worker on that rank, to know its task's rows in the
/// whole array.
/// Side: both.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/data_iterator.hpp>
#include <corun/slice.hpp>

#include <cstddef>
#include <cstdint>

namespace corun::detail {

struct CORUN_API BlockMap {
  std::uint64_t rows = 0;        ///< of the whole array
  std::uint64_t partitions = 0;  ///< this many balanced blocks, or
  std::uint64_t chunk_size = 0;  ///< blocks of this many rows (exactly one is non-zero)
  std::uint64_t rank = 0;        ///< whose segment `local` rows count
  std::uint64_t ranks = 1;

  /// The blocks are the slices of `blocks` (from its start_idx 0), seen from `rank`.
  static BlockMap of(const DataIterator& blocks, std::size_t rank, std::size_t ranks) noexcept;

  bool operator==(const BlockMap&) const = default;

  std::size_t block_count() const noexcept;
  /// Block b's rows in the whole array.
  Slice block(std::size_t b) const noexcept;
  /// The block holding `row` (< rows).
  std::size_t block_of(std::size_t row) const noexcept;
  /// The rank holding all rows of `slice`, or -1 when they are in more than one block (or
  /// beyond the array).
  int owner(Slice slice) const noexcept;
  /// Rows of this rank's segment.
  std::size_t local_rows() const noexcept;
  /// Where block b (one of this rank's) starts in this rank's segment.
  std::size_t local_start(std::size_t b) const noexcept;
  /// `global` (rows of one block of this rank) as rows of this rank's segment.
  Slice to_local(Slice global) const noexcept;
  /// `local` (rows of this rank's segment inside one block) as rows of the whole array.
  Slice to_global(Slice local) const noexcept;
};

}  // namespace corun::detail
