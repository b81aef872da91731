/// \file
/// Loading hwloc's topology once per process (parent side): the PUs of each core, for the pool's
/// default size and pinning and for CpuMonitor's columns.
/// Side: parent.
#include "machine/cpu_topology.hpp"

#include <hwloc.h>
#include <algorithm>
#include <thread>
#include <utility>

namespace corun::detail {

namespace {

std::vector<std::vector<int>> read_core_pus(hwloc_topology_t topo) {
  std::vector<std::vector<int>> result;
  const int n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
  for (int i = 0; i < n; ++i) {
    hwloc_obj_t core = hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE, static_cast<unsigned>(i));
    std::vector<int> pus;
    unsigned pu;
    hwloc_bitmap_foreach_begin(pu, core->cpuset) pus.push_back(static_cast<int>(pu));
    hwloc_bitmap_foreach_end();
    if (!pus.empty()) result.push_back(std::move(pus));
  }
  return result;
}

CpuTopology read_cpu_topology(hwloc_topology_t topo) {
  CpuTopology t;
  const int pus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
  std::vector<std::pair<int, int>> by_os;  // (os index, core)
  for (int i = 0; i < pus; ++i) {
    hwloc_obj_t pu = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PU, static_cast<unsigned>(i));
    hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_CORE, pu);
    by_os.emplace_back(static_cast<int>(pu->os_index),
                       core ? static_cast<int>(core->logical_index) : i);
  }
  std::sort(by_os.begin(), by_os.end());
  for (auto [os, core] : by_os) {
    t.pu_os_index.push_back(os);
    t.core_of_pu.push_back(core);
  }
  t.cores = static_cast<std::size_t>(std::max(1, hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE)));
  t.packages =
      static_cast<std::size_t>(std::max(1, hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE)));
  return t;
}

Topology load() {
  Topology t;
  hwloc_topology_t topo;
  if (hwloc_topology_init(&topo) == 0) {
    if (hwloc_topology_load(topo) == 0) {
      t.core_pus = read_core_pus(topo);
      t.cpu = read_cpu_topology(topo);
    }
    hwloc_topology_destroy(topo);
  }
  if (t.core_pus.empty()) {  // no topology: one core per online CPU
    const unsigned n = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < n; ++i) t.core_pus.push_back({static_cast<int>(i)});
  }
  if (t.cpu.pu_os_index.empty()) {
    for (std::size_t c = 0; c < t.core_pus.size(); ++c)
      for (int pu : t.core_pus[c]) {
        t.cpu.pu_os_index.push_back(pu);
        t.cpu.core_of_pu.push_back(static_cast<int>(c));
      }
    t.cpu.cores = t.core_pus.size();
    t.cpu.packages = 1;
  }
  return t;
}

}  // namespace

const Topology& topology() {
  static const Topology loaded = load();
  return loaded;
}

const std::vector<std::vector<int>>& core_pus() {
  return topology().core_pus;
}

std::size_t physical_core_count() {
  return topology().core_pus.size();
}

}  // namespace corun::detail

const corun::CpuTopology& corun::CpuTopology::local() {
  return detail::topology().cpu;
}
