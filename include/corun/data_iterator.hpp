#pragma once
/// \file
/// mpaio's DataIterator: which segment, which element type and shape, and how it is cut into
/// slices. Plain data, so it travels to worker processes as a few bytes.
/// Side: both.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/dtype.hpp>
#include <corun/slice.hpp>

#include <cstddef>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

namespace corun {

/// What a process needs to map a shared array: the segment name, its shape and element type.
struct CORUN_API ArrayInfo {
  /// Segment name, without the leading '/'.
  std::string name;
  /// Full shape, row-major; slices cut axis 0.
  std::vector<std::size_t> shape;
  /// Element type.
  DType dtype;

  /// Rows along axis 0 (0 for an empty shape).
  std::size_t rows() const noexcept { return shape.empty() ? 0 : shape[0]; }
  /// Elements in one row: the product of the dimensions after the first.
  std::size_t row_elements() const noexcept;
  /// Total bytes: product(shape) * itemsize; throws std::invalid_argument on overflow.
  std::size_t bytes() const;
  /// Same segment name, shape and element type.
  friend bool operator==(const ArrayInfo&, const ArrayInfo&) = default;
};

/// The metadata of a shared array and its partition into slices along axis 0, with mpaio's
/// field names and order. Iterating yields Slice{start, end} with
/// end = min(start + chunk_size, size_of_data), from start_idx on; when `partitions` is
/// non-zero the rows from start_idx on are instead cut into that many slices whose sizes
/// differ by at most one.
struct CORUN_API DataIterator {
  std::string shm_name;                ///< segment name, without the leading '/'
  std::size_t chunk_size = 1;          ///< rows per slice (the last one may be shorter)
  std::size_t size_of_data = 0;        ///< rows along axis 0; must equal shm_shape[0]
  std::vector<std::size_t> shm_shape;  ///< full shape of the array
  DType data_type;                     ///< element type, numpy-compatible
  std::size_t start_idx = 0;           ///< first row to hand out
  std::size_t partitions = 0;          ///< 0: cut by chunk_size; n: n balanced slices

  /// Slices of `chunk_size` rows over `array` (a SharedArray or an ArrayInfo).
  static DataIterator over(const ArrayInfo& array, std::size_t chunk_size);
  /// The same, from anything with `info()` (a SharedArray, a DistributedArray).
  template <class Array>
  requires requires(const Array& a) { a.info(); }
  static DataIterator over(const Array& array, std::size_t chunk_size) {
    return over(array.info(), chunk_size);
  }
  /// `n` slices over `array` whose row counts differ by at most one (one per row when n is
  /// larger than the row count, none for an empty array).
  static DataIterator partitioned(const ArrayInfo& array, std::size_t n);
  /// The same, from anything with `info()` (a SharedArray, a DistributedArray).
  template <class Array>
  requires requires(const Array& a) { a.info(); }
  static DataIterator partitioned(const Array& array, std::size_t n) {
    return partitioned(array.info(), n);
  }

  /// Throws std::invalid_argument naming the first bad field and its value.
  void validate() const;
  /// The array this iterator walks over.
  ArrayInfo info() const { return {shm_name, shm_shape, data_type}; }
  /// Number of slices.
  std::size_t slice_count() const;
  /// The i-th slice (i < slice_count()).
  Slice slice(std::size_t i) const;

  /// A forward iterator over the slices, which it computes on the way (a Slice by value,
  /// never a reference); valid while its DataIterator lives.
  class iterator {
   public:
    /// Forward: slices can be visited again, not in reverse.
    using iterator_category = std::forward_iterator_tag;
    /// Slice.
    using value_type = Slice;
    /// std::ptrdiff_t.
    using difference_type = std::ptrdiff_t;
    /// For std::iterator_traits only: there is no operator->, operator* returns by value.
    using pointer = const Slice*;
    /// Slice, by value: the slices are computed, not stored.
    using reference = Slice;
    iterator() = default;
    /// The current slice.
    Slice operator*() const { return owner_->slice(index_); }
    /// Moves to the next slice.
    iterator& operator++() {
      ++index_;
      return *this;
    }
    /// Moves to the next slice; returns the iterator as it was.
    iterator operator++(int) {
      iterator old = *this;
      ++index_;
      return old;
    }
    /// At the same slice (of the same DataIterator).
    friend bool operator==(const iterator& a, const iterator& b) noexcept {
      return a.index_ == b.index_;
    }

   private:
    friend struct DataIterator;
    iterator(const DataIterator* owner, std::size_t index) : owner_(owner), index_(index) {}
    const DataIterator* owner_ = nullptr;
    std::size_t index_ = 0;
  };
  /// Validates, then iterates over the slices.
  iterator begin() const;
  /// Past the last slice (index slice_count()).
  iterator end() const;

  /// A compact binary encoding (the form in which metadata reaches worker processes).
  std::string encode() const;
  /// Decodes encode()'s output; throws std::invalid_argument on truncated or malformed bytes,
  /// naming the field, and validates the result.
  static DataIterator decode(std::string_view bytes);

  /// Every field equal: a decoded iterator equals the one encoded.
  friend bool operator==(const DataIterator&, const DataIterator&) = default;
};

}  // namespace corun
