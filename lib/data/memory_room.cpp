/// \file
/// memory_room(): MemAvailable, narrowed by the memory cgroups (v2 and v1) over this process.
/// Side: both.
#include "data/memory_room.hpp"

#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace corun::detail {

namespace {
std::optional<std::size_t> read_number(const std::string& path) {
  std::ifstream in(path);
  std::string text;
  if (!(in >> text) || text.empty() || text.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;  // absent, or "max"
  return static_cast<std::size_t>(std::stoull(text));
}

std::size_t stat_field(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string k;
  unsigned long long v = 0;
  while (in >> k >> v)
    if (k == key) return static_cast<std::size_t>(v);
  return 0;
}

/// The cgroup whose memory limit leaves the least room, over this process's cgroup and its
/// ancestors, cgroup v2 (memory.max) or v1 (memory.limit_in_bytes). Room is the limit minus
/// what is charged, not counting inactive page cache, which the kernel reclaims first.
void narrow_to_cgroups(MemoryRoom& room) {
  std::ifstream groups("/proc/self/cgroup");
  std::string v2_path, v1_path;
  for (std::string line; std::getline(groups, line);) {
    const auto first = line.find(':'), second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    const std::string hierarchy = line.substr(0, first);
    // Built with += : GCC 12 at -O3 reports a false -Werror=restrict on "," + substr.
    std::string controllers = ",";
    controllers += line.substr(first + 1, second - first - 1);
    controllers += ',';
    if (hierarchy == "0" && controllers == ",,") v2_path = line.substr(second + 1);
    if (controllers.find(",memory,") != std::string::npos) v1_path = line.substr(second + 1);
  }
  std::ifstream mounts("/proc/self/mountinfo");
  for (std::string line; std::getline(mounts, line);) {
    std::istringstream fields(line);
    std::string id, parent, device, root, point, field;
    fields >> id >> parent >> device >> root >> point;
    while (fields >> field && field != "-") {
    }
    std::string type, source, options;
    fields >> type >> source >> options;
    const bool v2 = type == "cgroup2";
    std::string listed = ",";
    listed += options;
    listed += ',';
    const bool v1 = type == "cgroup" && listed.find(",memory,") != std::string::npos;
    const std::string& path = v2 ? v2_path : v1_path;
    if ((!v2 && !v1) || path.empty()) continue;
    // The cgroup as this mount shows it (a container's mount may start below the root).
    std::string relative = path;
    if (root != "/") {
      if (relative.rfind(root, 0) != 0) continue;
      relative = relative.substr(root.size());
    }
    for (;;) {
      const std::string dir = point + relative;
      const auto limit = read_number(dir + (v2 ? "/memory.max" : "/memory.limit_in_bytes"));
      const auto usage = read_number(dir + (v2 ? "/memory.current" : "/memory.usage_in_bytes"));
      if (limit && usage) {
        const std::size_t reclaimable =
            stat_field(dir + "/memory.stat", v2 ? "inactive_file" : "total_inactive_file");
        const std::size_t charged = *usage > reclaimable ? *usage - reclaimable : 0;
        const std::size_t left = *limit > charged ? *limit - charged : 0;
        if (left < room.bytes)
          room = {left, "the memory cgroup " + dir + " (limit " + std::to_string(*limit) +
                            " bytes, " + std::to_string(charged) + " in use)"};
      }
      if (relative.empty() || relative == "/") break;
      relative = relative.substr(0, relative.rfind('/'));
    }
  }
}
}  // namespace

MemoryRoom memory_room() {
  MemoryRoom room;
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  unsigned long long kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit)
    if (key == "MemAvailable:") {
      room = {static_cast<std::size_t>(kib) * 1024, "the machine (MemAvailable in /proc/meminfo)"};
      break;
    }
  narrow_to_cgroups(room);
  return room;
}

}  // namespace corun::detail
