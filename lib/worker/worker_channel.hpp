#pragma once
/// \file
/// WorkerChannel: the worker's end of its socket, blocking and buffered; the mirror of the
/// parent's asynchronous ParentChannel.
/// Side: worker.

#include "protocol/protocol.hpp"

#include <cstddef>
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

  /// The next frame, or nothing at end-of-file (the parent is gone). Throws
  /// std::invalid_argument naming the field of a header that fails validation.
  std::optional<Frame> read_frame();
  /// Writes all of `bytes`; false when the parent is gone.
  bool write_all(std::string_view bytes);
  /// Writes one frame; false when the parent is gone.
  bool send_message(proto::Kind kind, std::string_view body);

 private:
  /// Ensures `n` bytes are buffered from begin_; false at end-of-file.
  bool fill(std::size_t n);

  int fd_;
  std::function<void()> on_idle_;
  std::vector<char> buffer_;
  std::size_t begin_ = 0, end_ = 0;
};

}  // namespace corun::detail
