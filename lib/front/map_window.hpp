#pragma once
/// \file
/// The window of an async_map's chunks (parent/orchestrator side): those at the service and
/// those back but held for ordered delivery, bounded in chunks and in bytes, so that a map of
/// any length holds a bounded amount of memory in this process.
/// Side: parent.

#include <algorithm>
#include <cstddef>

namespace corun::detail {

class MapWindow {
 public:
  /// At most `chunks` (at least 1) chunks, and `bytes` of their costs.
  MapWindow(std::size_t chunks, std::size_t bytes)
      : max_chunks_(std::max<std::size_t>(chunks, 1)), max_bytes_(bytes) {}

  /// Whether another chunk may go out: one chunk always may, so that a single large input
  /// still runs.
  bool open() const noexcept {
    return chunks_ < max_chunks_ && (chunks_ == 0 || bytes_ < max_bytes_);
  }

  /// A chunk that costs `bytes` goes out.
  void enter(std::size_t bytes) noexcept {
    ++chunks_;
    add(bytes);
  }
  /// A chunk was delivered, dropped or failed: its bytes are accounted for on their own.
  void leave() noexcept { --chunks_; }
  void add(std::size_t bytes) noexcept { bytes_ += bytes; }
  void remove(std::size_t bytes) noexcept { bytes_ -= bytes; }

 private:
  std::size_t max_chunks_;
  std::size_t max_bytes_;
  std::size_t chunks_ = 0;  ///< chunks at the service or waiting for delivery
  std::size_t bytes_ = 0;   ///< their costs, and the bytes of the waiting results
};

}  // namespace corun::detail
