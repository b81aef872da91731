#pragma once
/// \file
/// The /dev/shm files behind corun's segments, on both sides of the process boundary: names in
/// both spellings, the liveness lock an owner holds, inodes that tell a segment from its
/// replacement, and the errors that name the segment and the fix.
/// Side: both.

#include <corun/data_iterator.hpp>

#include <boost/interprocess/exceptions.hpp>

#include <sys/types.h>
#include <cstddef>
#include <string>

namespace corun::detail {

inline constexpr const char* kShmDir = "/dev/shm";

/// "{rows, cols} of <i8": an array as messages name it.
std::string describe_array(const ArrayInfo& array);
/// Python's SharedMemory takes names without the leading '/', shm_open wants one; corun
/// accepts both spellings and stores the Python one. Throws naming a malformed name.
std::string normalize_name(const std::string& name);
/// Why shm_open of an existing name failed: permission (mode, owner) or absence.
[[noreturn]] void throw_open_error(const std::string& name,
                                   const boost::interprocess::interprocess_exception& e);
/// The bytes /dev/shm has free (SIZE_MAX when there is no /dev/shm to ask: mmap decides).
std::size_t shm_free_bytes();
/// Liveness of a segment is an open-file-description lock on it: its owner holds a read lock
/// for the owner object's lifetime and the kernel drops it when the owner dies, whatever PID
/// namespace the owner runs in; the sweep removes only what it can write-lock.
bool ofd_lock(int fd, short type, bool wait);
/// The inode now behind /dev/shm/<name>, 0 when the segment is gone.
ino_t linked_inode(const std::string& name);
/// The inode of an open segment, 0 when fstat fails.
ino_t inode_of(int fd);

}  // namespace corun::detail
