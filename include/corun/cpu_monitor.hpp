#pragma once
/// \file
/// CpuMonitor: per-PU (hardware thread) utilisation sampled on an Asio timer from the kernel's
/// counters, over the hwloc topology; CpuSeries: the samples, exported as CSV.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/cpu_topology.hpp>

#include <asio/any_io_executor.hpp>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
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

  std::size_t size() const noexcept { return times.size(); }
  bool empty() const noexcept { return times.empty(); }

  /// Writes `time_s,cpu0,...` with one decimal (or per-core columns), one row per sample.
  /// Atomic: a temporary file beside `path` is renamed over it. Throws std::system_error
  /// naming the path when it cannot be written, leaving no partial file.
  void write_csv(const std::filesystem::path& path, Columns columns = Columns::per_pu) const;
  /// The CSV text write_csv writes.
  std::string to_csv(Columns columns = Columns::per_pu) const;
  /// `{"pus":[...],"times":[...],"busy":[[...],...]}` of the last `max_samples` samples.
  std::string to_json(std::size_t max_samples = 300) const;
};

/// Samples per-PU utilisation every `interval` on the executor, without blocking it: each
/// sample reads the kernel's /proc/stat counters (user+nice+system+irq+softirq+steal over the
/// total) and compares them with the previous reading.
class CORUN_API CpuMonitor {
 public:
  static constexpr std::chrono::milliseconds default_interval{200};
  static constexpr std::chrono::milliseconds min_interval{10};

  /// Throws std::invalid_argument naming `interval` when it is below 10 ms.
  explicit CpuMonitor(asio::any_io_executor executor,
                      std::chrono::milliseconds interval = default_interval);
  ~CpuMonitor();
  CpuMonitor(const CpuMonitor&) = delete;
  CpuMonitor& operator=(const CpuMonitor&) = delete;

  /// Starts sampling (clears earlier samples). Call on the executor's thread.
  void start();
  /// Stops sampling; the series keeps what was sampled.
  void stop();
  bool running() const noexcept;
  std::chrono::milliseconds interval() const noexcept;
  /// The samples so far. Read it on the executor's thread.
  const CpuSeries& series() const noexcept;
  /// Moves the samples out, leaving an empty series.
  CpuSeries take_series();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace corun
