#pragma once
// hwloc queries shared by the pool (default size, pinning) and the CPU monitor.

#include <cstddef>
#include <vector>

namespace corun::detail {

/// Physical cores, and for each the OS indexes of its PUs (hardware threads), in hwloc order.
/// Loaded once per process.
const std::vector<std::vector<int>>& core_pus();
/// Number of physical cores (at least 1).
std::size_t physical_core_count();

}  // namespace corun::detail
