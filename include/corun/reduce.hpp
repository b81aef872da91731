#pragma once
/// \file
/// Ready-made reductions for async_map_reduce: sum, product, min, max, all, any, bit_and,
/// bit_or, concat, flatten and histogram here; mean and moments (variance) in
/// <corun/reduce_moments.hpp>; all_of, which computes several of them in one pass, in
/// <corun/reduce_all_of.hpp>. This header includes both. Each has `identity(init)` (where a
/// chunk's fold starts), `A op(A, R)` (folds one result) and `merge(A, A)` (joins two chunks'
/// partials); all are trivially copyable, so they travel to the workers as their bytes.
/// Side: both.

#include <corun/detail/config.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace corun::reduce {

/// a + b + ...
struct sum {
  /// Where a chunk's fold starts: A{}.
  template <class A>
  A identity(const A&) const {
    return A{};
  }
  /// acc + value.
  template <class A, class R>
  A operator()(A acc, const R& value) const {
    acc += value;
    return acc;
  }
};

/// a * b * ...
struct product {
  /// Where a chunk's fold starts: A{1}.
  template <class A>
  A identity(const A&) const {
    return A{1};
  }
  /// acc * value.
  template <class A, class R>
  A operator()(A acc, const R& value) const {
    acc *= value;
    return acc;
  }
};

/// The smallest result (start from init = the largest value you accept, or the result type's
/// maximum).
struct min {
  /// Where a chunk's fold starts: the largest A (init for types without numeric_limits).
  template <class A>
  A identity(const A& init) const {
    if constexpr (std::numeric_limits<A>::is_specialized)
      return std::numeric_limits<A>::max();
    else
      return init;
  }
  /// The smaller of acc and value (acc when they are equal).
  template <class A, class R>
  A operator()(A acc, const R& value) const {
    return value < acc ? A(value) : acc;
  }
};

/// The largest result.
struct max {
  /// Where a chunk's fold starts: the lowest A (init for types without numeric_limits).
  template <class A>
  A identity(const A& init) const {
    if constexpr (std::numeric_limits<A>::is_specialized)
      return std::numeric_limits<A>::lowest();
    else
      return init;
  }
  /// The larger of acc and value (acc when they are equal).
  template <class A, class R>
  A operator()(A acc, const R& value) const {
    return acc < value ? A(value) : acc;
  }
};

/// Whether every result is true (logical and).
struct all {
  /// Where a chunk's fold starts: true.
  bool identity(bool) const { return true; }
  /// `acc && bool(value)`.
  template <class R>
  bool operator()(bool acc, const R& value) const {
    return acc && static_cast<bool>(value);
  }
};

/// Whether any result is true (logical or).
struct any {
  /// Where a chunk's fold starts: false.
  bool identity(bool) const { return false; }
  /// `acc || bool(value)`.
  template <class R>
  bool operator()(bool acc, const R& value) const {
    return acc || static_cast<bool>(value);
  }
};

/// Every result's bits and-ed together (`&`), for integral results; the identity is all ones.
struct bit_and {
  /// Where a chunk's fold starts: all bits set.
  template <class A>
  A identity(const A&) const {
    static_assert(std::is_integral_v<A>, "corun::reduce::bit_and reduces into an integral type");
    return static_cast<A>(~A{0});
  }
  /// `acc & value`.
  template <class A, class R>
  A operator()(A acc, const R& value) const {
    static_assert(std::is_integral_v<A>, "corun::reduce::bit_and reduces into an integral type");
    return static_cast<A>(acc & static_cast<A>(value));
  }
};

/// Every result's bits or-ed together (`|`), for integral results; the identity is zero.
struct bit_or {
  /// Where a chunk's fold starts: no bits set.
  template <class A>
  A identity(const A&) const {
    static_assert(std::is_integral_v<A>, "corun::reduce::bit_or reduces into an integral type");
    return A{0};
  }
  /// `acc | value`.
  template <class A, class R>
  A operator()(A acc, const R& value) const {
    static_assert(std::is_integral_v<A>, "corun::reduce::bit_or reduces into an integral type");
    return static_cast<A>(acc | static_cast<A>(value));
  }
};

/// The results one after another, in input order: into a std::vector<R> (each result one
/// element) or a std::string (each result a string or a character).
struct concat {
  /// Where a chunk's fold starts: an empty A.
  template <class A>
  A identity(const A&) const {
    return A{};
  }
  /// Appends `value`: its elements when it is an A itself (two partials), else it as one element.
  template <class A, class R>
  A operator()(A acc, R&& value) const {
    if constexpr (std::is_same_v<std::remove_cvref_t<R>, A>)
      acc.insert(acc.end(), std::make_move_iterator(value.begin()),
                 std::make_move_iterator(value.end()));
    else
      acc.push_back(std::forward<R>(value));
    return acc;
  }
};

/// The elements of each result (a range) one after another, in input order.
struct flatten {
  /// Where a chunk's fold starts: an empty A.
  template <class A>
  A identity(const A&) const {
    return A{};
  }
  /// Appends the elements of `value`.
  template <class A, class R>
  A operator()(A acc, R&& value) const {
    acc.insert(acc.end(), std::make_move_iterator(std::begin(value)),
               std::make_move_iterator(std::end(value)));
    return acc;
  }
  /// Appends b's elements to a.
  template <class A>
  A merge(A a, A b) const {
    return (*this)(std::move(a), std::move(b));
  }
};

/// Counts of results in `bins` equal-width bins over [lo, hi], by numpy.histogram's rule: the
/// edges are numpy.linspace(lo, hi, bins + 1), a value on an edge belongs to the bin on its
/// right, and the last bin includes hi. Results outside the range, and NaN, are not counted.
/// The value is a std::vector<std::uint64_t> of `bins` counts.
struct histogram {
  /// Left edge of the range.
  double lo = 0;
  /// Right edge of the range (the last bin includes it).
  double hi = 1;
  /// Number of bins.
  std::size_t bins = 10;

  histogram() = default;
  /// Throws std::invalid_argument naming the range when numpy could not bin it either: lo or hi
  /// not finite, lo not below hi, no bins, a width hi - lo or a scale bins / (hi - lo) that
  /// overflows a double.
  histogram(double lo_, double hi_, std::size_t bins_) : lo(lo_), hi(hi_), bins(bins_) {
    if (!std::isfinite(lo) || !std::isfinite(hi)) refuse("lo and hi must be finite");
    if (!(lo < hi) || bins == 0) refuse("lo must be below hi and bins at least 1");
    if (!std::isfinite(hi - lo))
      refuse("its width hi - lo overflows a double (" +
             format("%.17g", std::numeric_limits<double>::max()) +
             " at most); give a narrower range");
    if (!std::isfinite(static_cast<double>(bins) / (hi - lo)))
      refuse("its width " + format("%g", hi - lo) +
             " is too narrow for that many bins (bins / (hi - lo) overflows a double); give a "
             "wider range or fewer bins");
  }

  /// Edge `i` of the bins (0 <= i <= bins), as numpy.linspace computes it.
  double edge(std::size_t i) const noexcept {
    if (i == bins) return hi;
    const double delta = hi - lo, div = static_cast<double>(bins), at = static_cast<double>(i);
    const double step = delta / div;
    return (step == 0 ? at / div * delta : at * step) + lo;
  }

  /// The bin of `x`, for lo <= x <= hi: the scaled estimate, then corrected against the edges
  /// (numpy's estimate can be an ulp off near them).
  std::size_t bin_of(double x) const noexcept {
    auto bin = static_cast<std::size_t>((x - lo) * (static_cast<double>(bins) / (hi - lo)));
    if (bin >= bins) bin = bins - 1;
    if (bin > 0 && x < edge(bin)) --bin;
    if (bin + 1 < bins && x >= edge(bin + 1)) ++bin;
    return bin;
  }

  /// The reduction's value: one count per bin.
  using value_type = std::vector<std::uint64_t>;
  /// Where a chunk's fold starts: `bins` zeros.
  value_type identity(const value_type&) const { return value_type(bins, 0); }
  /// Counts `result` (as a double) in its bin, unless it is outside [lo, hi] or NaN.
  template <class R>
  value_type operator()(value_type acc, const R& result) const {
    const double x = static_cast<double>(result);
    if (x >= lo && x <= hi) ++acc[bin_of(x)];
    return acc;
  }
  /// Joins partials; an empty `a` (an init of `{}`) takes `b` as it is.
  value_type merge(value_type a, const value_type& b) const {
    if (a.empty()) return b;
    if (a.size() != b.size())
      throw std::invalid_argument("corun::reduce::histogram: partials of " +
                                  std::to_string(a.size()) + " and " + std::to_string(b.size()) +
                                  " bins");
    for (std::size_t i = 0; i < a.size(); ++i) a[i] += b[i];
    return a;
  }

 private:
  static std::string format(const char* spec, double x) {
    char text[64];
    std::snprintf(text, sizeof text, spec, x);
    return text;
  }
  [[noreturn]] void refuse(const std::string& why) const {
    throw std::invalid_argument("corun::reduce::histogram: range [" + format("%g", lo) + ", " +
                                format("%g", hi) + "] with " + std::to_string(bins) +
                                " bins: " + why);
  }
};

}  // namespace corun::reduce

// The rest of the ready-made reductions, so that this one include is all a program needs.
#include <corun/reduce_all_of.hpp>
#include <corun/reduce_moments.hpp>
