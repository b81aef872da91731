/// \file
/// RLIMIT_AS for a worker process, and its resident size from /proc/self/statm.
/// Side: worker.
#include "worker/worker_memory.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace corun::detail {

std::string limit_address_space(std::uint64_t bytes) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_AS, &limit) != 0) return std::string("getrlimit: ") + std::strerror(errno);
  limit.rlim_cur = static_cast<rlim_t>(bytes);
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < limit.rlim_cur)
    return "the hard RLIMIT_AS of this process is " + std::to_string(limit.rlim_max) +
           " bytes, below the limit asked";
  if (::setrlimit(RLIMIT_AS, &limit) != 0) return std::string("setrlimit: ") + std::strerror(errno);
  return {};
}

ResidentMemory::ResidentMemory()
    : fd_(::open("/proc/self/statm", O_RDONLY | O_CLOEXEC)),
      page_size_(static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE))) {}

ResidentMemory::~ResidentMemory() {
  if (fd_ >= 0) ::close(fd_);
}

std::uint64_t ResidentMemory::bytes() const noexcept {
  if (fd_ < 0) return 0;
  char text[128];
  const ssize_t n = ::pread(fd_, text, sizeof text - 1, 0);
  if (n <= 0) return 0;
  text[n] = '\0';
  // "size resident shared text lib data dt", in pages.
  char* end = nullptr;
  std::strtoull(text, &end, 10);
  const unsigned long long resident = std::strtoull(end, nullptr, 10);
  return resident * page_size_;
}

}  // namespace corun::detail
