/// \file
/// Task outcomes and the tasks CSV of a run.
#include <corun/report.hpp>

#include "text_file.hpp"

namespace corun {

const char* to_string(TaskOutcome outcome) noexcept {
  switch (outcome) {
    case TaskOutcome::ok:
      return "ok";
    case TaskOutcome::exception:
      return "exception";
    case TaskOutcome::crashed:
      return "crashed";
    case TaskOutcome::timeout:
      return "timeout";
    case TaskOutcome::protocol:
      return "protocol";
    case TaskOutcome::cancelled:
      return "cancelled";
  }
  return "unknown";
}

void write_tasks_csv(const RunReport& report, const std::filesystem::path& path) {
  auto seconds = [&](std::chrono::steady_clock::time_point t) {
    return detail::format_fixed(std::chrono::duration<double>(t - report.started).count(), 6);
  };
  std::string csv = "task,worker,slice_start,slice_end,pid,pu,t_start,t_end,outcome\n";
  for (std::size_t i = 0; i < report.tasks.size(); ++i) {
    const TaskRecord& t = report.tasks[i];
    csv += std::to_string(i) + ',' + t.worker + ',' + std::to_string(t.slice.start) + ',' +
           std::to_string(t.slice.end) + ',' + std::to_string(t.pid) + ',' +
           std::to_string(t.cpu_start) + ',' + seconds(t.started) + ',' + seconds(t.finished) +
           ',' + to_string(t.outcome) + '\n';
  }
  detail::write_atomically(path, csv);
}

}  // namespace corun
