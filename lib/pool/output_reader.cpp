/// \file
/// Reading a worker's captured stdout or stderr and cutting it into lines.
/// Side: parent.
#include "pool/output_reader.hpp"

#include <corun/diagnostics.hpp>

#include <asio/buffer.hpp>
#include <asio/error.hpp>

#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <utility>

namespace corun::detail {

OutputReader::OutputReader(const asio::any_io_executor& strand, UniqueFd pipe,
                           std::shared_ptr<const WorkerOutputHandler> handler, int worker_id,
                           pid_t pid, OutputStream stream)
    : pipe_(strand, pipe.release()),
      handler_(std::move(handler)),
      worker_id_(worker_id),
      pid_(pid),
      stream_(stream) {
  std::error_code ignored;  // without it, read_some() below would block the loop
  pipe_.non_blocking(true, ignored);
}

void OutputReader::start(Listener* listener) {
  listener_ = listener;
  read_more();
}

void OutputReader::close() noexcept {
  closed_ = true;
  listener_ = nullptr;
  std::error_code ignored;
  pipe_.close(ignored);
}

std::uint64_t OutputReader::bytes_waiting() noexcept {
  if (closed_) return 0;
  asio::posix::descriptor_base::bytes_readable command(true);
  std::error_code ec;
  pipe_.io_control(command, ec);
  return ec ? 0 : command.get();
}

void OutputReader::read_more() {
  // One read at a time, into what is left of the fixed buffer: while the handler has not taken
  // the lines, nothing more is read, the pipe fills, and the worker's write(2) waits. The read
  // itself happens in the handler, not in the reactor, so that bytes_read() and bytes_waiting()
  // account for every byte whenever the strand looks at them.
  pipe_.async_wait(asio::posix::stream_descriptor::wait_read,
                   [self = shared_from_this()](std::error_code ec) { self->on_readable(ec); });
}

void OutputReader::on_readable(std::error_code ec) {
  // A wait that completed before close() still comes here: nothing more is read.
  if (closed_) return;
  std::size_t n = 0;
  if (!ec) {
    n = pipe_.read_some(asio::buffer(buffer_.get() + used_, kWorkerOutputLineBytes - used_), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again ||
        ec == asio::error::interrupted)
      return read_more();
  }
  on_read(ec, n);
}

void OutputReader::on_read(std::error_code ec, std::size_t n) {
  if (!ec) {
    used_ += n;
    bytes_read_ += n;
    deliver_lines();
    if (!closed_) read_more();
    return;
  }
  // The end of the stream (or an error that ends it): the last bytes, without a newline.
  if (used_ > 0) deliver(0, used_, false);
  used_ = scanned_ = 0;
  Listener* listener = listener_;
  close();
  if (listener) listener->on_output_closed();
}

void OutputReader::deliver_lines() {
  std::size_t begin = 0;
  while (const void* found = std::memchr(buffer_.get() + scanned_, '\n', used_ - scanned_)) {
    const auto newline = static_cast<std::size_t>(static_cast<const char*>(found) - buffer_.get());
    deliver(begin, newline, true);
    if (closed_) return;
    begin = scanned_ = newline + 1;
  }
  if (begin == 0 && used_ == kWorkerOutputLineBytes) {
    deliver(0, used_, false);  // a piece of a longer line
    used_ = scanned_ = 0;
    return;
  }
  std::memmove(buffer_.get(), buffer_.get() + begin, used_ - begin);
  used_ -= begin;
  scanned_ = used_;
}

void OutputReader::deliver(std::size_t begin, std::size_t end, bool newline) {
  WorkerOutputLine line;
  line.worker_id = worker_id_;
  line.pid = pid_;
  line.stream = stream_;
  line.text = std::string_view(buffer_.get() + begin, end - begin);
  line.newline = newline;
  try {
    (*handler_)(line);
  } catch (const std::exception& e) {
    diagnose(std::string("corun: the worker_output handler threw on a line of worker ") +
             std::to_string(worker_id_) + " (pid " + std::to_string(pid_) + "): " + e.what());
  } catch (...) {
    diagnose("corun: the worker_output handler threw a non-std::exception on a line of worker " +
             std::to_string(worker_id_) + " (pid " + std::to_string(pid_) + ")");
  }
}

}  // namespace corun::detail
