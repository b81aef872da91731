#include "topology.hpp"

#include <hwloc.h>
#include <mutex>
#include <thread>

namespace corun::detail {

const std::vector<std::vector<int>>& core_pus() {
  static const std::vector<std::vector<int>> cores = [] {
    std::vector<std::vector<int>> result;
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) == 0 && hwloc_topology_load(topo) == 0) {
      const int n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
      for (int i = 0; i < n; ++i) {
        hwloc_obj_t core = hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE, static_cast<unsigned>(i));
        std::vector<int> pus;
        unsigned pu;
        hwloc_bitmap_foreach_begin(pu, core->cpuset) pus.push_back(static_cast<int>(pu));
        hwloc_bitmap_foreach_end();
        if (!pus.empty()) result.push_back(std::move(pus));
      }
      hwloc_topology_destroy(topo);
    }
    if (result.empty()) {  // no topology (unusual sandbox): one core per online CPU
      const unsigned n = std::max(1u, std::thread::hardware_concurrency());
      for (unsigned i = 0; i < n; ++i) result.push_back({static_cast<int>(i)});
    }
    return result;
  }();
  return cores;
}

std::size_t physical_core_count() {
  return core_pus().size();
}

}  // namespace corun::detail
