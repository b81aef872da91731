#pragma once
/// \file
/// What crosses between ranks: frames (kind, length, bytes), batched per peer so that one MPI
/// message carries many, and the outbox that fills those batches. Nothing here calls MPI, so the
/// batching is tested without it (tests/internal/frame_batches.cpp).
/// Side: every rank.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corun::detail {

/// Frame kinds inside a batch.
enum class FrameKind : std::uint8_t {
  spec = 1,  ///< 0 -> r: spec id, the spec as rank 0 encoded it (lib/seam/spec_codec.cpp)
  task,      ///< 0 -> r: task id, spec id, global slice, the argument (async_map's inputs)
  cancel,    ///< 0 -> r: task id, mode
  result,    ///< r -> 0: task id, outcome, record, error, payload
  ready,     ///< 0 -> r: wait until the pool is ready; r -> 0: it is (or why not)
  stop,      ///< 0 -> r: stop the pool (graceful or kill); whether a rank was lost
  bye,       ///< r -> 0: the pool stopped; the rank leaves serve()
};

/// The largest frame a link carries: a batch is one MPI message, whose count is an int, and
/// frames are batched until one more would pass this size.
inline constexpr std::size_t kMaxFrameBytes = std::size_t{1} << 30;

/// Appends one frame (kind, u32 length, bytes) to a batch.
void append_frame(std::string& batch, FrameKind kind, std::string_view bytes);
/// Calls `f(kind, bytes)` for each frame of a batch; throws std::invalid_argument when malformed.
void for_each_frame(std::string_view batch,
                    const std::function<void(FrameKind, std::string_view)>& f);

/// A batch for one peer.
struct Batch {
  int peer = 0;
  std::string bytes;
};

/// The frames queued for each peer, in batches of at most `max_frame_bytes` plus one frame
/// header: a batch is sealed before a frame would take it past that size. Not thread-safe.
class BatchOutbox {
 public:
  BatchOutbox(std::size_t peers, std::size_t max_frame_bytes = kMaxFrameBytes);

  /// Queues a frame for `peer`. Throws std::length_error for a frame over max_frame_bytes and
  /// std::out_of_range for a peer the outbox does not have.
  void add(int peer, FrameKind kind, std::string_view bytes);
  bool empty() const noexcept { return empty_; }
  /// Every queued batch, the sealed ones first (in the order they were sealed), then the ones
  /// being filled, by peer; the outbox is empty afterwards. One peer's frames stay in order.
  std::vector<Batch> take();

 private:
  std::vector<std::string> filling_;  // per peer
  std::vector<Batch> sealed_;
  std::size_t max_frame_bytes_;
  bool empty_ = true;
};

}  // namespace corun::detail
