#pragma once
/// \file
/// CpuMonitor: per-PU (hardware thread) utilisation sampled on an Asio timer from the kernel's
/// counters, over the hwloc topology, in the parent process; its samples are a CpuSeries.
/// Side: parent.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/cpu_series.hpp>
#include <corun/cpu_topology.hpp>

#include <asio/any_io_executor.hpp>

#include <chrono>
#include <memory>

namespace corun {

/// Samples per-PU utilisation every `interval` on the executor, without blocking it: each
/// sample reads the kernel's /proc/stat counters (user+nice+system+irq+softirq+steal over the
/// total) and compares them with the previous reading.
class CORUN_API CpuMonitor {
 public:
  /// The interval when none is given.
  static constexpr std::chrono::milliseconds default_interval{200};
  /// The shortest interval the constructor accepts.
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
  /// Whether it samples now: between start() and stop().
  bool running() const noexcept;
  /// Time between samples, as given to the constructor.
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
