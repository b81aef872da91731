/// \file
/// How big an async_map's next chunk is (parent/orchestrator side).
/// Side: parent.
#include "front/chunk_sizer.hpp"

#include <algorithm>

namespace corun::detail {

ChunkSizer::ChunkSizer(std::size_t chunk_size, std::size_t max_bytes_in_flight, std::size_t workers)
    : chunk_size_(chunk_size), workers_(std::max<std::size_t>(workers, 1)) {
  // Several chunks per worker fit in the byte window (each costs about three times its bytes,
  // see cost_of), so that each worker has its next one waiting.
  chunk_bytes_ = std::clamp<std::size_t>(max_bytes_in_flight / (8 * workers_), 1, kMaxChunkBytes);
}

std::size_t ChunkSizer::next_size(std::optional<std::size_t> total, std::size_t given) const {
  if (chunk_size_ != 0) return chunk_size_;
  std::size_t size = 1;  // the first chunks are probes: one input each
  if (ns_per_item_ > 0)
    size = static_cast<std::size_t>(std::clamp(kTargetChunkNs / ns_per_item_, 1.0, 1e9));
  if (result_bytes_per_item_ > 0)
    size = std::min(size, static_cast<std::size_t>(std::max(
                              1.0, static_cast<double>(result_cap()) / result_bytes_per_item_)));
  if (total) {
    const std::size_t remaining = *total - std::min(*total, given);
    size = std::min(size, std::max<std::size_t>(1, remaining / (2 * workers_)));
  }
  return size;
}

void ChunkSizer::learn(std::size_t done, std::size_t results_bytes, int rank, pid_t pid,
                       std::chrono::steady_clock::duration worked) {
  if (done == 0) return;
  const double count = static_cast<double>(done);
  const double bytes = static_cast<double>(results_bytes) / count;
  result_bytes_per_item_ = replies_ == 0 ? bytes : 0.5 * result_bytes_per_item_ + 0.5 * bytes;
  ++replies_;
  // A process's first chunk of the map also decoded the params and made the state: a fixed
  // cost that, counted per input, would cut the next chunks down to one input each.
  if (warmed_.insert({rank, pid}).second) return;
  if (worked > std::chrono::steady_clock::duration::zero()) {
    const double ns = std::chrono::duration<double, std::nano>(worked).count() / count;
    ns_per_item_ = measured_ == 0 ? ns : 0.5 * ns_per_item_ + 0.5 * ns;
  }
  ++measured_;
}

void ChunkSizer::limit_replies(std::size_t results_bytes) noexcept {
  reply_limit_ = std::min(reply_limit_, std::max<std::size_t>(results_bytes, 1));
}

}  // namespace corun::detail
