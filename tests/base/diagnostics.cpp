#include <corun/diagnostics.hpp>

#include "support/support.hpp"

#include <unistd.h>
#include <atomic>
#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace corun;

namespace {
/// What `body` makes corun write to stderr (fd 2, a pipe meanwhile), up to the first newline.
template <class Body>
std::string stderr_line_of(Body body) {
  int err[2];
  REQUIRE(::pipe(err) == 0);
  const int saved = ::dup(2);
  ::dup2(err[1], 2);
  body();
  ::dup2(saved, 2);
  ::close(saved);
  ::close(err[1]);
  std::string line = corun::test::read_line(err[0]);
  ::close(err[0]);
  return line;
}
}  // namespace

TEST_CASE("corun's messages go to stderr by default, to a handler once set, and back", "[diag]") {
  CHECK(stderr_line_of([] { detail::diagnose("corun: by default"); }) == "corun: by default");

  std::vector<std::string> got;
  CHECK(!set_diagnostics_handler([&](std::string_view m) { got.emplace_back(m); }));
  CHECK(stderr_line_of([] {
          detail::diagnose("corun: to the handler");
          detail::diagnose("corun: not to stderr");
        }).empty());
  CHECK(got == std::vector<std::string>{"corun: to the handler", "corun: not to stderr"});

  // The previous handler comes back, and an empty one restores stderr.
  const DiagnosticsHandler previous = set_diagnostics_handler({});
  REQUIRE(previous);
  previous("called directly");
  CHECK(got.back() == "called directly");
  CHECK(stderr_line_of([] { detail::diagnose("corun: stderr again"); }) == "corun: stderr again");
  CHECK(got.size() == 3);
}

TEST_CASE("a handler that throws loses no message: it goes to stderr", "[diag]") {
  set_diagnostics_handler([](std::string_view) { throw std::runtime_error("no"); });
  CHECK(stderr_line_of([] { detail::diagnose("corun: still heard"); }) == "corun: still heard");
  set_diagnostics_handler({});
}

TEST_CASE("messages from 4 threads reach the handler one at a time, none lost", "[diag]") {
  std::atomic<int> inside{0};
  std::atomic<bool> overlapped{false};
  std::size_t count = 0;  // guarded by the sink's serialisation
  const DiagnosticsHandler counting = [&](std::string_view m) {
    if (inside.fetch_add(1) != 0) overlapped = true;
    if (m == "corun: from a thread") ++count;
    inside.fetch_sub(1);
  };
  set_diagnostics_handler(counting);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([] {
      for (int i = 0; i < 2000; ++i) detail::diagnose("corun: from a thread");
    });
  // Replacing the handler while messages flow is safe too (each copy counts into `count`).
  for (int i = 0; i < 200; ++i) set_diagnostics_handler(counting);
  for (auto& t : threads) t.join();
  set_diagnostics_handler({});
  CHECK(!overlapped);
  CHECK(count == 8000);
}
