#pragma once
/// \file
/// CpuSeries: per-PU utilisation samples over time (data, on the parent's side), exported as CSV
/// or JSON. CpuMonitor (corun/cpu_monitor.hpp) fills one; a RunReport carries one.
/// Side: parent.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace corun {

/// Utilisation samples over time: one row per sample, one column per PU.
struct CORUN_API CpuSeries {
  /// How write_csv lays out its columns.
  enum class Columns {
    per_pu,    ///< cpu<OS index> for each PU
    per_core,  ///< core<index>: the mean of the core's PUs
  };

  std::chrono::system_clock::time_point started_wall{};  ///< wall-clock time of time 0
  std::vector<int> pus;                                  ///< OS index of each column
  std::vector<int> core_of_pu;                           ///< hwloc core of each column
  std::vector<double> times;             ///< seconds since monitoring started (steady clock)
  std::vector<std::vector<float>> busy;  ///< per sample, per column: percent busy, 0..100

  /// Number of samples.
  std::size_t size() const noexcept { return times.size(); }
  /// Whether nothing was sampled.
  bool empty() const noexcept { return times.empty(); }

  /// Writes `time_s,cpu0,...` with one decimal (or per-core columns), one row per sample.
  /// Atomic: a temporary file beside `path` is renamed over it. Throws std::system_error
  /// naming the path when it cannot be written, leaving no partial file.
  ///
  /// A series that has its PU columns but no samples yet (a monitor stopped less than 10 ms
  /// after it started: the kernel's counters had not ticked) writes the header line alone. A
  /// series without columns was never filled by a CpuMonitor (one never started, or the
  /// RunReport of a run without OrchestratorOptions::monitor_cpu_usage): that throws
  /// corun::Error (errc::no_cpu_samples) saying so, and writes nothing.
  void write_csv(const std::filesystem::path& path, Columns columns = Columns::per_pu) const;
  /// The CSV text write_csv writes; throws as write_csv does for a series without columns.
  std::string to_csv(Columns columns = Columns::per_pu) const;
  /// `{"pus":[...],"times":[...],"busy":[[...],...]}` of the last `max_samples` samples.
  std::string to_json(std::size_t max_samples = 300) const;
};

}  // namespace corun
