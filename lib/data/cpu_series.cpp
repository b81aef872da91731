/// \file
/// CpuSeries' CSV and JSON (parent side): the columns per PU or per core, with the decimals the
/// dashboard and the plots read.
/// Side: parent.
#include <corun/cpu_series.hpp>

#include <corun/error.hpp>

#include "base/text_file.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace corun {

using detail::format_fixed;
using detail::write_atomically;

std::string CpuSeries::to_csv(Columns columns) const {
  // A header of `time_s` alone would read as a machine without CPUs; say what went wrong.
  if (pus.empty())
    throw Error(errc::no_cpu_samples,
                "corun::CpuSeries: no samples and no PU columns to export: nothing ever sampled "
                "into this series (was CpuMonitor::start() called? does the run set "
                "OrchestratorOptions::monitor_cpu_usage = true?)");
  std::vector<std::vector<std::size_t>> groups;  // the series columns behind each CSV column
  std::string csv = "time_s";
  if (columns == Columns::per_pu) {
    for (std::size_t i = 0; i < pus.size(); ++i) {
      csv += ",cpu" + std::to_string(pus[i]);
      groups.push_back({i});
    }
  } else {
    int max_core = -1;
    for (int c : core_of_pu) max_core = std::max(max_core, c);
    groups.resize(static_cast<std::size_t>(max_core + 1));
    for (std::size_t i = 0; i < core_of_pu.size(); ++i)
      groups[static_cast<std::size_t>(core_of_pu[i])].push_back(i);
    for (std::size_t c = 0; c < groups.size(); ++c) csv += ",core" + std::to_string(c);
  }
  csv += '\n';
  for (std::size_t s = 0; s < times.size(); ++s) {
    csv += format_fixed(times[s], 3);
    for (const auto& group : groups) {
      double sum = 0;
      for (std::size_t i : group) sum += busy[s][i];
      csv += ',' + format_fixed(group.empty() ? 0.0 : sum / static_cast<double>(group.size()), 1);
    }
    csv += '\n';
  }
  return csv;
}

void CpuSeries::write_csv(const std::filesystem::path& path, Columns columns) const {
  write_atomically(path, to_csv(columns));
}

std::string CpuSeries::to_json(std::size_t max_samples) const {
  const std::size_t first = times.size() > max_samples ? times.size() - max_samples : 0;
  // Each number is the double nearest to its fixed-point text, so the JSON carries the values
  // the CSV shows (times to the millisecond, busy to a tenth of a percent).
  auto rounded = [](double v, int decimals) { return std::stod(format_fixed(v, decimals)); };
  nlohmann::ordered_json j{{"pus", pus}, {"cores", core_of_pu}};
  auto& js_times = j["times"] = nlohmann::ordered_json::array();
  auto& js_busy = j["busy"] = nlohmann::ordered_json::array();
  for (std::size_t s = first; s < times.size(); ++s) {
    js_times.push_back(rounded(times[s], 3));
    auto& row = js_busy.emplace_back(nlohmann::ordered_json::array());
    for (float b : busy[s]) row.push_back(rounded(b, 1));
  }
  return j.dump();
}

}  // namespace corun
