/// \file
/// The arithmetic of BlockMap, with no table: a rank may hold millions of blocks.
/// Side: both.
#include <corun/detail/block_map.hpp>

#include <algorithm>

namespace corun::detail {

namespace {
// Not (a + b - 1) / b, which wraps for a chunk size near SIZE_MAX ("one block").
std::size_t ceil_div(std::size_t a, std::size_t b) noexcept {
  return a / b + (a % b != 0);
}
}  // namespace

BlockMap BlockMap::of(const DataIterator& blocks, std::size_t rank, std::size_t ranks) noexcept {
  // DataIterator::partitioned cuts no more blocks than rows: its `partitions` is what it made.
  return {blocks.size_of_data, blocks.partitions, blocks.partitions != 0 ? 0 : blocks.chunk_size,
          rank, ranks};
}

std::size_t BlockMap::block_count() const noexcept {
  return partitions != 0 ? partitions : ceil_div(rows, chunk_size);
}

Slice BlockMap::block(std::size_t b) const noexcept {
  if (partitions != 0) {
    const std::size_t base = rows / partitions, extra = rows % partitions;
    const std::size_t start = b * base + std::min<std::size_t>(b, extra);
    return {start, start + base + (b < extra)};
  }
  const std::size_t start = b * chunk_size;
  return {start, start + std::min<std::size_t>(chunk_size, rows - start)};
}

std::size_t BlockMap::block_of(std::size_t row) const noexcept {
  if (partitions == 0) return row / chunk_size;
  const std::size_t base = rows / partitions, extra = rows % partitions;
  const std::size_t big = extra * (base + 1);  // rows in the blocks one row longer than base
  return row < big ? row / (base + 1) : extra + (row - big) / base;
}

int BlockMap::owner(Slice slice) const noexcept {
  if (slice.start > slice.end || slice.end > rows) return -1;
  if (rows == 0) return 0;
  const std::size_t first = block_of(std::min<std::size_t>(slice.start, rows - 1));
  if (!slice.empty() && block_of(slice.end - 1) != first) return -1;
  return static_cast<int>(first % ranks);
}

std::size_t BlockMap::local_start(std::size_t b) const noexcept {
  const std::size_t k = b / ranks;  // b is this rank's k-th block
  if (partitions == 0) return k * chunk_size;
  const std::size_t base = rows / partitions, extra = rows % partitions;
  // This rank's blocks below `extra` are one row longer.
  const std::size_t longer = extra > rank ? ceil_div(extra - rank, ranks) : 0;
  return k * base + std::min(k, longer);
}

std::size_t BlockMap::local_rows() const noexcept {
  const std::size_t count = block_count();
  if (count <= rank) return 0;
  const std::size_t last = rank + (ceil_div(count - rank, ranks) - 1) * ranks;
  return local_start(last) + block(last).size();
}

Slice BlockMap::to_local(Slice global) const noexcept {
  if (rows == 0) return {0, 0};
  const std::size_t b = block_of(std::min<std::size_t>(global.start, rows - 1));
  const std::size_t start = local_start(b) + (global.start - block(b).start);
  return {start, start + global.size()};
}

Slice BlockMap::to_global(Slice local) const noexcept {
  const std::size_t count = block_count();
  if (count <= rank) return local;
  const std::size_t held = ceil_div(count - rank, ranks);
  std::size_t k = 0;  // which of this rank's blocks holds local.start
  if (partitions == 0) {
    k = local.start / chunk_size;
  } else {
    const std::size_t base = rows / partitions, extra = rows % partitions;
    const std::size_t longer = extra > rank ? ceil_div(extra - rank, ranks) : 0;
    const std::size_t in_longer = std::min(held, longer) * (base + 1);
    k = local.start < in_longer ? local.start / (base + 1)
        : base == 0             ? held
                                : longer + (local.start - in_longer) / base;
  }
  k = std::min(k, held - 1);  // an empty slice at the very end belongs to the last block
  const std::size_t b = rank + k * ranks;
  const std::size_t start = block(b).start + (local.start - local_start(b));
  return {start, start + local.size()};
}

}  // namespace corun::detail
