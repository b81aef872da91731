#pragma once
/// \file
/// The failed inputs of one async_map (parent/orchestrator side): inputs fail alone (they threw
/// in the worker) or with their whole chunk (its task failed), in whatever order the chunks come
/// back, yet the map reports them as one RunError in input order.
/// Side: parent.

#include <corun/detail/chunk_reply.hpp>
#include <corun/error.hpp>
#include <corun/report.hpp>

#include <cstddef>
#include <exception>
#include <string>
#include <utility>
#include <vector>

namespace corun::detail {

class MapFailures {
 public:
  /// The TaskError of input `index` of a map of `worker`, which threw in the process `record`
  /// tells of, as `end` says.
  static TaskError of_input(const std::string& worker, const TaskRecord& record, std::size_t index,
                            ChunkEnd end);

  /// `inputs` inputs failed with `error`.
  void add(std::size_t inputs, TaskError error) {
    inputs_ += inputs;
    errors_.push_back(std::move(error));
  }
  /// How many inputs failed, for the progress bar.
  std::size_t inputs() const noexcept { return inputs_; }

  /// The RunError of every failure, by input; null when none failed. Call it once.
  std::exception_ptr take_error();

 private:
  std::size_t inputs_ = 0;
  std::vector<TaskError> errors_;
};

}  // namespace corun::detail
