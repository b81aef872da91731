/// \file
/// Mapping a slice's rows (worker side, and the parent's serial pool): one mapping per segment per
/// process, cached and checked against the segment's inode, so that a worker maps each array once
/// and notices when a name now means another segment.
/// Side: both.
#include <corun/error.hpp>
#include <corun/slice_view.hpp>

#include "data/segment_files.hpp"

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>

#include <algorithm>
#include <map>
#include <mutex>
#include <stdexcept>
#include <utility>

namespace bip = boost::interprocess;

namespace corun {

using detail::describe_array;
using detail::inode_of;
using detail::linked_inode;
using detail::normalize_name;
using detail::throw_open_error;

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
                      describe_array(array) + " needs " + std::to_string(needed));
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
