// The frames ranks exchange and the outbox that batches them per peer, without MPI: the order a
// peer receives frames in, where batches are sealed, and what is refused.
#define CATCH_CONFIG_MAIN
#include "cluster/frame_batches.hpp"

#include <catch2/catch.hpp>

#include <cstddef>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

using corun::detail::append_frame;
using corun::detail::Batch;
using corun::detail::BatchOutbox;
using corun::detail::for_each_frame;
using corun::detail::FrameKind;

namespace {

using Frames = std::vector<std::pair<FrameKind, std::string>>;

Frames frames_of(const std::string& batch) {
  Frames out;
  for_each_frame(batch, [&](FrameKind kind, std::string_view bytes) {
    out.emplace_back(kind, std::string(bytes));
  });
  return out;
}

constexpr std::size_t kHeader = 5;  // kind, u32 length

}  // namespace

TEST_CASE("a batch gives back its frames in order, kinds and bytes exact", "[frames]") {
  std::string batch;
  const Frames sent = {{FrameKind::spec, "the spec"},
                       {FrameKind::task, std::string("\0\1\2", 3)},
                       {FrameKind::cancel, ""},
                       {FrameKind::bye, std::string(70000, 'x')}};
  for (const auto& [kind, bytes] : sent) append_frame(batch, kind, bytes);
  CHECK(batch.size() == 4 * kHeader + 8 + 3 + 0 + 70000);
  CHECK(frames_of(batch) == sent);
  CHECK(frames_of("").empty());
}

TEST_CASE("a malformed batch is refused, naming what is wrong", "[frames][failure]") {
  std::string batch;
  append_frame(batch, FrameKind::result, "abcdef");
  // Cut inside the frame's bytes.
  CHECK_THROWS_AS(frames_of(batch.substr(0, batch.size() - 1)), std::invalid_argument);
  // Cut inside the length.
  CHECK_THROWS_AS(frames_of(batch.substr(0, 3)), std::invalid_argument);
  for (const char kind : {'\0', '\x08', '\xff'}) {
    std::string bad = batch;
    bad[0] = kind;
    CHECK_THROWS_WITH(frames_of(bad), Catch::Contains("kind") &&
                                          Catch::Contains(std::to_string(std::uint8_t(kind))));
  }
}

TEST_CASE("the outbox seals a peer's batch before a frame would take it past the limit",
          "[outbox]") {
  BatchOutbox outbox(3, 100);
  CHECK(outbox.empty());
  CHECK(outbox.take().empty());
  const std::string a(40, 'a'), b(40, 'b'), c(40, 'c'), d(10, 'd');
  outbox.add(1, FrameKind::task, a);  // peer 1: 45 bytes
  outbox.add(2, FrameKind::task, d);  // peer 2: 15 bytes
  outbox.add(1, FrameKind::task, b);  // 45 + 40 <= 100: the same batch, now 90 bytes
  CHECK_FALSE(outbox.empty());
  outbox.add(1, FrameKind::cancel, c);  // 90 + 40 > 100: the batch of a and b is sealed
  outbox.add(0, FrameKind::result, "");

  const std::vector<Batch> batches = outbox.take();
  CHECK(outbox.empty());
  REQUIRE(batches.size() == 4);
  // The sealed batch first, then the ones being filled by peer.
  CHECK(batches[0].peer == 1);
  CHECK(frames_of(batches[0].bytes) == Frames{{FrameKind::task, a}, {FrameKind::task, b}});
  CHECK(batches[1].peer == 0);
  CHECK(frames_of(batches[1].bytes) == Frames{{FrameKind::result, ""}});
  CHECK(batches[2].peer == 1);
  CHECK(frames_of(batches[2].bytes) == Frames{{FrameKind::cancel, c}});
  CHECK(batches[3].peer == 2);
  CHECK(frames_of(batches[3].bytes) == Frames{{FrameKind::task, d}});
  CHECK(outbox.take().empty());
}

TEST_CASE("a frame of the limit travels alone; one byte more is refused and nothing is queued",
          "[outbox][failure]") {
  BatchOutbox outbox(2, 100);
  outbox.add(1, FrameKind::task, "small");
  outbox.add(1, FrameKind::task, std::string(100, 'x'));
  const std::vector<Batch> batches = outbox.take();
  REQUIRE(batches.size() == 2);
  CHECK(frames_of(batches[0].bytes) == Frames{{FrameKind::task, "small"}});
  CHECK(batches[1].bytes.size() == 100 + kHeader);

  CHECK_THROWS_WITH(outbox.add(1, FrameKind::task, std::string(101, 'x')),
                    "corun: a cluster frame of 101 bytes exceeds the 100 bytes one MPI message "
                    "of the link carries");
  CHECK_THROWS_AS(outbox.add(1, FrameKind::task, std::string(101, 'x')), std::length_error);
  CHECK_THROWS_WITH(outbox.add(2, FrameKind::task, "x"),
                    "corun: a frame for rank 2 of a link to 2 ranks");
  CHECK_THROWS_AS(outbox.add(-1, FrameKind::task, "x"), std::out_of_range);
  CHECK(outbox.empty());
  CHECK(outbox.take().empty());
}

TEST_CASE(
    "however frames are cut into batches, each peer receives its frames in order, and no "
    "batch passes the limit by more than one frame header",
    "[outbox]") {
  constexpr std::size_t limit = 1000;
  constexpr int peers = 3;
  std::mt19937 rng(12345);
  std::uniform_int_distribution<std::size_t> size(0, limit);
  std::uniform_int_distribution<int> peer_of(0, peers - 1);
  BatchOutbox outbox(peers, limit);
  std::vector<Frames> sent(peers), received(peers);
  std::size_t batches_seen = 0;
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 40; ++i) {
      const int peer = peer_of(rng);
      std::string bytes(size(rng), char('a' + i % 26));
      bytes += std::to_string(round * 100 + i);  // every frame distinct
      if (bytes.size() > limit) bytes.resize(limit);
      outbox.add(peer, FrameKind::task, bytes);
      sent[peer].emplace_back(FrameKind::task, std::move(bytes));
    }
    for (const Batch& b : outbox.take()) {
      ++batches_seen;
      CHECK(b.bytes.size() <= limit + kHeader);
      for (auto& f : frames_of(b.bytes)) received[b.peer].push_back(std::move(f));
    }
  }
  for (int p = 0; p < peers; ++p) CHECK(received[p] == sent[p]);
  CHECK(batches_seen > 50 * peers);  // frames of ~500 bytes: most rounds seal batches
}
