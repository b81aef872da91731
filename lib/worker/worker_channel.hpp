#pragma once
/// \file
/// WorkerChannel: the worker's end of its socket, blocking and buffered, and of its two frame
/// rings when the pool spins (PoolOptions::wait); the mirror of the parent's asynchronous
/// ParentChannel.
/// Side: worker.

#include "protocol/frame_ring.hpp"
#include "protocol/protocol.hpp"

#include <chrono>
#include <cstddef>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace corun::detail {

class WorkerChannel {
 public:
  struct Frame {
    proto::Kind kind;
    std::string_view body;  ///< valid until the next read_frame()
  };

  /// `on_idle` runs after each second without a message.
  WorkerChannel(int fd, std::function<void()> on_idle);

  /// From now on frames come and go through the rings at `memory` (to this worker, then from
  /// it, each of `capacity` data bytes), once the parent's first doorbell says so: frames on
  /// the socket before it are read first. Waiting for a frame spins for up to `spin` on the
  /// ring (yielding the core at each look when `yield`) before sleeping on the socket.
  void use_rings(void* memory, std::size_t capacity, std::chrono::nanoseconds spin, bool yield);

  /// The next frame, or nothing at end-of-file (the parent is gone). Throws
  /// std::invalid_argument naming the field of a header (or the ring word) that fails
  /// validation.
  std::optional<Frame> read_frame();
  /// Sends one frame encoded whole (header and body); false when the parent is gone.
  bool send_frame(std::string_view frame);
  /// Sends one frame; false when the parent is gone.
  bool send_message(proto::Kind kind, std::string_view body);

 private:
  /// The next frame on the socket itself.
  std::optional<Frame> read_socket_frame();
  /// The next frame on the socket that is not a doorbell: a frame too large for the ring,
  /// which the ring announced (proto::Kind::via_socket).
  std::optional<Frame> read_announced_frame();
  /// The next frame from the ring, waiting (spinning, then asleep on the socket) for one.
  std::optional<Frame> read_ring_frame();
  /// Writes all of `bytes` to the socket; false when the parent is gone.
  bool write_all(std::string_view bytes);
  /// Ensures `n` bytes are buffered from begin_; false at end-of-file.
  bool fill(std::size_t n);

  int fd_;
  std::function<void()> on_idle_;
  std::vector<char> buffer_;
  std::size_t begin_ = 0, end_ = 0;

  struct Rings {
    RingReader in;
    RingWriter out;
    std::chrono::nanoseconds spin;
    bool yield;
    bool switched = false;  ///< the parent's first doorbell came: the ring carries every frame
  };
  std::optional<Rings> rings_;
  std::string ring_body_;
  /// Announced frames that came on the socket while the worker slept, before it read their
  /// announcement.
  std::deque<std::pair<proto::Kind, std::string>> early_;
  std::string early_body_;
};

}  // namespace corun::detail
