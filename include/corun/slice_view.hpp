#pragma once
/// \file
/// xtensor views of shared arrays and of their slices, mapped without copying. Each process
/// maps a segment once and keeps the mapping in a cache keyed by name.
/// Side: both.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/data_iterator.hpp>
#include <corun/dtype.hpp>
#include <corun/slice.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>
#include <xtensor/xadapt.hpp>

namespace corun {

/// An xtensor adaptor over shared memory: no ownership, no copy. `SliceView<const T>` is
/// read-only. Rows along axis 0 are the slice's rows; the other axes are the array's.
template <class T>
using SliceView = decltype(xt::adapt(std::declval<T*>(), std::size_t{}, xt::no_ownership(),
                                     std::declval<const std::vector<std::size_t>&>()));

namespace detail {
struct MappedRows {
  void* data = nullptr;
  std::size_t elements = 0;
  std::vector<std::size_t> shape;
};
/// Maps (or finds in this process's cache) the segment `name` holding an array of `shape` and
/// `dtype`, and returns rows `rows`, after checking the element type and that the segment is
/// large enough. A cached mapping is revalidated against /dev/shm (a stat), unless
/// `known_inode` says which segment the caller means and the cache holds exactly that one.
CORUN_API MappedRows map_rows(std::string_view name, const std::vector<std::size_t>& shape,
                              DType dtype, DType expected, Slice rows,
                              std::uint64_t known_inode = 0);
inline MappedRows map_rows(const ArrayInfo& array, DType expected, Slice rows,
                           std::uint64_t known_inode = 0) {
  return map_rows(array.name, array.shape, array.dtype, expected, rows, known_inode);
}
/// The inode behind /dev/shm/<name> now, 0 when there is no such segment.
CORUN_API std::uint64_t segment_inode(std::string_view name);

template <class T>
SliceView<T> adapt_rows(MappedRows m) {
  return xt::adapt(static_cast<T*>(m.data), m.elements, xt::no_ownership(), m.shape);
}
}  // namespace detail

/// A view of rows `slice` of the array `array` describes. `T` may be const-qualified for a
/// read-only view. Throws corun::Error (dtype_mismatch, segment_not_found, segment_too_small)
/// or std::invalid_argument (slice beyond the array). The view stays valid while the segment
/// exists.
template <class T>
requires element_type<std::remove_const_t<T>> SliceView<T> view_rows(const ArrayInfo& array,
                                                                     Slice slice) {
  return detail::adapt_rows<T>(detail::map_rows(array, DType::of<std::remove_const_t<T>>(), slice));
}

/// A view of `slice` of the array `iterator` walks over.
template <class T>
requires element_type<std::remove_const_t<T>> SliceView<T> view_slice(const DataIterator& iterator,
                                                                      Slice slice) {
  return detail::adapt_rows<T>(detail::map_rows(iterator.shm_name, iterator.shm_shape,
                                                iterator.data_type,
                                                DType::of<std::remove_const_t<T>>(), slice));
}

/// A view of the whole array `array` describes.
template <class T>
requires element_type<std::remove_const_t<T>> SliceView<T> view_array(const ArrayInfo& array) {
  return view_rows<T>(array, Slice{0, array.rows()});
}

/// Unmaps cached segments that were removed or replaced since they were mapped (all cached
/// segments when `all` is true). Worker processes call it when idle.
CORUN_API void release_mappings(bool all = false);
/// Number of segments this process has mapped through views.
CORUN_API std::size_t cached_mapping_count();

}  // namespace corun
