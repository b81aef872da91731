#pragma once
/// \file
/// The segments this process created and holds the liveness lock of, for the two moments no
/// owner object can act (parent side, or whichever process created them): in the child of a
/// fork(), whose inherited descriptors would keep the parent's locks alive, and in a fatal
/// signal's handler, which removes them (detail::remove_owned_segments, corun/shared_array.hpp).
/// Side: both.

#include "base/segment_name.hpp"

#include <atomic>
#include <string>

namespace corun::detail {

/// One segment this process created and holds the liveness lock of. Entries are never freed
/// (a signal handler may be walking the list) but are reused; `state` publishes the rest.
struct OwnedEntry {
  enum : int { free_entry, writing, live };
  std::atomic<int> state{writing};
  int fd = -1;
  char path[sizeof "/dev/shm/" + max_segment_name_length] = {};
  OwnedEntry* next = nullptr;  // set once, before the entry is published
};

/// Records that this process owns segment `name`, open as `fd`; the first call installs the
/// fork handler that lets the children go of the locks.
OwnedEntry* register_owned(const std::string& name, int fd);
/// The owner removed its segment: the entry may be reused.
void release_owned(OwnedEntry* entry) noexcept;

}  // namespace corun::detail
