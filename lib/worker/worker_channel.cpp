/// \file
/// The worker's blocking framing over its socket and its frame rings.
/// Side: worker.
#include "worker/worker_channel.hpp"

#include "base/spin_wait.hpp"

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <ctime>
#include <stdexcept>
#include <utility>

namespace corun::detail {

WorkerChannel::WorkerChannel(int fd, std::function<void()> on_idle)
    : fd_(fd), on_idle_(std::move(on_idle)), buffer_(64 * 1024) {
  const timeval idle_check{1, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &idle_check, sizeof idle_check);
}

void WorkerChannel::use_rings(void* memory, std::size_t capacity, std::chrono::nanoseconds spin,
                              bool yield) {
  char* base = static_cast<char*>(memory);
  rings_.emplace(Rings{RingReader(base, capacity, proto::kMaxRequestBody),
                       RingWriter(base + ring_bytes(capacity), capacity), spin, yield});
}

std::optional<WorkerChannel::Frame> WorkerChannel::read_frame() {
  if (!rings_) return read_socket_frame();
  // Before the parent's first doorbell, frames it sent before it knew of the rings (a
  // shutdown during worker_init) are on the socket.
  while (!rings_->switched) {
    auto f = read_socket_frame();
    if (!f || f->kind != proto::Kind::doorbell) return f;
    rings_->switched = true;
  }
  return read_ring_frame();
}

std::optional<WorkerChannel::Frame> WorkerChannel::read_ring_frame() {
  for (;;) {
    const auto h = rings_->in.try_read(ring_body_);
    if (h) {
      if (h->kind == proto::Kind::via_socket) return read_announced_frame();
      if (h->kind == proto::Kind::doorbell)
        throw std::invalid_argument("corun ring: a doorbell frame in the ring");
      return Frame{h->kind, ring_body_};
    }
    if (spin_until([this] { return rings_->in.has_frame(); }, rings_->spin, rings_->yield))
      continue;
    if (!rings_->in.prepare_to_sleep()) continue;
    // Asleep on the socket until the parent rings (it cleared the announcement then).
    for (;;) {
      auto f = read_socket_frame();
      if (!f) return std::nullopt;
      if (f->kind == proto::Kind::doorbell) break;
      early_.emplace_back(f->kind, std::string(f->body));
    }
    rings_->in.awake();
  }
}

std::optional<WorkerChannel::Frame> WorkerChannel::read_announced_frame() {
  if (!early_.empty()) {
    proto::Kind kind = early_.front().first;
    early_body_ = std::move(early_.front().second);
    early_.pop_front();
    return Frame{kind, early_body_};
  }
  for (;;) {
    auto f = read_socket_frame();
    if (!f || f->kind != proto::Kind::doorbell) return f;
  }
}

std::optional<WorkerChannel::Frame> WorkerChannel::read_socket_frame() {
  if (begin_ == end_) begin_ = end_ = 0;
  if (!fill(proto::kHeaderSize)) return std::nullopt;
  const proto::Header h =
      proto::parse_header({buffer_.data() + begin_, proto::kHeaderSize}, proto::kMaxRequestBody);
  if (!fill(proto::kHeaderSize + h.length)) return std::nullopt;
  Frame f{h.kind, {buffer_.data() + begin_ + proto::kHeaderSize, h.length}};
  begin_ += proto::kHeaderSize + h.length;
  return f;
}

bool WorkerChannel::send_frame(std::string_view frame) {
  if (!rings_) return write_all(frame);
  RingWriter& out = rings_->out;
  // A full ring empties as the parent reads it, and the parent reads whenever the ring holds
  // frames: wait, spinning, then in short sleeps.
  auto until_written = [this](auto&& write) {
    while (!spin_until(write, rings_->spin, rings_->yield)) {
      const timespec pause{0, 20'000};
      ::nanosleep(&pause, nullptr);
    }
  };
  if (frame.size() > out.max_frame()) {
    // Announced in the ring, carried by the socket: the parent reads it in its place.
    until_written([&] { return out.try_write(proto::Kind::via_socket, {}); });
    if (!write_all(frame)) return false;
  } else {
    until_written([&] { return out.try_write_frame(frame); });
  }
  if (!out.take_wakeup()) return true;
  std::string doorbell;
  proto::append_header(doorbell, proto::Kind::doorbell, 0);
  return write_all(doorbell);
}

bool WorkerChannel::send_message(proto::Kind kind, std::string_view body) {
  std::string frame;
  proto::append_header(frame, kind, body.size());
  frame.append(body);
  return send_frame(frame);
}

bool WorkerChannel::write_all(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool WorkerChannel::fill(std::size_t n) {
  if (buffer_.size() - begin_ < n) {
    std::copy(buffer_.begin() + static_cast<std::ptrdiff_t>(begin_),
              buffer_.begin() + static_cast<std::ptrdiff_t>(end_), buffer_.begin());
    end_ -= begin_;
    begin_ = 0;
    if (buffer_.size() < n) buffer_.resize(n);
  }
  while (end_ - begin_ < n) {
    const ssize_t got = ::read(fd_, buffer_.data() + end_, buffer_.size() - end_);
    if (got == 0) return false;
    if (got < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (on_idle_) on_idle_();
        continue;
      }
      if (errno == EINTR) continue;
      return false;
    }
    end_ += static_cast<std::size_t>(got);
  }
  return true;
}

}  // namespace corun::detail
