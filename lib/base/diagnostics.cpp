/// \file
/// The diagnostics sink: corun's own messages go to the program's handler or to stderr.
/// Side: both.
#include <corun/diagnostics.hpp>

#include "base/diagnostics.hpp"

#include <unistd.h>
#include <atomic>
#include <cerrno>
#include <memory>
#include <mutex>
#include <string_view>
#include <utility>

namespace corun {

namespace {
struct Sink {
  std::mutex mutex;  // guards handler
  std::shared_ptr<const DiagnosticsHandler> handler;
  // Serialises the calls; recursive, so that a handler that makes corun report (or reports
  // itself) does not deadlock.
  std::recursive_mutex calling;
};
// Never destroyed: messages may come from static initialisers and destructors.
Sink& sink() {
  static Sink* s = new Sink;
  return *s;
}
std::atomic<bool> stderr_only{false};

/// The message and a newline on fd 2: only write(2), so it serves a forked worker too.
void write_stderr(std::string_view message) noexcept {
  const auto put = [](const char* data, std::size_t size) {
    while (size > 0) {
      const ssize_t n = ::write(STDERR_FILENO, data, size);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      data += n;
      size -= static_cast<std::size_t>(n);
    }
  };
  put(message.data(), message.size());
  put("\n", 1);
}
}  // namespace

DiagnosticsHandler set_diagnostics_handler(DiagnosticsHandler handler) {
  auto next = handler ? std::make_shared<const DiagnosticsHandler>(std::move(handler)) : nullptr;
  std::shared_ptr<const DiagnosticsHandler> previous;
  {
    const std::lock_guard lock(sink().mutex);
    previous = std::exchange(sink().handler, std::move(next));
  }
  return previous ? *previous : DiagnosticsHandler{};
}

namespace detail {

void diagnose(std::string_view message) noexcept {
  if (!stderr_only.load(std::memory_order_relaxed)) {
    Sink& s = sink();
    std::shared_ptr<const DiagnosticsHandler> handler;
    {
      const std::lock_guard lock(s.mutex);
      handler = s.handler;
    }
    if (handler) try {
        const std::lock_guard calling(s.calling);
        (*handler)(message);
        return;
      } catch (...) {
        // The handler failed: the message still reaches someone.
      }
  }
  write_stderr(message);
}

void diagnose_to_stderr_only() noexcept {
  stderr_only.store(true, std::memory_order_relaxed);
}

}  // namespace detail
}  // namespace corun
