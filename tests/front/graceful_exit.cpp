// A main that uses GracefulStop as programs do (array, pool, GracefulStop, destroyed in reverse),
// for graceful_exit.py to signal at known points: it prints a line at each, then waits for a
// line on stdin. With --cancel it hands the signals back without a stop.
#include <corun/graceful_stop.hpp>
#include <corun/pool.hpp>
#include <corun/shared_array.hpp>

#include <asio/io_context.hpp>

#include <unistd.h>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>

namespace {
void say(const char* line) {
  std::printf("%s\n", line);
  std::fflush(stdout);
}
/// Waits for one line on stdin (whatever signals interrupt the read).
void wait_line() {
  char c = 0;
  for (;;) {
    const ssize_t n = ::read(0, &c, 1);
    if (n == 1 && c == '\n') return;
    if (n == 0 || (n < 0 && errno != EINTR)) return;
  }
}
}  // namespace

int main(int argc, char** argv) {
  corun::enter_worker_if_spawned(argc, argv);
  const bool cancel = argc > 1 && std::strcmp(argv[1], "--cancel") == 0;
  auto array = corun::SharedArray<std::int64_t>::create({1000});
  std::printf("segment %s\n", array.name().c_str());
  asio::io_context io;
  {
    corun::ProcessPool pool{io.get_executor(), {.workers = 2}};
    std::optional<corun::GracefulStop> stop{pool};
    pool.async_wait_ready([&](std::exception_ptr) {
      if (cancel) stop->cancel();
      say(cancel ? "cancelled" : "ready");
      if (cancel) pool.terminate();
    });
    io.run();  // until the pool is down: after a stop, or after terminate
    say("stopped");
    wait_line();
    stop.reset();
    say("gone");
    wait_line();
  }
  say("done");
  wait_line();
  return 0;
}
