/// \file
/// What the TaskService seam defines besides its interface: making task specs (validated,
/// numbered, encoded once for every worker), the cancelled-task error, a failed task's result.
/// Side: parent.
#include <corun/detail/task_service.hpp>

#include "seam/spec_codec.hpp"

#include <corun/slice_view.hpp>

#include <asio/error.hpp>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <system_error>
#include <utility>

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

namespace {
TaskOutcome outcome_of(TaskErrorKind kind) noexcept {
  switch (kind) {
    case TaskErrorKind::exception:
      return TaskOutcome::exception;
    case TaskErrorKind::crashed:
      return TaskOutcome::crashed;
    case TaskErrorKind::timeout:
      return TaskOutcome::timeout;
    case TaskErrorKind::protocol:
      return TaskOutcome::protocol;
    case TaskErrorKind::memory_exceeded:
      return TaskOutcome::memory_exceeded;
    case TaskErrorKind::rank_lost:
      return TaskOutcome::rank_lost;
  }
  return TaskOutcome::exception;
}
}  // namespace

void mark_failed(TaskResult& result, TaskError error) {
  result.record.outcome = outcome_of(error.kind);
  result.task_error = error;
  result.error = std::make_exception_ptr(TaskFailed(std::move(error)));
}

namespace {
std::uint64_t next_spec_id() {
  static std::atomic<std::uint64_t> last{0};
  return ++last;
}

void check_params_size(const std::string& params) {
  if (params.size() > kMaxParamsBytes)
    throw std::invalid_argument("corun: encoded parameters of " + std::to_string(params.size()) +
                                " bytes exceed the limit of " + std::to_string(kMaxParamsBytes) +
                                ": put large data in a SharedArray and pass its name instead");
}
}  // namespace

std::shared_ptr<const TaskSpec> make_task_spec(std::string worker_name, DataIterator iterator,
                                               std::optional<ArrayInfo> output, std::string params,
                                               std::optional<BlockMap> block_map) {
  iterator.validate();
  if (output) DataIterator::over(*output, 1);  // validates the output's metadata
  check_params_size(params);
  auto spec = std::make_shared<TaskSpec>();
  spec->id = next_spec_id();
  spec->input_inode = segment_inode(iterator.shm_name);
  spec->output_inode = output ? segment_inode(output->name) : 0;
  spec->worker_name = std::move(worker_name);
  spec->iterator = std::move(iterator);
  spec->output = std::move(output);
  spec->params = std::move(params);
  spec->block_map = block_map;
  spec->encoded = encode_spec(*spec);
  return spec;
}

std::shared_ptr<const TaskSpec> make_function_spec(std::string function_name, std::string params) {
  check_params_size(params);
  auto spec = std::make_shared<TaskSpec>();
  spec->id = next_spec_id();
  spec->worker_name = std::move(function_name);
  spec->reads_array = false;
  spec->params = std::move(params);
  spec->encoded = encode_spec(*spec);
  return spec;
}

}  // namespace corun::detail
