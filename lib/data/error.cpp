/// \file
/// corun's std::error_category and TaskError (both sides: a worker's failure, as the parent
/// reports it).
/// Side: both.
#include <corun/error.hpp>

#include <utility>

namespace corun {

namespace {
class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "corun"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::segment_not_found:
        return "shared-memory segment not found";
      case errc::segment_too_small:
        return "shared-memory segment too small";
      case errc::not_enough_shared_memory:
        return "not enough free space in /dev/shm";
      case errc::segment_exists:
        return "shared-memory segment exists already";
      case errc::dtype_mismatch:
        return "element type mismatch";
      case errc::worker_not_registered:
        return "worker type not registered";
      case errc::protocol_error:
        return "malformed message between parent and worker";
      case errc::result_too_large:
        return "task result too large";
      case errc::task_exception:
        return "task threw an exception";
      case errc::worker_crashed:
        return "worker process died";
      case errc::task_timeout:
        return "task timed out";
      case errc::worker_start_failed:
        return "worker process failed to start";
      case errc::pool_closed:
        return "process pool closed";
      case errc::permission_denied:
        return "permission denied on shared-memory segment";
      case errc::no_cpu_samples:
        return "CPU series has no columns: nothing was sampled";
      case errc::memory_exceeded:
        return "task exceeded the worker's memory limit";
      case errc::rank_lost:
        return "the cluster rank that held or ran the task was lost";
    }
    return "unknown corun error " + std::to_string(value);
  }
};
}  // namespace

const std::error_category& error_category() noexcept {
  static const Category category;
  return category;
}

const char* to_string(TaskErrorKind kind) noexcept {
  switch (kind) {
    case TaskErrorKind::exception:
      return "exception";
    case TaskErrorKind::crashed:
      return "crashed";
    case TaskErrorKind::timeout:
      return "timeout";
    case TaskErrorKind::protocol:
      return "protocol";
    case TaskErrorKind::memory_exceeded:
      return "memory_exceeded";
    case TaskErrorKind::rank_lost:
      return "rank_lost";
  }
  return "unknown";
}

std::string TaskError::describe() const {
  std::string s = std::string(to_string(kind)) + " in worker " + worker + " slice [" +
                  std::to_string(slice.start) + ", " + std::to_string(slice.end) + ")";
  if (pid != 0) s += " (pid " + std::to_string(pid) + ")";
  if (rank >= 0) s += " on rank " + std::to_string(rank);
  s += ": ";
  if (!exception_type.empty()) s += exception_type + ": ";
  s += message;
  if (attempts > 1) s += " (after " + std::to_string(attempts) + " attempts)";
  return s;
}

namespace {
errc code_of(TaskErrorKind kind) {
  switch (kind) {
    case TaskErrorKind::exception:
      return errc::task_exception;
    case TaskErrorKind::crashed:
      return errc::worker_crashed;
    case TaskErrorKind::timeout:
      return errc::task_timeout;
    case TaskErrorKind::protocol:
      return errc::protocol_error;
    case TaskErrorKind::memory_exceeded:
      return errc::memory_exceeded;
    case TaskErrorKind::rank_lost:
      return errc::rank_lost;
  }
  return errc::task_exception;
}

std::string summarize(const std::vector<TaskError>& errors) {
  std::string s = std::to_string(errors.size()) + " task(s) failed";
  if (!errors.empty()) s += "; first: " + errors.front().describe();
  return s;
}
}  // namespace

TaskFailed::TaskFailed(TaskError error)
    : Error(code_of(error.kind), error.describe()), error_(std::move(error)) {}

RunError::RunError(std::vector<TaskError> errors)
    : std::runtime_error(summarize(errors)), errors_(std::move(errors)) {}

}  // namespace corun
