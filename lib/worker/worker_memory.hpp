#pragma once
/// \file
/// A worker process's memory: the hard limit it runs under (PoolOptions::worker_memory_limit,
/// RLIMIT_AS) and its resident size after each task (PoolOptions::worker_max_rss).
/// Side: worker.

#include <cstdint>
#include <string>

namespace corun::detail {

/// Whether this build runs under AddressSanitizer, whose shadow memory takes terabytes of
/// address space, so that no RLIMIT_AS a worker could live with can be set.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
#else
inline constexpr bool kAddressSanitizer = false;
#endif

/// Limits this process's address space to `bytes` (RLIMIT_AS, soft limit; the hard limit is
/// left as it is unless it is lower). Returns an empty string, or why it could not.
std::string limit_address_space(std::uint64_t bytes);

/// This process's resident memory, read from /proc/self/statm through a descriptor opened
/// once (a pread per call: a few microseconds, only when PoolOptions::worker_max_rss is set).
class ResidentMemory {
 public:
  ResidentMemory();
  ~ResidentMemory();
  ResidentMemory(const ResidentMemory&) = delete;
  ResidentMemory& operator=(const ResidentMemory&) = delete;
  /// Resident bytes now; 0 when /proc cannot be read.
  std::uint64_t bytes() const noexcept;

 private:
  int fd_;
  std::uint64_t page_size_;
};

}  // namespace corun::detail
