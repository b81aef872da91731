/// \file
/// Task outcomes and the tasks CSV of a run.
/// Side: parent.
#include <corun/report.hpp>

#include "base/text_file.hpp"

#include <algorithm>
#include <initializer_list>
#include <set>

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
    case TaskOutcome::memory_exceeded:
      return "memory_exceeded";
    case TaskOutcome::rank_lost:
      return "rank_lost";
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
    csv += std::to_string(i) + ',' + detail::csv_field(t.worker) + ',' +
           std::to_string(t.slice.start) + ',' + std::to_string(t.slice.end) + ',' +
           std::to_string(t.pid) + ',' + std::to_string(t.cpu_start) + ',' + seconds(t.started) +
           ',' + seconds(t.finished) + ',' + to_string(t.outcome) + '\n';
  }
  detail::write_atomically(path, csv);
}

namespace {
using std::chrono::nanoseconds;

std::string millis(nanoseconds d) {
  return detail::format_fixed(std::chrono::duration<double, std::milli>(d).count(), 1);
}
std::string millis(const std::optional<nanoseconds>& d) {
  return d ? millis(*d) : std::string("-");
}
/// `text` right-aligned in `width` columns.
std::string right(const std::string& text, std::size_t width) {
  return text.size() >= width ? text : std::string(width - text.size(), ' ') + text;
}
}  // namespace

RunInsights RunReport::insights() const {
  using time_point = std::chrono::steady_clock::time_point;
  RunInsights out;
  out.wall_time = wall_time;
  const time_point run_end = started + wall_time;
  std::set<int> slots;
  for (const WorkerProcessRecord& p : processes) {
    WorkerInsight w;
    w.worker_id = p.worker_id;
    w.pid = p.pid;
    if (p.launched != time_point{} && p.hello != time_point{}) w.start_up = p.hello - p.launched;
    if (p.hello != time_point{} && p.ready != time_point{}) w.init = p.ready - p.hello;
    w.tasks = p.tasks;
    w.working = p.working;
    // The share of the run it could take work in: from when it was ready (or the run began,
    // when the pool does not say) until it ended (or the run did).
    // A process the pool launched but which never became ready did not wait for work.
    const time_point from = p.ready != time_point{}      ? std::max(started, p.ready)
                            : p.launched != time_point{} ? run_end
                                                         : started;
    const time_point to = p.ended == time_point{} ? run_end : std::min(run_end, p.ended);
    const nanoseconds available = std::max(nanoseconds{0}, nanoseconds{to - from});
    w.waiting = std::max(nanoseconds{0}, available - p.working);
    out.working += w.working;
    out.waiting += w.waiting;
    slots.insert(p.worker_id);
    out.workers.push_back(std::move(w));
  }
  std::stable_sort(
      out.workers.begin(), out.workers.end(),
      [](const WorkerInsight& a, const WorkerInsight& b) { return a.worker_id < b.worker_id; });
  out.worker_slots = slots.size();
  const double capacity =
      std::chrono::duration<double>(wall_time).count() * static_cast<double>(out.worker_slots);
  if (capacity > 0) out.efficiency = std::chrono::duration<double>(out.working).count() / capacity;
  return out;
}

std::string RunInsights::to_string() const {
  // Columns: worker, pid, start-up, init, tasks, working, waiting.
  auto row = [](std::initializer_list<std::string> cells) {
    static constexpr std::size_t widths[] = {6, 9, 13, 10, 8, 13, 13};
    std::string line;
    std::size_t column = 0;
    for (const std::string& cell : cells) line += right(cell, widths[column++]);
    return line + '\n';
  };
  std::string s =
      row({"worker", "pid", "start-up ms", "init ms", "tasks", "working ms", "waiting ms"});
  std::size_t task_count = 0;
  for (const WorkerInsight& w : workers) {
    s += row({std::to_string(w.worker_id), std::to_string(w.pid), millis(w.start_up),
              millis(w.init), std::to_string(w.tasks), millis(w.working), millis(w.waiting)});
    task_count += w.tasks;
  }
  s += row({"total", "", "", "", std::to_string(task_count), millis(working), millis(waiting)});
  s += "efficiency " + detail::format_fixed(100 * efficiency, 1) + "% (working / (" +
       std::to_string(worker_slots) + " workers x " + millis(wall_time) + " ms wall))\n";
  return s;
}

}  // namespace corun
