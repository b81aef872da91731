/// \file
/// The failed inputs of one async_map (parent/orchestrator side).
/// Side: parent.
#include "front/map_failures.hpp"

#include <algorithm>
#include <utility>

namespace corun::detail {

TaskError MapFailures::of_input(const std::string& worker, const TaskRecord& record,
                                std::size_t index, ChunkEnd end) {
  TaskError error;
  error.kind = TaskErrorKind::exception;
  error.worker = worker;
  error.slice = Slice{index, index + 1};
  error.pid = record.pid;
  error.exception_type = std::move(end.failure_type);
  error.message = "input " + std::to_string(index) + ": " + end.failure_message;
  error.attempts = std::max(record.attempts, 1);
  error.rank = record.rank;
  return error;
}

std::exception_ptr MapFailures::take_error() {
  if (errors_.empty()) return nullptr;
  // By input, whatever order the chunks came back in.
  std::stable_sort(errors_.begin(), errors_.end(), [](const TaskError& a, const TaskError& b) {
    return a.slice.start < b.slice.start;
  });
  return std::make_exception_ptr(RunError(std::move(errors_)));
}

}  // namespace corun::detail
