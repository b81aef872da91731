/// \file
/// Making task specs (parent side): validated, numbered, encoded once for every worker.
/// Side: parent.
#include <corun/detail/task_service.hpp>

#include "seam/spec_codec.hpp"

#include <corun/slice_view.hpp>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <utility>

namespace corun::detail {

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
