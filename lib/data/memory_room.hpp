#pragma once
/// \file
/// How much memory the machine can still give a new segment: /dev/shm is memory, so an array
/// larger than MemAvailable, or than the process's memory cgroup allows, would bring the OOM
/// killer (SharedArray::create refuses it).
/// Side: both.

#include <cstddef>
#include <string>

namespace corun::detail {

/// Where the kernel can still find memory for a new segment, and how much.
struct MemoryRoom {
  std::size_t bytes = std::size_t(-1);
  std::string what;  // "the machine (MemAvailable in /proc/meminfo)", "cgroup ..."
};

/// The least room of the machine (MemAvailable) and of the memory cgroups over this process.
MemoryRoom memory_room();

}  // namespace corun::detail
