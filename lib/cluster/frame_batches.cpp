/// \file
/// Frames batched per peer (every rank): appending a frame to a batch, and reading a batch back
/// with every length checked. Needs no MPI, so tests/cluster tests it without mpirun.
/// Side: every rank.
#include "cluster/frame_batches.hpp"

#include "base/wire.hpp"

#include <stdexcept>

namespace corun::detail {

void append_frame(std::string& batch, FrameKind kind, std::string_view bytes) {
  ByteWriter w(batch);
  w.put(static_cast<std::uint8_t>(kind));
  w.str(bytes);
}

void for_each_frame(std::string_view batch,
                    const std::function<void(FrameKind, std::string_view)>& f) {
  ByteReader r(batch, "corun cluster batch");
  while (r.remaining() != 0) {
    const auto kind = r.get<std::uint8_t>("kind");
    if (kind < static_cast<std::uint8_t>(FrameKind::spec) ||
        kind > static_cast<std::uint8_t>(FrameKind::bye))
      r.fail("kind", std::to_string(kind));
    f(static_cast<FrameKind>(kind), r.str("frame", std::size_t{1} << 31));
  }
}

BatchOutbox::BatchOutbox(std::size_t peers, std::size_t max_frame_bytes)
    : filling_(peers), max_frame_bytes_(max_frame_bytes) {}

void BatchOutbox::add(int peer, FrameKind kind, std::string_view bytes) {
  if (bytes.size() > max_frame_bytes_)
    throw std::length_error("corun: a cluster frame of " + std::to_string(bytes.size()) +
                            " bytes exceeds the " + std::to_string(max_frame_bytes_) +
                            " bytes one MPI message of the link carries");
  if (peer < 0 || static_cast<std::size_t>(peer) >= filling_.size())
    throw std::out_of_range("corun: a frame for rank " + std::to_string(peer) + " of a link to " +
                            std::to_string(filling_.size()) + " ranks");
  std::string& batch = filling_[static_cast<std::size_t>(peer)];
  if (!batch.empty() && batch.size() + bytes.size() > max_frame_bytes_)
    sealed_.push_back({peer, std::exchange(batch, {})});
  append_frame(batch, kind, bytes);
  empty_ = false;
}

std::vector<Batch> BatchOutbox::take() {
  std::vector<Batch> out = std::exchange(sealed_, {});
  for (std::size_t peer = 0; peer < filling_.size(); ++peer)
    if (!filling_[peer].empty())
      out.push_back({static_cast<int>(peer), std::exchange(filling_[peer], {})});
  empty_ = true;
  return out;
}

}  // namespace corun::detail
