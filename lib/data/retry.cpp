/// \file
/// Which failures a RetryPolicy runs again, after which wait, and which policies make sense.
/// Side: parent.
#include <corun/retry.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

namespace corun {

namespace {
[[noreturn]] void bad(const std::string& what) {
  throw std::invalid_argument("corun::RetryPolicy: " + what);
}
}  // namespace

std::chrono::milliseconds Backoff::delay(int retry) const noexcept {
  if (retry < 1) return std::chrono::milliseconds{0};
  // In doubles, so a large retry count saturates at max instead of overflowing.
  const double wanted =
      static_cast<double>(initial.count()) * std::pow(factor, static_cast<double>(retry - 1));
  if (!(wanted < static_cast<double>(max.count()))) return max;
  return std::chrono::milliseconds{static_cast<std::chrono::milliseconds::rep>(wanted)};
}

bool RetryOn::matches(const TaskError& error) const {
  // Neither can succeed by running again: a protocol failure fails the same way every time, and
  // a lost rank's rows are gone with it (async_map's chunks are sent again without a policy).
  if (error.kind == TaskErrorKind::protocol || error.kind == TaskErrorKind::rank_lost) return false;
  if (std::find(kinds.begin(), kinds.end(), error.kind) == kinds.end()) return false;
  if (error.kind != TaskErrorKind::exception || exception_types.empty()) return true;
  return std::find(exception_types.begin(), exception_types.end(), error.exception_type) !=
         exception_types.end();
}

bool RetryPolicy::should_retry(const TaskError& error) const {
  return error.attempts < attempts && retry_on.matches(error);
}

void RetryPolicy::validate() const {
  if (attempts < 1)
    bad("attempts = " + std::to_string(attempts) +
        ": must be at least 1 (it counts runs, the first included; 1 turns retries off)");
  if (backoff.initial.count() < 0)
    bad("backoff.initial = " + std::to_string(backoff.initial.count()) +
        " ms: must be 0 (retry at once) or more");
  if (!(backoff.factor >= 1.0)) {
    std::ostringstream factor;
    factor << backoff.factor;
    bad("backoff.factor = " + factor.str() + ": must be at least 1 (1: the same wait each time)");
  }
  if (backoff.max < backoff.initial)
    bad("backoff.max = " + std::to_string(backoff.max.count()) + " ms is below backoff.initial = " +
        std::to_string(backoff.initial.count()) + " ms: raise max or lower initial");
  if (retry_on.kinds.empty())
    bad("retry_on.kinds is empty, so nothing would be retried: name the kinds, or set "
        "attempts = 1 to turn retries off");
  for (const TaskErrorKind kind : retry_on.kinds) {
    if (kind == TaskErrorKind::protocol)
      bad("retry_on.kinds holds protocol: a task that cannot run fails the same way every "
          "time; remove it");
    if (kind == TaskErrorKind::rank_lost)
      bad("retry_on.kinds holds rank_lost: the rows of a lost rank are gone with it, and "
          "async_map's chunks are sent again to a surviving rank anyway; remove it");
    if (kind != TaskErrorKind::exception && kind != TaskErrorKind::crashed &&
        kind != TaskErrorKind::timeout && kind != TaskErrorKind::memory_exceeded)
      bad("retry_on.kinds holds " + std::to_string(static_cast<int>(kind)) +
          ", which is no TaskErrorKind");
  }
  const bool exceptions = std::find(retry_on.kinds.begin(), retry_on.kinds.end(),
                                    TaskErrorKind::exception) != retry_on.kinds.end();
  if (!retry_on.exception_types.empty() && !exceptions)
    bad("retry_on.exception_types names \"" + retry_on.exception_types.front() +
        "\" but retry_on.kinds has no exception: add TaskErrorKind::exception to kinds");
  for (const std::string& type : retry_on.exception_types)
    if (type.empty())
      bad("retry_on.exception_types holds an empty name: give demangled type names such as "
          "\"std::runtime_error\"");
}

}  // namespace corun
