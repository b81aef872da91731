/// \file
/// The process-wide list of segments this process owns: lock-free, so that a fork handler and a
/// signal handler may walk it (async-signal-safe), and never shrinking.
/// Side: both.
#include "data/owned_segments.hpp"

#include "data/segment_files.hpp"

#include <corun/shared_array.hpp>

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>
#include <cstdio>

namespace corun::detail {

namespace {
std::atomic<OwnedEntry*> owned_head{nullptr};

/// In the child of fork(): the inherited descriptors would keep the parent's locks alive after
/// the parent died (a lock lives as long as any descriptor of its open file description), so
/// each becomes /dev/null under the same number (the owner object still closes it); the
/// mappings are not inherited (MADV_DONTFORK). Async-signal-safe, as the child of a
/// multithreaded fork() requires.
void drop_owned_in_child() noexcept {
  int null_fd = -1;
  for (OwnedEntry* e = owned_head.load(std::memory_order_acquire); e != nullptr; e = e->next) {
    if (e->state.load(std::memory_order_acquire) != OwnedEntry::live) continue;
    if (null_fd < 0) null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0 || ::dup3(null_fd, e->fd, O_CLOEXEC) < 0) ::close(e->fd);
    e->state.store(OwnedEntry::free_entry, std::memory_order_release);
  }
  if (null_fd >= 0) ::close(null_fd);
}

}  // namespace

OwnedEntry* register_owned(const std::string& name, int fd) {
  static const bool installed = ::pthread_atfork(nullptr, nullptr, drop_owned_in_child) == 0;
  (void)installed;
  OwnedEntry* entry = nullptr;
  for (OwnedEntry* e = owned_head.load(std::memory_order_acquire); e != nullptr && !entry;
       e = e->next) {
    int expected = OwnedEntry::free_entry;
    if (e->state.compare_exchange_strong(expected, OwnedEntry::writing, std::memory_order_acq_rel))
      entry = e;
  }
  if (entry == nullptr) {
    entry = new OwnedEntry;
    entry->next = owned_head.load(std::memory_order_relaxed);
    while (!owned_head.compare_exchange_weak(entry->next, entry, std::memory_order_acq_rel)) {
    }
  }
  entry->fd = fd;
  std::snprintf(entry->path, sizeof entry->path, "%s/%s", kShmDir, name.c_str());
  entry->state.store(OwnedEntry::live, std::memory_order_release);
  return entry;
}

void release_owned(OwnedEntry* entry) noexcept {
  entry->state.store(OwnedEntry::free_entry, std::memory_order_release);
}

void remove_owned_segments() noexcept {
  for (OwnedEntry* e = owned_head.load(std::memory_order_acquire); e != nullptr; e = e->next)
    if (e->state.load(std::memory_order_acquire) == OwnedEntry::live) ::unlink(e->path);
}

}  // namespace corun::detail
