/// \file
/// The /dev/shm files behind corun's segments (both sides): names, liveness locks, inodes, and
/// the errors that name them.
/// Side: both.
#include "data/segment_files.hpp"

#include "base/segment_name.hpp"

#include <corun/error.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <cerrno>

namespace corun::detail {

namespace bip = boost::interprocess;

namespace {
std::string shape_str(const std::vector<std::size_t>& shape) {
  std::string s = "{";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "}";
}
}  // namespace

std::string describe_array(const ArrayInfo& a) {
  return shape_str(a.shape) + " of " + a.dtype.str();
}

std::string normalize_name(const std::string& name) {
  std::string n = (!name.empty() && name[0] == '/') ? name.substr(1) : name;
  check_segment_name(n, "corun: shared-memory segment name");
  return n;
}

void throw_open_error(const std::string& name, const bip::interprocess_exception& e) {
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

bool ofd_lock(int fd, short type, bool wait) {
  struct flock lock {};
  lock.l_type = type;
  lock.l_whence = SEEK_SET;  // l_start 0, l_len 0: the whole file
  return ::fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &lock) == 0;
}

ino_t linked_inode(const std::string& name) {
  struct stat st {};
  return ::stat((std::string(kShmDir) + "/" + name).c_str(), &st) == 0 ? st.st_ino : 0;
}

ino_t inode_of(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? st.st_ino : 0;
}

}  // namespace corun::detail
