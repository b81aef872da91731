/// \file
/// Segments (parent side, or wherever an array is created or attached): creating one exclusively,
/// with every page reserved and the liveness lock held; attaching one another program made; and
/// sweeping the segments whose owners died.
/// Side: both.
#include <corun/error.hpp>
#include <corun/shared_array.hpp>

#include "data/memory_room.hpp"
#include "data/owned_segments.hpp"
#include "data/segment_files.hpp"
#include "data/segment_sweep.hpp"

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <system_error>
#include <utility>

namespace bip = boost::interprocess;

namespace corun {

using detail::describe_array;
using detail::normalize_name;
using detail::ofd_lock;
using detail::shm_free_bytes;
using detail::throw_open_error;

namespace {
std::string not_enough_memory(const std::string& name, const ArrayInfo& array, std::size_t bytes,
                              const detail::MemoryRoom& room) {
  return "corun: array '" + name + "' " + describe_array(array) + " needs " +
         std::to_string(bytes) + " bytes but " + room.what + " has " + std::to_string(room.bytes) +
         " bytes available: /dev/shm is memory, and an array larger than that would bring the "
         "OOM killer (use a smaller array, or more memory)";
}

std::string not_enough(const std::string& name, const ArrayInfo& array, std::size_t bytes,
                       std::size_t available) {
  return "corun: array '" + name + "' " + describe_array(array) + " needs " +
         std::to_string(bytes) + " bytes but /dev/shm has " + std::to_string(available) +
         " bytes free (in a container, raise it with --shm-size)";
}
}  // namespace

struct detail::Segment::Mapping {
  bip::shared_memory_object shm;  // an owner keeps its fd open: it carries the liveness lock
  bip::mapped_region region;
  pid_t creator = ::getpid();
  detail::OwnedEntry* owned = nullptr;  // an owner's entry in the process-wide list
};

bool detail::Segment::owner() const noexcept {
  // A child of fork() holds a copy of the owner object, but neither the lock nor the segment.
  return owner_ && (!mapping_ || mapping_->creator == ::getpid());
}

detail::Segment::Segment() noexcept = default;
detail::Segment::Segment(Segment&& other) noexcept
    : mapping_(std::move(other.mapping_)),
      name_(std::move(other.name_)),
      data_(std::exchange(other.data_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)),
      owner_(std::exchange(other.owner_, false)) {}
detail::Segment& detail::Segment::operator=(Segment&& other) noexcept {
  if (this != &other) {
    release();
    mapping_ = std::move(other.mapping_);
    name_ = std::move(other.name_);
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    owner_ = std::exchange(other.owner_, false);
  }
  return *this;
}

detail::Segment::~Segment() {
  release();
}

void detail::Segment::release() noexcept {
  // Only the process that created the segment removes it. A child of fork() holds a copy of the
  // owner object and its fd (a user's child, or a fork-started worker leaving through exit()
  // and the host's static destructors); the segment is still its parent's.
  const bool creator = !mapping_ || mapping_->creator == ::getpid();
  if (owner_ && creator) {
    if (bytes_ > 0) {
      // Free the pages now. Unlinking alone frees them only when the last process unmaps the
      // segment, and a worker unmaps a removed segment after an idle second: until then the
      // next array of the same size would not fit in /dev/shm.
      ::fallocate(mapping_->shm.get_mapping_handle().handle,
                  FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(bytes_));
    }
    // Unlink before the fd (and with it the liveness lock) goes away.
    bip::shared_memory_object::remove(name_.c_str());
    if (mapping_ && mapping_->owned) detail::release_owned(mapping_->owned);
  }
  mapping_.reset();
  owner_ = false;
  data_ = nullptr;
}

detail::Segment detail::Segment::create(const ArrayInfo& array) {
  Segment seg;
  seg.name_ = normalize_name(array.name);
  const std::size_t bytes = array.bytes();
  if (const std::size_t available = shm_free_bytes(); bytes > available)
    throw Error(errc::not_enough_shared_memory, not_enough(seg.name_, array, bytes, available));
  // /dev/shm is often sized to RAM (or larger than a container's memory limit): an array that
  // fits the tmpfs but not memory would make the kernel kill processes, maybe other programs.
  if (bytes > 0)
    if (const detail::MemoryRoom room = detail::memory_room(); bytes > room.bytes)
      throw Error(errc::not_enough_shared_memory, not_enough_memory(seg.name_, array, bytes, room));
  // The segment is made under a pending name, locked, then renamed to its own name without
  // replacing anything: the name never shows an unlocked segment that a sweep (a worker's,
  // after some other owner died) would take for a dead owner's and remove. A sweep removes a
  // pending segment only once the pid in its name has exited.
  const std::string pending = detail::pending_segment_name();
  bip::shared_memory_object shm;
  try {
    bip::permissions owner_only;
    owner_only.set_permissions(0600);
    shm = bip::shared_memory_object(bip::create_only, pending.c_str(), bip::read_write, owner_only);
  } catch (const bip::interprocess_exception& e) {
    throw Error(errc::segment_not_found,
                "corun: cannot create segment '" + seg.name_ + "': " + e.what());
  }
  const int fd = shm.get_mapping_handle().handle;
  // Blocking: a sweep holds a write lock only for the moment it removes a segment.
  if (!ofd_lock(fd, F_RDLCK, true)) {
    const int err = errno;
    bip::shared_memory_object::remove(pending.c_str());
    throw std::system_error(err, std::generic_category(),
                            "corun: cannot lock segment '" + seg.name_ + "'");
  }
  const std::string dir = std::string(detail::kShmDir) + "/";
  if (::renameat2(AT_FDCWD, (dir + pending).c_str(), AT_FDCWD, (dir + seg.name_).c_str(),
                  RENAME_NOREPLACE) != 0) {
    const int err = errno;
    bip::shared_memory_object::remove(pending.c_str());
    if (err == EEXIST)
      throw Error(errc::segment_exists, "corun: a shared-memory segment named '" + seg.name_ +
                                            "' exists already; pick another name or attach to it");
    throw std::system_error(
        err, std::generic_category(),
        "corun: cannot create segment '" + seg.name_ + "' (from '" + pending + "')");
  }
  seg.owner_ = true;  // from here on the destructor removes it, also when mapping fails
  seg.mapping_ = std::make_unique<Mapping>(Mapping{std::move(shm), {}});
  seg.mapping_->owned = detail::register_owned(seg.name_, fd);
  if (bytes > 0) {
    // Reserve every page now: a sparse segment that outgrows /dev/shm later is a SIGBUS. In
    // pieces, looking at the memory left before each: programs that check at the same moment
    // (the ranks of one job on one node) would each see room for their own array and fill
    // memory together; this way they run short and fail before the OOM killer wakes up.
    constexpr std::size_t piece = std::size_t{256} << 20;
    for (std::size_t done = 0; done < bytes;) {
      const std::size_t n = std::min(piece, bytes - done);
      const int err = ::posix_fallocate(fd, static_cast<off_t>(done), static_cast<off_t>(n));
      done += n;
      if (err == 0 && done < bytes) {
        if (const detail::MemoryRoom room = detail::memory_room(); bytes - done > room.bytes) {
          seg.release();
          throw Error(errc::not_enough_shared_memory,
                      not_enough_memory(seg.name_, array, bytes, room) + "; " +
                          std::to_string(done) + " bytes were reserved when memory ran short");
        }
      }
      if (err == 0) continue;
      seg.release();
      if (err == ENOSPC || err == EFBIG)
        throw Error(errc::not_enough_shared_memory,
                    not_enough(seg.name_, array, bytes, shm_free_bytes()));
      if (err == ENOMEM)  // a memory cgroup's limit, reached meanwhile
        throw Error(errc::not_enough_shared_memory,
                    not_enough_memory(seg.name_, array, bytes, detail::memory_room()));
      throw std::system_error(err, std::generic_category(),
                              "corun: cannot reserve " + std::to_string(bytes) +
                                  " bytes for segment '" + seg.name_ + "'");
    }
    seg.mapping_->region = bip::mapped_region(seg.mapping_->shm, bip::read_write);
    seg.data_ = seg.mapping_->region.get_address();
    // A mapping holds the open file description, and with it the owner's lock: a process
    // forked later (a worker started with StartMethod::fork) must not inherit it, or the
    // segment would look alive after its owner died. Workers map segments by name.
    ::madvise(seg.mapping_->region.get_address(), seg.mapping_->region.get_size(), MADV_DONTFORK);
  }
  seg.bytes_ = bytes;
  return seg;
}

detail::Segment detail::Segment::attach(const ArrayInfo& array) {
  Segment seg;
  seg.name_ = normalize_name(array.name);
  const std::size_t needed = array.bytes();
  bip::shared_memory_object shm;
  try {
    shm = bip::shared_memory_object(bip::open_only, seg.name_.c_str(), bip::read_write);
  } catch (const bip::interprocess_exception& e) {
    throw_open_error(seg.name_, e);
  }
  bip::offset_t size = 0;
  shm.get_size(size);
  if (static_cast<std::size_t>(size) < needed)
    throw Error(errc::segment_too_small,
                "corun: segment '" + seg.name_ + "' has " + std::to_string(size) + " bytes but " +
                    describe_array(array) + " needs " + std::to_string(needed));
  seg.bytes_ = static_cast<std::size_t>(size);
  if (size > 0) {
    seg.mapping_ = std::make_unique<Mapping>(Mapping{{}, bip::mapped_region(shm, bip::read_write)});
    seg.data_ = seg.mapping_->region.get_address();
  }
  return seg;
}

}  // namespace corun
