#pragma once
/// \file
/// SharedArray<T>: an n-d array in a named POSIX shared-memory segment, owned (create) or
/// borrowed (attach). Names interoperate with Python's multiprocessing.shared_memory.
/// Side: both.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/data_iterator.hpp>
#include <corun/dtype.hpp>
#include <corun/slice_view.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace corun {

namespace detail {
/// A mapped segment; the owner unlinks it on destruction. Implemented with Boost.Interprocess.
class CORUN_API Segment {
 public:
  /// Creates `array.name` exclusively, sized for `array`, and maps it.
  static Segment create(const ArrayInfo& array);
  /// Maps the existing `array.name`, checking it is large enough for `array`.
  static Segment attach(const ArrayInfo& array);
  Segment() noexcept;
  Segment(Segment&&) noexcept;
  Segment& operator=(Segment&&) noexcept;
  ~Segment();

  const std::string& name() const noexcept { return name_; }
  void* data() const noexcept { return data_; }
  std::size_t bytes() const noexcept { return bytes_; }
  /// Whether this object removes the segment: false in a child of fork() (see create()).
  bool owner() const noexcept;

 private:
  void release() noexcept;
  struct Mapping;
  std::unique_ptr<Mapping> mapping_;
  std::string name_;
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
  bool owner_ = false;
};

/// Unlinks every segment this process owns now, without touching the objects (they still
/// remove nothing twice: unlinking a removed name fails quietly). Async-signal-safe: for a
/// handler of a fatal signal (GracefulStop's, once it is done) that must not leave them behind.
CORUN_API void remove_owned_segments() noexcept;
}  // namespace detail

/// A name for a new segment: `corun_<pid>_<16 random hex digits>`.
CORUN_API std::string unique_segment_name();

/// Removes `corun_<pid>_*` segments whose owner object no longer exists (left behind by a
/// SIGKILLed owner). Liveness is the lock the owner holds, never the pid: an owner that died
/// and was not reaped yet holds none, nor does a child it fork()ed (see create()). A segment
/// being created (`corun_<pid>_*.pending`, renamed to its own name once locked) is removed only
/// when that pid has exited. Returns the names removed.
CORUN_API std::vector<std::string> sweep_stale_segments();

/// An array of `T` in named shared memory, row-major, shape fixed at creation. Move-only.
template <element_type T>
class SharedArray {
 public:
  /// T, the element type.
  using value_type = T;
  /// A plain pointer: the elements are contiguous.
  using iterator = T*;
  /// A plain pointer to const.
  using const_iterator = const T*;

  /// Creates a new segment of product(shape) elements, zero-filled, mode 0600. With an empty
  /// `name` picks an unpredictable one (see unique_segment_name()). The segment is removed
  /// when this object is destroyed (in the process that created it, not in a child of fork():
  /// there owner() is false, and the child holds neither the mapping nor the lock that keeps the
  /// segment alive, so a SIGKILLed owner's segments are swept even while its children run),
  /// and its memory returns to /dev/shm at once: the data is gone, even for a process that still
  /// maps the segment (an idle worker, a borrower), which must not use it any more (it reads
  /// zeros, and its writes take /dev/shm space again). Throws corun::Error:
  /// segment_exists when the name is taken, not_enough_shared_memory when /dev/shm lacks room or
  /// the memory cannot hold it (MemAvailable, or what the process's memory cgroup, v2 or v1,
  /// still allows: /dev/shm is often sized to RAM, and a larger array would bring the OOM killer;
  /// the message gives both sizes); std::invalid_argument for a bad name or a shape whose byte size
  /// overflows.
  static SharedArray create(std::vector<std::size_t> shape, const std::string& name = "") {
    ArrayInfo info{name.empty() ? unique_segment_name() : name, std::move(shape), DType::of<T>()};
    detail::Segment segment = detail::Segment::create(info);
    return SharedArray(std::move(segment), std::move(info.shape));
  }

  /// Maps an existing segment (made by corun, numpy, or anything using shm_open) as an array of
  /// `shape`. Never removes it. Throws corun::Error: segment_not_found (naming it),
  /// segment_too_small (giving both sizes).
  static SharedArray attach(const std::string& name, std::vector<std::size_t> shape) {
    ArrayInfo info{name, std::move(shape), DType::of<T>()};
    detail::Segment segment = detail::Segment::attach(info);
    return SharedArray(std::move(segment), std::move(info.shape));
  }

  /// A moved-from array is empty: no segment, size() 0, begin() == end().
  SharedArray(SharedArray&& other) noexcept
      : segment_(std::move(other.segment_)),
        shape_(std::exchange(other.shape_, {})),
        size_(std::exchange(other.size_, 0)) {}
  /// Takes over `other`'s segment; the one this array held is released as by the destructor.
  SharedArray& operator=(SharedArray&& other) noexcept {
    segment_ = std::move(other.segment_);
    shape_ = std::exchange(other.shape_, {});
    size_ = std::exchange(other.size_, 0);
    return *this;
  }

  /// Segment name without the leading '/' (what Python's SharedMemory(name=...) takes).
  const std::string& name() const noexcept { return segment_.name(); }
  /// The shape given at create() or attach().
  const std::vector<std::size_t>& shape() const noexcept { return shape_; }
  /// Number of elements.
  std::size_t size() const noexcept { return size_; }
  /// True for the creating object, which removes the segment when destroyed.
  bool owner() const noexcept { return segment_.owner(); }
  /// Name, shape and element type: what DataIterator and other processes need.
  ArrayInfo info() const { return {name(), shape_, DType::of<T>()}; }

  /// Element 0, row-major; null for a moved-from array.
  T* data() noexcept { return static_cast<T*>(segment_.data()); }
  /// data(), read-only.
  const T* data() const noexcept { return static_cast<const T*>(segment_.data()); }
  /// data(): [begin(), end()) are all size() elements, for range-for and the algorithms.
  T* begin() noexcept { return data(); }
  /// data() + size().
  T* end() noexcept { return data() + size_; }
  /// begin(), read-only.
  const T* begin() const noexcept { return data(); }
  /// end(), read-only.
  const T* end() const noexcept { return data() + size_; }
  /// Element `i` of the flat row-major storage, unchecked (i < size()).
  T& operator[](std::size_t i) noexcept { return data()[i]; }
  /// operator[], read-only.
  const T& operator[](std::size_t i) const noexcept { return data()[i]; }

  /// The whole array as an xtensor adaptor (no copy).
  SliceView<T> view() noexcept { return detail::adapt_rows<T>({data(), size_, shape_}); }
  /// The same, read-only.
  SliceView<const T> view() const noexcept {
    return detail::adapt_rows<const T>({const_cast<T*>(data()), size_, shape_});
  }

 private:
  SharedArray(detail::Segment segment, std::vector<std::size_t> shape)
      : segment_(std::move(segment)), shape_(std::move(shape)) {
    size_ = 1;
    for (std::size_t d : shape_) size_ *= d;
  }

  detail::Segment segment_;
  std::vector<std::size_t> shape_;
  std::size_t size_ = 0;
};

}  // namespace corun
