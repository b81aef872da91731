// The chunk sizes an async_map picks, exactly, from given measurements: no pool, no processes.
#define CATCH_CONFIG_MAIN
#include "front/chunk_sizer.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstddef>
#include <optional>

using corun::detail::ChunkSizer;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

namespace {
constexpr std::size_t kMiB = std::size_t{1} << 20;
}  // namespace

TEST_CASE("the first chunks are probes of one input each, one per worker") {
  ChunkSizer sizer(0, 64 * kMiB, 2);
  CHECK(sizer.next_size(std::nullopt, 0) == 1);
  CHECK(sizer.next_size(1000, 0) == 1);
  CHECK_FALSE(sizer.awaiting_probes(1));
  CHECK(sizer.awaiting_probes(2));
  CHECK(sizer.cost_of(10, 100) == 300);  // no result size known yet: the inputs only
}

TEST_CASE("a process's first chunk tells the result size but not the time") {
  ChunkSizer sizer(0, 64 * kMiB, 2);
  sizer.learn(10, 100, 0, 42, milliseconds(1));
  CHECK(sizer.next_size(std::nullopt, 0) == 1);
  CHECK(sizer.awaiting_probes(2));
  CHECK(sizer.cost_of(10, 100) == 300 + 2 * 100);
  // The same pid on another rank is another process.
  sizer.learn(10, 100, 1, 42, milliseconds(1));
  CHECK(sizer.awaiting_probes(2));
}

TEST_CASE("measured work sizes chunks to kTargetChunkNs") {
  ChunkSizer sizer(0, 64 * kMiB, 2);
  sizer.learn(10, 100, 0, 42, milliseconds(1));
  sizer.learn(10, 100, 0, 42, microseconds(10));  // 1000 ns per input
  CHECK_FALSE(sizer.awaiting_probes(2));
  CHECK(sizer.next_size(std::nullopt, 0) == 2000);
  sizer.learn(4, 40, 0, 42, microseconds(16));  // 4000 ns per input: the mean is 2500
  CHECK(sizer.next_size(std::nullopt, 0) == 800);
  sizer.learn(5, 50, 0, 42, nanoseconds(0));  // no time: the cost per input stays
  CHECK(sizer.next_size(std::nullopt, 0) == 800);
}

TEST_CASE("the last chunks shrink to about two per worker") {
  ChunkSizer sizer(0, 64 * kMiB, 2);
  sizer.learn(10, 100, 0, 42, milliseconds(1));
  sizer.learn(10, 100, 0, 42, microseconds(10));
  CHECK(sizer.next_size(100000, 0) == 2000);
  CHECK(sizer.next_size(1000, 200) == 200);
  CHECK(sizer.next_size(1000, 999) == 1);
  CHECK(sizer.next_size(10, 50) == 1);
}

TEST_CASE("very cheap inputs: at most 1e9 in a chunk") {
  ChunkSizer sizer(0, 64 * kMiB, 1);
  sizer.learn(1000, 0, 0, 7, milliseconds(1));
  sizer.learn(1000, 0, 0, 7, nanoseconds(1));
  CHECK(sizer.next_size(std::nullopt, 0) == 1000000000);
}

TEST_CASE("a chunk holds at most chunk_bytes of inputs and results") {
  CHECK(ChunkSizer(0, 64 * kMiB, 2).chunk_bytes() == 4 * kMiB);
  CHECK(ChunkSizer(0, 64 * kMiB, 0).chunk_bytes() == 8 * kMiB);  // no workers counts as one
  CHECK(ChunkSizer(0, std::size_t{1} << 30, 2).chunk_bytes() == ChunkSizer::kMaxChunkBytes);
  CHECK(ChunkSizer(0, 10, 4).chunk_bytes() == 1);

  ChunkSizer sizer(0, 64 * kMiB, 2);
  sizer.learn(1, kMiB, 0, 1, milliseconds(1));
  sizer.learn(1, kMiB, 0, 1, nanoseconds(1000));  // 2000 inputs by time...
  CHECK(sizer.result_cap() == 4 * kMiB);
  CHECK(sizer.next_size(std::nullopt, 0) == 4);  // ...but 4 by the results' bytes
}

TEST_CASE("a worker's max_result_bytes caps later chunks") {
  ChunkSizer sizer(0, 64 * kMiB, 2);
  sizer.learn(1, kMiB, 0, 1, milliseconds(1));
  sizer.learn(1, kMiB, 0, 1, nanoseconds(1000));
  sizer.limit_replies(2 * kMiB);
  CHECK(sizer.result_cap() == 2 * kMiB);
  CHECK(sizer.next_size(std::nullopt, 0) == 2);
  sizer.limit_replies(3 * kMiB);  // the lowest limit stays
  CHECK(sizer.next_size(std::nullopt, 0) == 2);
  sizer.limit_replies(0);
  CHECK(sizer.result_cap() == 1);
  CHECK(sizer.next_size(std::nullopt, 0) == 1);
}

TEST_CASE("an explicit chunk_size is honoured whatever was measured") {
  ChunkSizer sizer(7, 64 * kMiB, 2);
  CHECK(sizer.next_size(std::nullopt, 0) == 7);
  CHECK(sizer.next_size(3, 0) == 7);
  CHECK_FALSE(sizer.awaiting_probes(100));
  sizer.learn(10, 100, 0, 42, milliseconds(1));
  sizer.learn(10, 100, 0, 42, microseconds(10));
  sizer.limit_replies(1);
  CHECK(sizer.next_size(std::nullopt, 0) == 7);
}
