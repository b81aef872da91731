/// \file
/// The terminal progress bar.
/// Side: parent.
#include "front/progress_bar.hpp"

#include "base/text_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace corun::detail {

namespace {
constexpr std::size_t kBarWidth = 30;

/// "MM:SS", or "H:MM:SS" from an hour on.
std::string clock_time(double seconds) {
  const auto s = static_cast<long long>(seconds);
  char text[32];
  if (s >= 3600)
    std::snprintf(text, sizeof text, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(text, sizeof text, "%02lld:%02lld", s / 60, s % 60);
  return text;
}

std::string rate_text(double per_second) {
  if (per_second < 1e3) return format_fixed(per_second, 1);
  if (per_second < 1e6) return format_fixed(per_second / 1e3, 1) + 'k';
  return format_fixed(per_second / 1e6, 1) + 'M';
}

void write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // a bar is not worth failing a run for
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}
}  // namespace

std::string format_progress(const ProgressState& state, std::string_view unit) {
  const double elapsed = std::chrono::duration<double>(state.elapsed).count();
  const double rate = elapsed > 0 ? static_cast<double>(state.done) / elapsed : 0;
  const std::string rate_part = " | " + (elapsed > 0 ? rate_text(rate) : std::string("-")) + ' ' +
                                std::string(unit) + "/s | " + clock_time(elapsed) + " elapsed";
  const std::string failed_part =
      state.failed != 0 ? " | " + std::to_string(state.failed) + " failed" : std::string();
  if (!state.total)
    return std::to_string(state.done) + ' ' + std::string(unit) + rate_part + failed_part;

  const std::size_t total = *state.total;
  const std::size_t done = std::min(state.done, total);
  const std::string total_text = std::to_string(total);
  std::string done_text = std::to_string(done);
  if (done_text.size() < total_text.size())
    done_text.insert(0, total_text.size() - done_text.size(), ' ');
  const std::size_t filled = total == 0 ? kBarWidth : done * kBarWidth / total;
  const std::size_t percent = total == 0 ? 100 : done * 100 / total;
  std::string percent_text = std::to_string(percent);
  percent_text.insert(0, 3 - percent_text.size(), ' ');
  std::string eta = "--:--";
  if (done == total)
    eta = clock_time(0);
  else if (done != 0 && elapsed > 0)
    eta = clock_time(static_cast<double>(total - done) * elapsed / static_cast<double>(done));
  return done_text + '/' + total_text + " [" + std::string(filled, '#') +
         std::string(kBarWidth - filled, '.') + "] " + percent_text + '%' + rate_part + " | ETA " +
         eta + failed_part;
}

bool progress_bar_drawn(ProgressBar mode, int fd) {
  if (mode == ProgressBar::off) return false;
  if (const char* env = std::getenv("CORUN_PROGRESS_BAR")) {
    const std::string_view v(env);
    if (v == "always") return true;
    if (v == "never") return false;
  }
  return mode == ProgressBar::always || ::isatty(fd) == 1;
}

std::shared_ptr<TerminalProgress> TerminalProgress::open(ProgressBar mode,
                                                         const asio::any_io_executor& executor,
                                                         std::optional<std::size_t> total,
                                                         std::string unit, int fd) {
  if (!progress_bar_drawn(mode, fd)) return nullptr;
  auto bar = std::make_shared<TerminalProgress>(executor, total, std::move(unit), fd);
  bar->start();
  return bar;
}

TerminalProgress::TerminalProgress(const asio::any_io_executor& executor,
                                   std::optional<std::size_t> total, std::string unit, int fd)
    : timer_(executor), unit_(std::move(unit)), fd_(fd) {
  state_.total = total;
}

void TerminalProgress::start() {
  started_ = Clock::now();
  draw();
  schedule();
}

void TerminalProgress::schedule() {
  timer_.expires_after(kRedrawInterval);
  timer_.async_wait([weak = weak_from_this()](std::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || self->finished_) return;
    self->draw();
    self->schedule();
  });
}

void TerminalProgress::draw() {
  state_.elapsed = Clock::now() - started_;
  // Back to the line's start, the line, then clear what a longer line left behind.
  write_all(fd_, '\r' + format_progress(state_, unit_) + "\x1b[K" + (finished_ ? "\n" : ""));
  ++draws_;
}

void TerminalProgress::finish() {
  if (finished_) return;
  finished_ = true;
  timer_.cancel();
  draw();
}

}  // namespace corun::detail
