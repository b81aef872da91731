#pragma once
/// \file
/// A half-open range of rows along axis 0 of a shared array.
/// Side: both.

#include <corun/detail/config.hpp>

#include <cstddef>
#include <ostream>

namespace corun {

/// Rows [start, end) of a shared array, counted along axis 0.
struct Slice {
  /// First row.
  std::size_t start = 0;
  /// One past the last row.
  std::size_t end = 0;

  /// Number of rows in the slice.
  constexpr std::size_t size() const noexcept { return end - start; }
  /// Whether it has no rows.
  constexpr bool empty() const noexcept { return end == start; }
  /// Same start and end.
  friend constexpr bool operator==(const Slice&, const Slice&) = default;
};

/// Prints `[start, end)`, as a half-open range.
inline std::ostream& operator<<(std::ostream& os, const Slice& s) {
  return os << '[' << s.start << ", " << s.end << ')';
}

}  // namespace corun
