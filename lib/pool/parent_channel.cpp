/// \file
/// The parent's asynchronous framing over a worker's socket and its frame rings.
/// Side: parent.
#include "pool/parent_channel.hpp"

#include <asio/post.hpp>
#include <asio/write.hpp>

#include <sched.h>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <utility>

namespace corun::detail {

ParentChannel::Rings::Rings(Segment memory, std::size_t capacity, std::uint32_t max_body,
                            std::chrono::nanoseconds spin_budget, bool yield_core,
                            const asio::any_io_executor& strand)
    : segment(std::move(memory)),
      out(segment.data(), capacity),
      in(static_cast<char*>(segment.data()) + ring_bytes(capacity), capacity, max_body),
      spin(spin_budget),
      yield(yield_core),
      retry(strand) {}

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

void ParentChannel::make_rings(std::size_t capacity, std::chrono::nanoseconds spin, bool yield) {
  Segment segment = Segment::create(
      ArrayInfo{unique_segment_name(), {2 * ring_bytes(capacity)}, DType::of<std::uint8_t>()});
  rings_.emplace(std::move(segment), capacity, max_body_, spin, yield, socket_.get_executor());
  // Until the parent first looks, the worker rings for each frame.
  rings_->in.prepare_to_sleep();
}

void ParentChannel::switch_to_rings() {
  if (!rings_) return;
  rings_->switched = true;
  // The worker reads the socket until this doorbell, then only the ring.
  proto::append_header(socket_out_, proto::Kind::doorbell, 0);
  flush();
}

void ParentChannel::flush() {
  if (write_failed_ || !listener_) return;
  if (rings_ && rings_->switched) {
    fill_ring();
  } else if (socket_out_.empty()) {
    std::swap(socket_out_, pending_);  // no copy on the blocking path
  } else {
    socket_out_ += pending_;
    pending_.clear();
  }
  write_socket();
}

void ParentChannel::fill_ring() {
  Rings& r = *rings_;
  std::size_t offset = 0;
  bool wrote = false;
  try {
    while (pending_.size() - offset >= proto::kHeaderSize) {
      // pending_ holds frames this side encoded: whole, and valid.
      proto::Header h;
      std::memcpy(&h, pending_.data() + offset, sizeof h);
      const std::string_view frame(pending_.data() + offset, proto::kHeaderSize + h.length);
      if (frame.size() > r.out.max_frame()) {
        if (!r.out.try_write(proto::Kind::via_socket, {})) break;
        socket_out_.append(frame);
      } else if (!r.out.try_write_frame(frame)) {
        break;
      }
      if (h.kind == proto::Kind::task) ++r.tasks_out;
      wrote = true;
      offset += frame.size();
    }
  } catch (const std::invalid_argument& e) {
    return closed(true, e.what());  // the worker's tail word is impossible
  }
  pending_.erase(0, offset);
  if (wrote) {
    if (r.out.take_wakeup()) proto::append_header(socket_out_, proto::Kind::doorbell, 0);
    if (r.tasks_out > 0) keep_looking();
  }
  // Too full: the worker empties it as it reads, but says nothing when it does.
  if (!pending_.empty() && !r.retry_armed) {
    r.retry_armed = true;
    r.retry.expires_after(std::chrono::microseconds(200));
    r.retry.async_wait([self = shared_from_this()](std::error_code ec) {
      if (ec || !self->rings_) return;
      self->rings_->retry_armed = false;
      self->flush();
    });
  }
}

void ParentChannel::write_socket() {
  if (write_in_flight_ || write_failed_ || socket_out_.empty()) return;
  std::swap(writing_, socket_out_);
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
                        self->socket_out_.clear();
                        return;
                      }
                      self->write_socket();
                    });
}

void ParentChannel::keep_looking() {
  Rings& r = *rings_;
  r.last_frame = std::chrono::steady_clock::now();  // a task went out: the budget starts again
  if (r.looking) return;
  if (r.asleep) {
    r.in.awake();
    r.asleep = false;
  }
  r.looking = true;
  asio::post(socket_.get_executor(), [self = shared_from_this()] { self->look(); });
}

void ParentChannel::look() {
  // It runs with `looking` set, so that what it hands out (a result whose handler sends the
  // next task) posts no second look: one chain of looks at a time. Each look is one handler,
  // so the loop runs its other handlers and timers between two of them (a look that spun on
  // inside its handler would hold back the pool's own dispatch, posted behind it).
  if (!rings_ || !listener_) return;
  drain_ring();
  if (!rings_ || !listener_) return;
  if (!pending_.empty()) flush();
  if (!rings_ || !listener_) return;
  Rings& r = *rings_;
  if (r.tasks_out > 0 && std::chrono::steady_clock::now() - r.last_frame < r.spin) {
    if (r.yield) ::sched_yield();
    asio::post(socket_.get_executor(), [self = shared_from_this()] { self->look(); });
    return;
  }
  r.looking = false;
  sleep();
}

void ParentChannel::sleep() {
  Rings& r = *rings_;
  if (r.asleep || r.looking) return;
  if (r.in.prepare_to_sleep()) {
    r.asleep = true;
    return;
  }
  // A frame came as it announced: take it (and look on, if tasks are out).
  keep_looking();
}

void ParentChannel::after_frames() {
  if (!rings_ || !listener_) return;
  if (rings_->tasks_out > 0)
    keep_looking();
  else
    sleep();
}

void ParentChannel::drain_ring() {
  // The body moves out of rings_ while the listener has it: the listener may close the channel,
  // which unmaps the rings.
  std::string body = std::move(rings_->body);
  while (listener_ && rings_) {
    Rings& r = *rings_;
    proto::Kind kind;
    if (r.awaiting_socket) {
      if (r.from_socket.empty()) break;
      kind = r.from_socket.front().first;
      body = std::move(r.from_socket.front().second);
      r.from_socket.pop_front();
      r.awaiting_socket = false;
    } else {
      std::optional<proto::Header> h;
      try {
        h = r.in.try_read(body);
      } catch (const std::invalid_argument& e) {
        return closed(true, e.what());
      }
      if (!h) break;
      r.last_frame = std::chrono::steady_clock::now();
      if (h->kind == proto::Kind::via_socket) {
        r.awaiting_socket = true;
        continue;
      }
      if (h->kind == proto::Kind::doorbell)
        return closed(true, "corun ring: a doorbell frame in the ring");
      kind = h->kind;
    }
    if (kind == proto::Kind::result && r.tasks_out > 0) --r.tasks_out;
    listener_->on_frame(kind, body);
  }
  if (rings_) rings_->body = std::move(body);
}

void ParentChannel::socket_frame(proto::Kind kind, std::string_view body) {
  if (!rings_ || !rings_->switched) return listener_->on_frame(kind, body);
  if (kind == proto::Kind::doorbell) {
    rings_->asleep = false;  // the worker cleared the announcement when it rang
  } else {
    rings_->from_socket.emplace_back(kind, std::string(body));
  }
  drain_ring();
  after_frames();
}

void ParentChannel::close() noexcept {
  listener_ = nullptr;
  std::error_code ignored;
  socket_.close(ignored);
  // Unmaps and removes the rings' segment now, not when the last handler lets the channel go.
  rings_.reset();
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
        if (ec) {
          // What the worker committed to its ring before it ended is delivered first.
          if (self->rings_ && self->rings_->switched) self->drain_ring();
          if (!self->listener_) return;
          return self->closed(false, ec == asio::error::eof ? "end of file" : ec.message());
        }
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
    socket_frame(h.kind, {read_buffer_.data() + offset + proto::kHeaderSize, h.length});
    offset += frame;
  }
  if (!listener_) return false;
  std::memmove(read_buffer_.data(), read_buffer_.data() + offset, read_length_ - offset);
  read_length_ -= offset;
  return true;
}

}  // namespace corun::detail
