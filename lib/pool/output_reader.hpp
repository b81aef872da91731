#pragma once
/// \file
/// OutputReader: the parent's end of one captured output stream of a worker (its stdout or
/// stderr pipe), read asynchronously on the pool's strand and cut into lines for
/// PoolOptions::worker_output, with a fixed buffer of kWorkerOutputLineBytes.
/// Side: parent.

#include "base/unique_fd.hpp"

#include <corun/worker_output.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/posix/stream_descriptor.hpp>

#include <sys/types.h>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <system_error>

namespace corun::detail {

class OutputReader : public std::enable_shared_from_this<OutputReader> {
 public:
  /// Told once, when the stream reached its end (the worker and whoever inherited the pipe
  /// closed it) and every byte before it was delivered.
  class Listener {
   public:
    virtual void on_output_closed() = 0;

   protected:
    ~Listener() = default;
  };

  /// Reads `pipe` (the read end) on `strand`, delivering each line of worker `worker_id`
  /// (process `pid`) to `handler`.
  OutputReader(const asio::any_io_executor& strand, UniqueFd pipe,
               std::shared_ptr<const WorkerOutputHandler> handler, int worker_id, pid_t pid,
               OutputStream stream);

  /// Starts reading; `listener` must outlive the reader or call close() first.
  void start(Listener* listener);
  /// Bytes read from the pipe so far.
  std::uint64_t bytes_read() const noexcept { return bytes_read_; }
  /// Bytes written into the pipe and not read yet (0 once closed).
  std::uint64_t bytes_waiting() noexcept;
  bool open() const noexcept { return !closed_; }
  /// Closes the pipe at once; what it still holds is not delivered, the listener hears nothing
  /// more.
  void close() noexcept;

 private:
  void read_more();
  void on_readable(std::error_code ec);
  void on_read(std::error_code ec, std::size_t n);
  /// Delivers every whole line in the buffer, and the buffer itself when it is full without a
  /// newline; keeps the rest for the next read.
  void deliver_lines();
  void deliver(std::size_t begin, std::size_t end, bool newline);

  asio::posix::stream_descriptor pipe_;
  std::shared_ptr<const WorkerOutputHandler> handler_;
  const int worker_id_;
  const pid_t pid_;
  const OutputStream stream_;
  Listener* listener_ = nullptr;
  bool closed_ = false;
  // Fixed: a worker's output never grows the parent's memory.
  std::unique_ptr<char[]> buffer_ = std::make_unique<char[]>(kWorkerOutputLineBytes);
  std::size_t used_ = 0;
  std::size_t scanned_ = 0;  // bytes of buffer_ known to hold no newline
  std::uint64_t bytes_read_ = 0;
};

}  // namespace corun::detail
