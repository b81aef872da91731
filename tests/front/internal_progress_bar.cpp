// The progress bar's line, exactly, and when a bar is drawn: no terminal, no processes.
#define CATCH_CONFIG_MAIN
#include "front/progress_bar.hpp"

#include <asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <regex>
#include <string>

using namespace corun;
using namespace corun::detail;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {
ProgressState state(std::size_t done, std::optional<std::size_t> total,
                    std::chrono::nanoseconds elapsed, std::size_t failed = 0) {
  ProgressState s;
  s.done = done;
  s.failed = failed;
  s.total = total;
  s.elapsed = elapsed;
  return s;
}

/// Sets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

struct Pipe {
  Pipe() {
    if (::pipe2(fds, O_CLOEXEC) != 0) std::abort();
  }
  ~Pipe() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  std::string drain() {
    ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
    std::string out;
    char buf[4096];
    ssize_t n = 0;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
    return out;
  }
  int fds[2];
};
}  // namespace

TEST_CASE("the bar's line shows done/total, percent, rate, elapsed and ETA", "[progress]") {
  CHECK(
      format_progress(state(37, 100, seconds(3)), "slices") ==
      " 37/100 [###########...................]  37% | 12.3 slices/s | 00:03 elapsed | ETA 00:05");
  CHECK(format_progress(state(0, 100, seconds(0)), "slices") ==
        "  0/100 [..............................]   0% | - slices/s | 00:00 elapsed | ETA --:--");
  CHECK(
      format_progress(state(100, 100, milliseconds(8500)), "slices") ==
      "100/100 [##############################] 100% | 11.8 slices/s | 00:08 elapsed | ETA 00:00");
  CHECK(format_progress(state(0, 0, seconds(1)), "items") ==
        "0/0 [##############################] 100% | 0.0 items/s | 00:01 elapsed | ETA 00:00");
}

TEST_CASE("the bar names failures, large rates and long runs", "[progress]") {
  CHECK(format_progress(state(37, 100, seconds(3), 2), "slices") ==
        " 37/100 [###########...................]  37% | 12.3 slices/s | 00:03 elapsed | ETA 00:05 "
        "| 2 failed");
  CHECK(format_progress(state(2'000'000, 4'000'000, seconds(4)), "items") ==
        "2000000/4000000 [###############...............]  50% | 500.0k items/s | 00:04 elapsed | "
        "ETA 00:04");
  CHECK(format_progress(state(10'000'000, 10'000'000, seconds(2)), "items") ==
        "10000000/10000000 [##############################] 100% | 5.0M items/s | 00:02 elapsed | "
        "ETA 00:00");
  CHECK(format_progress(state(1, 2, seconds(3725)), "items") ==
        "1/2 [###############...............]  50% | 0.0 items/s | 1:02:05 elapsed | ETA 1:02:05");
}

TEST_CASE("without a total the bar counts and gives the rate, but no percent or ETA",
          "[progress]") {
  CHECK(format_progress(state(1500, std::nullopt, seconds(2)), "items") ==
        "1500 items | 750.0 items/s | 00:02 elapsed");
  CHECK(format_progress(state(1500, std::nullopt, seconds(2), 3), "items") ==
        "1500 items | 750.0 items/s | 00:02 elapsed | 3 failed");
}

TEST_CASE("a bar is drawn on a terminal only, unless forced; the environment overrides",
          "[progress]") {
  Pipe pipe;
  const int not_a_terminal = pipe.fds[1];
  ::unsetenv("CORUN_PROGRESS_BAR");
  CHECK_FALSE(progress_bar_drawn(ProgressBar::off, not_a_terminal));
  CHECK_FALSE(progress_bar_drawn(ProgressBar::on, not_a_terminal));
  CHECK(progress_bar_drawn(ProgressBar::always, not_a_terminal));
  {
    ScopedEnv env("CORUN_PROGRESS_BAR", "always");
    CHECK(progress_bar_drawn(ProgressBar::on, not_a_terminal));
    CHECK_FALSE(progress_bar_drawn(ProgressBar::off, not_a_terminal));  // the program said no
  }
  {
    ScopedEnv env("CORUN_PROGRESS_BAR", "never");
    CHECK_FALSE(progress_bar_drawn(ProgressBar::always, not_a_terminal));
  }
  {
    ScopedEnv env("CORUN_PROGRESS_BAR", "sometimes");  // not a value: the program decides
    CHECK_FALSE(progress_bar_drawn(ProgressBar::on, not_a_terminal));
    CHECK(progress_bar_drawn(ProgressBar::always, not_a_terminal));
  }
}

TEST_CASE("a bar draws its first state, then its last on a line of its own, and stops",
          "[progress]") {
  Pipe pipe;
  asio::io_context io;
  auto bar =
      TerminalProgress::open(ProgressBar::always, io.get_executor(), 5, "items", pipe.fds[1]);
  REQUIRE(bar);
  CHECK(bar->draws() == 1);
  bar->update(3, 1);
  bar->finish();
  bar->finish();  // once only
  CHECK(bar->draws() == 2);
  io.run();  // the cancelled redraw timer draws nothing
  CHECK(bar->draws() == 2);
  const std::string out = std::regex_replace(
      pipe.drain(),
      std::regex(R"(\| (-|[0-9.]+[kM]?) items/s \| \d\d:\d\d elapsed \| ETA (--:--|\d\d:\d\d))"),
      "| R items/s | T elapsed | ETA E");
  CHECK(out ==
        "\r0/5 [..............................]   0% | R items/s | T elapsed | ETA E\x1b[K"
        "\r3/5 [##################............]  60% | R items/s | T elapsed | ETA E | 1 "
        "failed\x1b[K\n");
  CHECK(TerminalProgress::open(ProgressBar::on, io.get_executor(), 5, "items", pipe.fds[1]) ==
        nullptr);
}
