#pragma once
/// \file
/// ParentChannel: the parent's end of a worker's socket, framing messages asynchronously on the
/// pool's strand; the mirror of the worker's blocking WorkerChannel.
/// Side: parent.

#include "base/unique_fd.hpp"
#include "protocol/protocol.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/local/stream_protocol.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
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
  /// Closes the socket; the listener hears nothing more.
  void close() noexcept;

 private:
  void read_more();
  /// Hands every whole frame in the buffer to the listener; false when reading must stop.
  bool consume_frames();
  void closed(bool violation, const std::string& why);

  asio::local::stream_protocol::socket socket_;
  std::uint32_t max_body_;
  Listener* listener_ = nullptr;
  std::vector<char> read_buffer_ = std::vector<char>(64 * 1024);
  std::size_t read_length_ = 0;
  std::string pending_, writing_;
  bool write_in_flight_ = false;
  bool write_failed_ = false;
};

}  // namespace corun::detail
