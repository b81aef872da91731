/// \file
/// What the TaskService seam shares: the cancelled-task error.
/// Side: parent.
#include <corun/detail/task_service.hpp>

#include <asio/error.hpp>

#include <system_error>

namespace corun::detail {

std::exception_ptr aborted_error() {
  return std::make_exception_ptr(
      std::system_error(asio::error::operation_aborted, "corun: operation cancelled"));
}

bool is_aborted(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::system_error& e) {
    return e.code() == asio::error::operation_aborted;
  } catch (...) {
    return false;
  }
}

void mark_failed(TaskResult& result, TaskError error) {
  static constexpr TaskOutcome by_kind[] = {TaskOutcome::exception, TaskOutcome::crashed,
                                            TaskOutcome::timeout, TaskOutcome::protocol};
  result.record.outcome = by_kind[static_cast<int>(error.kind)];
  result.task_error = error;
  result.error = std::make_exception_ptr(TaskFailed(std::move(error)));
}

}  // namespace corun::detail
