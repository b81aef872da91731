#pragma once
/// \file
/// ParentChannel: the parent's end of a worker's socket, framing messages asynchronously on the
/// pool's strand, and of its two frame rings when the pool spins (PoolOptions::wait); the
/// mirror of the worker's blocking WorkerChannel.
/// Side: parent.

#include "base/unique_fd.hpp"
#include "protocol/frame_ring.hpp"
#include "protocol/protocol.hpp"

#include <corun/shared_array.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corun::detail {

class ParentChannel : public std::enable_shared_from_this<ParentChannel> {
 public:
  /// Told about each whole frame, and once about the end of the channel.
  class Listener {
   public:
    virtual void on_frame(proto::Kind kind, std::string_view body) = 0;
    /// EOF or an I/O error, or (`violation`) a header that failed validation; `why` says which.
    virtual void on_channel_closed(bool violation, const std::string& why) = 0;

   protected:
    ~Listener() = default;
  };

  /// `max_body`: the largest frame body the worker may send.
  ParentChannel(const asio::any_io_executor& strand, UniqueFd socket, std::uint32_t max_body);

  /// Starts reading; `listener` must outlive the channel or call close() first.
  void start(Listener* listener);
  /// Queues one frame.
  void send(proto::Kind kind, std::string_view body);
  /// Frames appended here are written at the next flush().
  std::string& outbox() noexcept { return pending_; }
  void flush();
  /// Closes the socket and unmaps the rings; the listener hears nothing more.
  void close() noexcept;

  /// Makes the segment of two frame rings (to the worker, then from it) for PoolOptions::wait's
  /// spinning; its name goes to the worker in its init message. Throws what Segment::create
  /// throws.
  void make_rings(std::size_t capacity, std::chrono::nanoseconds spin, bool yield);
  /// The rings' segment name, empty without rings.
  std::string ring_segment() const { return rings_ ? rings_->segment.name() : std::string(); }
  /// The worker mapped the rings and said `ready`: every later frame, both ways, goes through
  /// them (frames too large for a ring are announced in it and carried by the socket).
  void switch_to_rings();

 private:
  void read_more();
  /// Hands every whole frame in the buffer to the listener; false when reading must stop.
  bool consume_frames();
  void closed(bool violation, const std::string& why);
  /// A frame from the socket: the listener's, or, once on the rings, a doorbell or an
  /// announced frame.
  void socket_frame(proto::Kind kind, std::string_view body);
  /// Moves what fits from pending_ into the ring; too large frames to the socket.
  void fill_ring();
  /// Writes socket_out_ to the socket.
  void write_socket();
  /// Hands the listener every frame the worker committed to the ring.
  void drain_ring();
  /// One look at the ring while tasks are out: handles what came, then looks again (posted,
  /// so other handlers run between looks) until nothing came for the spin budget; then sleeps.
  void look();
  void keep_looking();
  /// Announces sleep: the worker rings the socket for its next frame.
  void sleep();
  /// After frames came: looks again while tasks are out, else sleeps.
  void after_frames();

  asio::local::stream_protocol::socket socket_;
  std::uint32_t max_body_;
  Listener* listener_ = nullptr;
  std::vector<char> read_buffer_ = std::vector<char>(64 * 1024);
  std::size_t read_length_ = 0;
  std::string pending_;
  std::string socket_out_, writing_;
  bool write_in_flight_ = false;
  bool write_failed_ = false;

  struct Rings {
    Rings(Segment memory, std::size_t capacity, std::uint32_t max_body,
          std::chrono::nanoseconds spin_budget, bool yield_core,
          const asio::any_io_executor& strand);

    Segment segment;
    RingWriter out;
    RingReader in;
    std::chrono::nanoseconds spin;
    bool yield;
    bool switched = false;
    bool looking = false;  ///< a look() is posted or running
    bool asleep = true;    ///< announced sleep: the worker rings for its next frame
    std::size_t tasks_out = 0;
    std::chrono::steady_clock::time_point last_frame;
    /// The ring announced a frame (proto::Kind::via_socket) that from_socket has yet to hold.
    bool awaiting_socket = false;
    /// Frames the socket brought for announcements in the ring, in order.
    std::deque<std::pair<proto::Kind, std::string>> from_socket;
    std::string body;
    /// Retries pending_ while the ring is too full for it and nobody looks.
    asio::steady_timer retry;
    bool retry_armed = false;
  };
  std::optional<Rings> rings_;
};

}  // namespace corun::detail
