/// \file
/// The parent's asynchronous framing over a worker's socket.
/// Side: parent.
#include "pool/parent_channel.hpp"

#include <asio/write.hpp>

#include <cstring>
#include <exception>
#include <utility>

namespace corun::detail {

ParentChannel::ParentChannel(const asio::any_io_executor& strand, UniqueFd socket,
                             std::uint32_t max_body)
    : socket_(strand), max_body_(max_body) {
  socket_.assign(asio::local::stream_protocol(), socket.release());
}

void ParentChannel::start(Listener* listener) {
  listener_ = listener;
  read_more();
}

void ParentChannel::send(proto::Kind kind, std::string_view body) {
  proto::append_header(pending_, kind, body.size());
  pending_.append(body);
  flush();
}

void ParentChannel::flush() {
  if (write_in_flight_ || write_failed_ || pending_.empty() || !listener_) return;
  std::swap(writing_, pending_);
  write_in_flight_ = true;
  asio::async_write(socket_, asio::buffer(writing_),
                    [self = shared_from_this()](std::error_code ec, std::size_t) {
                      self->write_in_flight_ = false;
                      self->writing_.clear();
                      // The worker closed its end (it died): what it wrote before is still to
                      // be read, up to end-of-file, which ends the channel.
                      if (ec) {
                        self->write_failed_ = true;
                        self->pending_.clear();
                        return;
                      }
                      self->flush();
                    });
}

void ParentChannel::close() noexcept {
  listener_ = nullptr;
  std::error_code ignored;
  socket_.close(ignored);
}

void ParentChannel::closed(bool violation, const std::string& why) {
  if (Listener* l = std::exchange(listener_, nullptr)) l->on_channel_closed(violation, why);
}

void ParentChannel::read_more() {
  if (read_buffer_.size() - read_length_ < 16 * 1024) read_buffer_.resize(read_buffer_.size() * 2);
  socket_.async_read_some(
      asio::buffer(read_buffer_.data() + read_length_, read_buffer_.size() - read_length_),
      [self = shared_from_this()](std::error_code ec, std::size_t n) {
        if (!self->listener_) return;
        if (ec) return self->closed(false, ec == asio::error::eof ? "end of file" : ec.message());
        self->read_length_ += n;
        if (self->consume_frames()) self->read_more();
      });
}

bool ParentChannel::consume_frames() {
  std::size_t offset = 0;
  while (listener_ && read_length_ - offset >= proto::kHeaderSize) {
    proto::Header h;
    try {
      h = proto::parse_header({read_buffer_.data() + offset, proto::kHeaderSize}, max_body_);
    } catch (const std::exception& e) {
      closed(true, e.what());
      return false;
    }
    const std::size_t frame = proto::kHeaderSize + h.length;
    if (read_length_ - offset < frame) {
      if (read_buffer_.size() < frame) read_buffer_.resize(frame + 16 * 1024);
      break;
    }
    listener_->on_frame(h.kind, {read_buffer_.data() + offset + proto::kHeaderSize, h.length});
    offset += frame;
  }
  if (!listener_) return false;
  std::memmove(read_buffer_.data(), read_buffer_.data() + offset, read_length_ - offset);
  read_length_ -= offset;
  return true;
}

}  // namespace corun::detail
