#pragma once
/// \file
/// Running one task in the current process: decoding its spec, calling the registered worker,
/// and producing a complete result frame. Shared by worker processes and the serial pool.

#include "protocol.hpp"
#include "task_spec.hpp"

#include <corun/data_iterator.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace corun::detail {

/// Runs task `task_id` over `slice` and appends a whole result frame (header included) to
/// `out`. Never throws for task failures: they become exception or protocol results.
void run_task(std::uint64_t task_id, Slice slice, std::string_view argument,
              const DecodedSpec& spec, int worker_id, std::size_t max_result_bytes,
              std::string& out);

/// Runs a task message body (task id, slice, argument, spec) as run_task does; caches the last decoded
/// spec, since consecutive tasks usually share it.
class TaskRunner {
 public:
  TaskRunner(int worker_id, std::size_t max_result_bytes)
      : worker_id_(worker_id), max_result_bytes_(max_result_bytes) {}
  void run(std::string_view task_body, std::string& out);

 private:
  int worker_id_;
  std::size_t max_result_bytes_;
  std::string last_spec_bytes_;
  std::optional<DecodedSpec> last_spec_;
};

}  // namespace corun::detail
