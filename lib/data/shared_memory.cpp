#include <corun/error.hpp>
#include <corun/shared_array.hpp>
#include <corun/slice_view.hpp>

#include "data/memory_room.hpp"
#include "base/segment_name.hpp"

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace bip = boost::interprocess;

namespace corun {

namespace {
constexpr const char* kShmDir = "/dev/shm";

std::string shape_str(const std::vector<std::size_t>& shape) {
  std::string s = "{";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "}";
}

std::string describe(const ArrayInfo& a) {
  return shape_str(a.shape) + " of " + a.dtype.str();
}

/// Python's SharedMemory takes names without the leading '/', shm_open wants one; corun
/// accepts both spellings and stores the Python one.
std::string normalize_name(const std::string& name) {
  std::string n = (!name.empty() && name[0] == '/') ? name.substr(1) : name;
  detail::check_segment_name(n, "corun: shared-memory segment name");
  return n;
}

/// Why shm_open of an existing name failed: permission (mode, owner) or absence.
[[noreturn]] void throw_open_error(const std::string& name, const bip::interprocess_exception& e) {
  if (e.get_native_error() == EACCES || e.get_native_error() == EPERM)
    throw Error(errc::permission_denied,
                "corun: permission denied opening shared-memory segment '" + name + "' (/dev/shm/" +
                    name + "; its mode or owner forbids read-write): " + e.what());
  throw Error(errc::segment_not_found, "corun: no shared-memory segment named '" + name +
                                           "' (/dev/shm/" + name + "): " + e.what());
}

std::size_t shm_free_bytes() {
  struct statvfs st {};
  if (::statvfs(kShmDir, &st) != 0) return std::size_t(-1);  // no /dev/shm to ask: let mmap decide
  return static_cast<std::size_t>(st.f_bavail) * st.f_frsize;
}

/// Liveness of a segment is an open-file-description lock on it: its owner holds a read lock
/// for the owner object's lifetime and the kernel drops it when the owner dies, whatever PID
/// namespace the owner runs in; the sweep removes only what it can write-lock.
bool ofd_lock(int fd, short type, bool wait) {
  struct flock lock {};
  lock.l_type = type;
  lock.l_whence = SEEK_SET;  // l_start 0, l_len 0: the whole file
  return ::fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &lock) == 0;
}

/// The inode now behind /dev/shm/<name>, 0 when the segment is gone.
ino_t linked_inode(const std::string& name) {
  struct stat st {};
  return ::stat((std::string(kShmDir) + "/" + name).c_str(), &st) == 0 ? st.st_ino : 0;
}

// ---- what this process owns: for a fork()ed child and for a fatal signal ----

/// One segment this process created and holds the liveness lock of. Entries are never freed
/// (a signal handler may be walking the list) but are reused; `state` publishes the rest.
struct OwnedEntry {
  enum : int { free_entry, writing, live };
  std::atomic<int> state{writing};
  int fd = -1;
  char path[sizeof "/dev/shm/" + detail::max_segment_name_length] = {};
  OwnedEntry* next = nullptr;  // set once, before the entry is published
};
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

std::string not_enough_memory(const std::string& name, const ArrayInfo& array, std::size_t bytes,
                              const detail::MemoryRoom& room) {
  return "corun: array '" + name + "' " + describe(array) + " needs " + std::to_string(bytes) +
         " bytes but " + room.what + " has " + std::to_string(room.bytes) +
         " bytes available: /dev/shm is memory, and an array larger than that would bring the "
         "OOM killer (use a smaller array, or more memory)";
}

std::string not_enough(const std::string& name, const ArrayInfo& array, std::size_t bytes,
                       std::size_t available) {
  return "corun: array '" + name + "' " + describe(array) + " needs " + std::to_string(bytes) +
         " bytes but /dev/shm has " + std::to_string(available) +
         " bytes free (in a container, raise it with --shm-size)";
}

ino_t inode_of(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? st.st_ino : 0;
}
}  // namespace

struct detail::Segment::Mapping {
  bip::shared_memory_object shm;  // an owner keeps its fd open: it carries the liveness lock
  bip::mapped_region region;
  pid_t creator = ::getpid();
  OwnedEntry* owned = nullptr;  // an owner's entry in the process-wide list
};

bool detail::Segment::owner() const noexcept {
  // A child of fork() holds a copy of the owner object, but neither the lock nor the segment.
  return owner_ && (!mapping_ || mapping_->creator == ::getpid());
}

void detail::remove_owned_segments() noexcept {
  for (OwnedEntry* e = owned_head.load(std::memory_order_acquire); e != nullptr; e = e->next)
    if (e->state.load(std::memory_order_acquire) == OwnedEntry::live) ::unlink(e->path);
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
    if (mapping_ && mapping_->owned)
      mapping_->owned->state.store(OwnedEntry::free_entry, std::memory_order_release);
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
  bip::shared_memory_object shm;
  for (int attempt = 0;; ++attempt) {
    try {
      bip::permissions owner_only;
      owner_only.set_permissions(0600);
      shm = bip::shared_memory_object(bip::create_only, seg.name_.c_str(), bip::read_write,
                                      owner_only);
    } catch (const bip::interprocess_exception& e) {
      if (e.get_error_code() == bip::already_exists_error)
        throw Error(errc::segment_exists,
                    "corun: a shared-memory segment named '" + seg.name_ +
                        "' exists already; pick another name or attach to it");
      throw Error(errc::segment_not_found,
                  "corun: cannot create segment '" + seg.name_ + "': " + e.what());
    }
    const int fd = shm.get_mapping_handle().handle;
    // Blocking: a sweep holds a write lock only for the moment it removes a segment.
    if (!ofd_lock(fd, F_RDLCK, true)) {
      const int err = errno;
      bip::shared_memory_object::remove(seg.name_.c_str());
      throw std::system_error(err, std::generic_category(),
                              "corun: cannot lock segment '" + seg.name_ + "'");
    }
    // Between shm_open and the lock the new segment looked unowned, and a sweep (a worker's,
    // after some other owner died) may have removed it: the name must still be ours.
    if (linked_inode(seg.name_) == inode_of(fd)) break;
    if (attempt == 9)
      throw std::system_error(
          EAGAIN, std::generic_category(),
          "corun: segment '" + seg.name_ + "' was removed as it was being created, ten times");
  }
  seg.owner_ = true;  // from here on the destructor removes it, also when mapping fails
  const int fd = shm.get_mapping_handle().handle;
  seg.mapping_ = std::make_unique<Mapping>(Mapping{std::move(shm), {}});
  seg.mapping_->owned = register_owned(seg.name_, fd);
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
    throw Error(errc::segment_too_small, "corun: segment '" + seg.name_ + "' has " +
                                             std::to_string(size) + " bytes but " +
                                             describe(array) + " needs " + std::to_string(needed));
  seg.bytes_ = static_cast<std::size_t>(size);
  if (size > 0) {
    seg.mapping_ = std::make_unique<Mapping>(Mapping{{}, bip::mapped_region(shm, bip::read_write)});
    seg.data_ = seg.mapping_->region.get_address();
  }
  return seg;
}

std::string unique_segment_name() {
  thread_local std::mt19937_64 rng{(std::uint64_t{std::random_device{}()} << 32) ^
                                   std::random_device{}()};
  char buf[64];
  std::snprintf(buf, sizeof buf, "corun_%d_%016llx", static_cast<int>(::getpid()),
                static_cast<unsigned long long>(rng()));
  return buf;
}

std::vector<std::string> sweep_stale_segments() {
  std::vector<std::string> removed;
  DIR* dir = ::opendir(kShmDir);
  if (dir == nullptr) return removed;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    int pid = 0;
    unsigned long long tag = 0;
    int consumed = 0;
    if (std::sscanf(name.c_str(), "corun_%d_%16llx%n", &pid, &tag, &consumed) != 2 ||
        static_cast<std::size_t>(consumed) != name.size() || pid <= 0)
      continue;
    const int fd = ::shm_open(("/" + name).c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW, 0);
    if (fd < 0) continue;  // gone meanwhile, or not ours to open
    // The owner's read lock says it lives, whatever its size, and whether or not a process
    // with the pid in the name runs (an unreaped owner, another PID namespace, a reused pid).
    // A creator that has not taken its lock yet notices the removal and creates it again.
    if (ofd_lock(fd, F_WRLCK, false) && ::shm_unlink(("/" + name).c_str()) == 0)
      removed.push_back(name);
    ::close(fd);
  }
  ::closedir(dir);
  return removed;
}

// ---- the per-process mapping cache behind view_rows() ----

namespace {
struct CachedMapping {
  bip::mapped_region region;
  ino_t inode = 0;
  std::size_t bytes = 0;
};

struct MappingCache {
  std::mutex mutex;
  std::map<std::string, CachedMapping, std::less<>> entries;
};

MappingCache& cache() {
  static MappingCache* c = new MappingCache;  // never destroyed: views may outlive statics
  return *c;
}

ino_t current_inode(const std::string& name) {
  return linked_inode(name);
}
}  // namespace

std::uint64_t detail::segment_inode(std::string_view name) {
  if (!name.empty() && name[0] == '/') name.remove_prefix(1);
  return current_inode(std::string(name));
}

detail::MappedRows detail::map_rows(std::string_view array_name,
                                    const std::vector<std::size_t>& shape, DType dtype,
                                    DType expected, Slice rows, std::uint64_t known_inode) {
  if (dtype != expected)
    throw Error(errc::dtype_mismatch, "corun: array '" + std::string(array_name) + "' holds " +
                                          dtype.str() + " elements but the code reads " +
                                          expected.str());
  const std::size_t array_rows = shape.empty() ? 0 : shape[0];
  if (rows.start > rows.end || rows.end > array_rows)
    throw std::invalid_argument("corun: slice [" + std::to_string(rows.start) + ", " +
                                std::to_string(rows.end) + ") is outside array '" +
                                std::string(array_name) + "' of " + std::to_string(array_rows) +
                                " rows");
  std::size_t row_elements = 1;
  for (std::size_t i = 1; i < shape.size(); ++i) row_elements *= shape[i];
  MappedRows out;
  out.shape = shape;
  if (out.shape.empty()) out.shape.push_back(0);
  out.shape[0] = rows.size();
  out.elements = rows.size() * row_elements;
  const std::size_t offset = rows.start * row_elements * dtype.itemsize();
  if (std::find(shape.begin(), shape.end(), std::size_t{0}) != shape.end()) return out;
  std::size_t needed = dtype.itemsize();
  for (std::size_t d : shape)
    if (__builtin_mul_overflow(needed, d, &needed))
      throw std::invalid_argument("corun: the shape of array '" + std::string(array_name) +
                                  "' overflows the address space");

  MappingCache& c = cache();
  std::lock_guard lock(c.mutex);
  if (known_inode != 0 && array_name.substr(0, 1) != "/") {
    // The hot path of a worker: the parent said which segment it means, and it is mapped.
    const auto hit = c.entries.find(array_name);
    if (hit != c.entries.end() && hit->second.inode == known_inode && hit->second.bytes >= needed) {
      out.data = static_cast<char*>(hit->second.region.get_address()) + offset;
      return out;
    }
  }
  const ArrayInfo array{std::string(array_name), shape, dtype};
  const std::string name = normalize_name(array.name);
  const ino_t inode = current_inode(name);
  auto it = c.entries.find(name);
  if (it != c.entries.end() && (it->second.inode != inode || it->second.bytes < needed)) {
    c.entries.erase(it);  // removed, replaced, or grown since we mapped it
    it = c.entries.end();
  }
  if (it == c.entries.end()) {
    if (inode == 0)
      throw Error(errc::segment_not_found,
                  "corun: no shared-memory segment named '" + name + "' (/dev/shm/" + name + ")");
    bip::shared_memory_object shm;
    try {
      shm = bip::shared_memory_object(bip::open_only, name.c_str(), bip::read_write);
    } catch (const bip::interprocess_exception& e) {
      throw_open_error(name, e);
    }
    bip::offset_t size = 0;
    shm.get_size(size);
    if (static_cast<std::size_t>(size) < needed)
      throw Error(errc::segment_too_small,
                  "corun: segment '" + name + "' has " + std::to_string(size) + " bytes but " +
                      describe(array) + " needs " + std::to_string(needed));
    CachedMapping m{bip::mapped_region(shm, bip::read_write),
                    inode_of(shm.get_mapping_handle().handle), static_cast<std::size_t>(size)};
    it = c.entries.emplace(name, std::move(m)).first;
  }
  out.data = static_cast<char*>(it->second.region.get_address()) + offset;
  return out;
}

void release_mappings(bool all) {
  MappingCache& c = cache();
  std::lock_guard lock(c.mutex);
  std::erase_if(c.entries,
                [&](const auto& e) { return all || current_inode(e.first) != e.second.inode; });
}

std::size_t cached_mapping_count() {
  MappingCache& c = cache();
  std::lock_guard lock(c.mutex);
  return c.entries.size();
}

}  // namespace corun
