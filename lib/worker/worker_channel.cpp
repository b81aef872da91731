/// \file
/// The worker's blocking framing over its socket.
/// Side: worker.
#include "worker/worker_channel.hpp"

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <utility>

namespace corun::detail {

WorkerChannel::WorkerChannel(int fd, std::function<void()> on_idle)
    : fd_(fd), on_idle_(std::move(on_idle)), buffer_(64 * 1024) {
  const timeval idle_check{1, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &idle_check, sizeof idle_check);
}

std::optional<WorkerChannel::Frame> WorkerChannel::read_frame() {
  if (begin_ == end_) begin_ = end_ = 0;
  if (!fill(proto::kHeaderSize)) return std::nullopt;
  const proto::Header h =
      proto::parse_header({buffer_.data() + begin_, proto::kHeaderSize}, proto::kMaxRequestBody);
  if (!fill(proto::kHeaderSize + h.length)) return std::nullopt;
  Frame f{h.kind, {buffer_.data() + begin_ + proto::kHeaderSize, h.length}};
  begin_ += proto::kHeaderSize + h.length;
  return f;
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

bool WorkerChannel::send_message(proto::Kind kind, std::string_view body) {
  std::string frame;
  proto::append_header(frame, kind, body.size());
  frame.append(body);
  return write_all(frame);
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
