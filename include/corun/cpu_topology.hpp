#pragma once
/// \file
/// CpuTopology: the machine's processing units and the cores and packages they belong to.
/// Side: parent.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <cstddef>
#include <vector>

namespace corun {

/// Processing units (hardware threads) and the cores and packages they belong to, from hwloc.
struct CORUN_API CpuTopology {
  std::vector<int> pu_os_index;  ///< OS index of each PU, ascending
  std::vector<int> core_of_pu;   ///< hwloc logical index of each PU's core
  /// Number of cores (of all packages).
  std::size_t cores = 0;
  /// Number of packages (sockets).
  std::size_t packages = 0;
  /// The machine's topology, loaded once per process.
  static const CpuTopology& local();
};

}  // namespace corun
