#pragma once
/// \file
/// The machine's hwloc topology, loaded once per process for the pool (default size, pinning)
/// and the CPU monitor alike.
/// Side: parent.

#include <corun/cpu_topology.hpp>

#include <cstddef>
#include <vector>

namespace corun::detail {

/// What corun reads from hwloc. Without a topology (an unusual sandbox), one core per online
/// CPU with one PU each.
struct Topology {
  /// Physical cores, and for each the OS indexes of its PUs (hardware threads), in hwloc order.
  std::vector<std::vector<int>> core_pus;
  /// Each PU in OS index order with its core, and the counts of cores and packages.
  CpuTopology cpu;
};

/// The machine's topology, loaded once per process (thread-safe).
const Topology& topology();
/// topology().core_pus.
const std::vector<std::vector<int>>& core_pus();
/// Number of physical cores (at least 1).
std::size_t physical_core_count();

}  // namespace corun::detail
