#pragma once
/// \file
/// ErrorPolicy: what a run or a map does when a task fails.
/// Side: parent.

#include <corun/detail/config.hpp>

namespace corun {

/// What a run does when a task fails.
enum class ErrorPolicy {
  fail_fast,  ///< stop dispatching, drain, and fail the run with corun::RunError
  collect,    ///< run every slice; the report lists the failures
};

}  // namespace corun
