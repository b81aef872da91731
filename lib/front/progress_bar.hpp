#pragma once
/// \file
/// The terminal progress bar of orchestrator runs (and of any front-end that counts finished
/// items): a pure formatter, the decision whether to draw, and TerminalProgress, which redraws
/// the line from a 10 Hz timer and leaves the last state on screen.
/// Side: parent.
///
/// Use: `auto bar = TerminalProgress::open(mode, strand, total, "items");` (null when no bar is
/// to be drawn), then `bar->update(done, failed)` as items finish and `bar->finish()` at the end,
/// all on `strand`.

#include <corun/progress.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>

#include <unistd.h>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace corun::detail {

/// What a bar shows.
struct ProgressState {
  std::size_t done = 0;              ///< finished items, failed ones included
  std::size_t failed = 0;            ///< of which failed
  std::optional<std::size_t> total;  ///< unknown for an input range of unknown length
  std::chrono::nanoseconds elapsed{0};
};

/// The bar's line, without control characters:
/// ` 37/100 [###########...................]  37% | 12.5 items/s | 00:03 elapsed | ETA 00:05`,
/// `| 2 failed` appended when some failed; `37 items | 12.5 items/s | 00:03 elapsed` when the
/// total is unknown.
std::string format_progress(const ProgressState& state, std::string_view unit);

/// Whether a bar in `mode` is drawn on `fd`: `on` when `fd` is a terminal, `always` in any
/// case; the environment variable CORUN_PROGRESS_BAR=always or =never overrides both.
bool progress_bar_drawn(ProgressBar mode, int fd);

class TerminalProgress : public std::enable_shared_from_this<TerminalProgress> {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kRedrawInterval{100};

  /// A started bar, or null when progress_bar_drawn(mode, fd) is false.
  static std::shared_ptr<TerminalProgress> open(ProgressBar mode,
                                                const asio::any_io_executor& executor,
                                                std::optional<std::size_t> total, std::string unit,
                                                int fd = STDERR_FILENO);

  TerminalProgress(const asio::any_io_executor& executor, std::optional<std::size_t> total,
                   std::string unit, int fd);

  /// Draws the empty bar and starts redrawing every kRedrawInterval.
  void start();
  void set_total(std::optional<std::size_t> total) { state_.total = total; }
  /// Counts; drawn at the next redraw.
  void update(std::size_t done, std::size_t failed) {
    state_.done = done;
    state_.failed = failed;
  }
  /// Draws the last state and ends the line; later calls do nothing.
  void finish();
  /// Lines drawn so far.
  std::size_t draws() const noexcept { return draws_; }

 private:
  void draw();
  void schedule();

  asio::steady_timer timer_;
  ProgressState state_;
  std::string unit_;
  int fd_;
  Clock::time_point started_{};
  std::size_t draws_ = 0;
  bool finished_ = false;
};

}  // namespace corun::detail
