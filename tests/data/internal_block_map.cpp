// BlockMap's arithmetic against blocks laid out by hand (DataIterator cuts them, a loop deals
// them to ranks and stacks each rank's blocks), for every small shape: rows 0..40, partitions
// and chunk sizes 1..12, 1..4 ranks, every rank, every row.
#define CATCH_CONFIG_MAIN
#include <corun/data_iterator.hpp>
#include <corun/detail/block_map.hpp>

#include <catch2/catch.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

using corun::Slice;
using corun::detail::BlockMap;

namespace {

struct Placed {
  Slice rows;  // in the whole array
  std::size_t rank;
  std::size_t local_start;  // in its rank's segment
};

std::vector<Placed> lay_out(const corun::DataIterator& blocks, std::size_t ranks) {
  std::vector<Placed> out;
  std::vector<std::size_t> filled(ranks, 0);
  for (std::size_t b = 0; b < blocks.slice_count(); ++b) {
    const Slice rows = blocks.slice(b);
    out.push_back({rows, b % ranks, filled[b % ranks]});
    filled[b % ranks] += rows.size();
  }
  return out;
}

void check(const BlockMap& map, const std::vector<Placed>& placed) {
  INFO("rows " << map.rows << " partitions " << map.partitions << " chunk_size " << map.chunk_size
               << " rank " << map.rank << " of " << map.ranks);
  REQUIRE(map.block_count() == placed.size());
  std::size_t held = 0;
  for (std::size_t b = 0; b < placed.size(); ++b) {
    const Placed& p = placed[b];
    REQUIRE(map.block(b) == p.rows);
    REQUIRE(map.owner(p.rows) == static_cast<int>(p.rank));
    if (p.rows.size() > 1) REQUIRE(map.owner(Slice{p.rows.start + 1, p.rows.end}) == int(p.rank));
    if (b + 1 < placed.size() && !p.rows.empty() && !placed[b + 1].rows.empty())
      REQUIRE(map.owner(Slice{p.rows.end - 1, p.rows.end + 1}) == -1);  // crosses two blocks
    for (std::size_t r = p.rows.start; r < p.rows.end; ++r) REQUIRE(map.block_of(r) == b);
    if (p.rank != map.rank) continue;
    held += p.rows.size();
    REQUIRE(map.local_start(b) == p.local_start);
    for (std::size_t r = p.rows.start; r < p.rows.end; ++r) {
      const Slice local{p.local_start + (r - p.rows.start),
                        p.local_start + (p.rows.end - p.rows.start)};
      const Slice global{r, p.rows.end};
      REQUIRE(map.to_local(global) == local);
      REQUIRE(map.to_global(local) == global);
    }
  }
  REQUIRE(map.local_rows() == held);
  REQUIRE(map.owner(Slice{0, map.rows + 1}) == -1);
}

}  // namespace

TEST_CASE("BlockMap places every row where dealing the blocks by hand puts it", "[block_map]") {
  for (std::size_t rows = 0; rows <= 40; ++rows)
    for (std::size_t n = 1; n <= 12; ++n)
      for (std::size_t ranks = 1; ranks <= 4; ++ranks)
        for (std::size_t rank = 0; rank < ranks; ++rank) {
          const corun::ArrayInfo info{"a", {rows}, corun::DType::of<std::int64_t>()};
          const auto partitioned = corun::DataIterator::partitioned(info, n);
          check(BlockMap::of(partitioned, rank, ranks), lay_out(partitioned, ranks));
          if (rows > 0) {
            const auto chunked = corun::DataIterator::over(info, n);
            check(BlockMap::of(chunked, rank, ranks), lay_out(chunked, ranks));
          }
        }
}

TEST_CASE("BlockMap takes a chunk size larger than the array as one block", "[block_map]") {
  const corun::ArrayInfo info{"a", {10}, corun::DType::of<std::int64_t>()};
  for (std::size_t chunk : {std::size_t{10}, std::size_t{11}, SIZE_MAX - 5, SIZE_MAX}) {
    INFO("chunk_size " << chunk);
    const auto blocks = corun::DataIterator::over(info, chunk);
    check(BlockMap::of(blocks, 0, 2), lay_out(blocks, 2));
    check(BlockMap::of(blocks, 1, 2), lay_out(blocks, 2));
  }
}

TEST_CASE("BlockMap counts millions of blocks without a table", "[block_map]") {
  const BlockMap map{10'000'000'000, 0, 1, 2, 3};  // one row per block, rank 2 of 3
  CHECK(map.block_count() == 10'000'000'000);
  CHECK(map.local_rows() == 3'333'333'333);
  CHECK(map.to_global(Slice{1'000'000'000, 1'000'000'001}) == Slice{3'000'000'002, 3'000'000'003});
  CHECK(map.to_local(Slice{3'000'000'002, 3'000'000'003}) == Slice{1'000'000'000, 1'000'000'001});
}
