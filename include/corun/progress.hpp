#pragma once
/// \file
/// ProgressBar: whether a run draws a terminal progress bar on stderr.
/// Side: parent.
///
/// The bar shows done/total, the percentage, items per second, the elapsed time and the ETA;
/// it is redrawn at most 10 times a second, on one line, and its last state stays on screen:
/// \code
/// 37/100 [###########...................]  37% | 12.5 slices/s | 00:03 elapsed | ETA 00:05
/// \endcode
/// The environment variable CORUN_PROGRESS_BAR overrides what the program chose, without a
/// rebuild: `always` draws it even when stderr is not a terminal (a CI log), `never` hides it.

#include <corun/detail/config.hpp>

namespace corun {

/// Whether a run draws the bar (OrchestratorOptions::progress_bar, MapOptions::progress_bar);
/// CORUN_PROGRESS_BAR overrides it.
enum class ProgressBar {
  off,     ///< no bar (the default)
  on,      ///< a bar when stderr is a terminal
  always,  ///< a bar even when stderr is a file or a pipe
};

}  // namespace corun
