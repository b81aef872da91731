#pragma once
/// \file
/// WorkerOutputLine and WorkerOutputHandler: the lines a pool's worker processes write to their
/// stdout and stderr, delivered to the program (PoolOptions::worker_output) instead of going
/// straight to the parent's terminal or log.
/// Side: parent.

#include <corun/detail/config.hpp>

#include <sys/types.h>
#include <cstddef>
#include <functional>
#include <string_view>

namespace corun {

/// Which of a worker's output streams a line came from.
enum class OutputStream {
  out,  ///< its stdout (fd 1)
  err,  ///< its stderr (fd 2), where corun's own messages in a worker go too
};

/// The longest piece of one line delivered at once: a line of this many bytes or more arrives
/// in pieces of this many bytes (each with `newline == false`), then the rest (perhaps empty)
/// with `newline == true`. It is also all the parent holds of one stream.
inline constexpr std::size_t kWorkerOutputLineBytes = std::size_t{64} << 10;

/// One line (or one piece of a long line) a worker process wrote.
struct WorkerOutputLine {
  int worker_id = 0;  ///< the worker's slot, 0 .. workers - 1 (WorkerInfo::worker_id)
  pid_t pid = 0;      ///< the worker process that wrote it
  OutputStream stream = OutputStream::out;  ///< which of its streams: stdout or stderr
  /// The bytes, without the newline; valid during the call only (copy it to keep it).
  std::string_view text;
  /// Whether a newline ended this text in the output. False for a piece of a line longer than
  /// kWorkerOutputLineBytes (the line goes on in the next call for this stream) and for the
  /// last bytes a worker wrote without a newline before its stream closed (it exited or
  /// crashed). So the stream's bytes are exactly the texts, each followed by '\n' when
  /// `newline` is true.
  bool newline = true;
};

/// Called on the pool's executor (its strand: never two at once, never concurrently with the
/// pool's other handlers), in the order the worker wrote the lines of each stream. An exception
/// it throws is reported through the diagnostics sink (corun/diagnostics.hpp) and capture goes
/// on.
using WorkerOutputHandler = std::function<void(const WorkerOutputLine& line)>;

}  // namespace corun
