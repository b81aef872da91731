#pragma once
/// \file
/// How big an async_map's next chunk is (parent/orchestrator side): learnt from the work times
/// and result sizes the chunks bring back, so that a chunk keeps its worker busy long enough to
/// amortise what a task costs, yet its messages stay small. Plain arithmetic, no Asio, so it
/// can be tested by itself.
/// Side: parent.

#include <sys/types.h>
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <utility>

namespace corun::detail {

class ChunkSizer {
 public:
  /// A chunk should keep its worker busy this long, so that the ~3 us a task costs in messages
  /// and wake-ups is well under 1% of it...
  static constexpr double kTargetChunkNs = 2e6;
  /// ...but hold no more inputs, nor results, than this, so that messages stay small.
  static constexpr std::size_t kMaxChunkBytes = std::size_t{16} << 20;

  /// `chunk_size` 0: automatic. `workers`: how many processes share the chunks.
  ChunkSizer(std::size_t chunk_size, std::size_t max_bytes_in_flight, std::size_t workers);

  /// The next chunk's size: fixed, or enough inputs for kTargetChunkNs of work at the cost per
  /// input measured so far, with results of at most result_cap(), but never so many that fewer
  /// than about two chunks per worker remain of the `total` inputs, when known, of which the
  /// first `given` went out (the last chunks shrink, so workers finish together).
  std::size_t next_size(std::optional<std::size_t> total, std::size_t given) const;

  /// The argument bytes one chunk may hold.
  std::size_t chunk_bytes() const noexcept { return chunk_bytes_; }
  /// The results one chunk should bring back at most.
  std::size_t result_cap() const noexcept { return std::min(chunk_bytes_, reply_limit_); }

  /// Whether the next chunk should wait for a measurement: until a time came back, one probe
  /// per worker is enough, more would be guesses.
  bool awaiting_probes(std::size_t active) const noexcept {
    return chunk_size_ == 0 && measured_ == 0 && active >= workers_;
  }

  /// What a chunk is expected to hold at once in this process: its inputs three times (kept
  /// here, in the pool's task, in the frame being written to the worker) and its results twice
  /// (the reply being read, the payload delivered).
  std::size_t cost_of(std::size_t count, std::size_t argument_bytes) const noexcept {
    return 3 * argument_bytes +
           2 * static_cast<std::size_t>(result_bytes_per_item_ * static_cast<double>(count));
  }

  /// A reply of `done` results in `results_bytes`, worked on for `worked` by process `pid` of
  /// rank `rank`: updates the cost per input and the bytes of a result.
  void learn(std::size_t done, std::size_t results_bytes, int rank, pid_t pid,
             std::chrono::steady_clock::duration worked);

  /// A worker stopped a chunk at its max_result_bytes after `results_bytes`: later chunks are
  /// sized to stay below it.
  void limit_replies(std::size_t results_bytes) noexcept;

 private:
  std::size_t chunk_size_;
  std::size_t workers_;
  std::size_t chunk_bytes_;             ///< inputs, and results, one chunk may hold
  std::size_t reply_limit_ = SIZE_MAX;  ///< the most a worker sent when it stopped early
  std::size_t measured_ = 0;            ///< replies that told a work time
  double ns_per_item_ = 0;
  double result_bytes_per_item_ = 0;
  std::size_t replies_ = 0;                 ///< replies with results, for result_bytes_per_item_
  std::set<std::pair<int, pid_t>> warmed_;  ///< (rank, pid) of the processes that ran a chunk
};

}  // namespace corun::detail
