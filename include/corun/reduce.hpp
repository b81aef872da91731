#pragma once
/// \file
/// Ready-made reductions for async_map_reduce: sum, product, min, max, all, any, bit_and,
/// bit_or, concat, flatten, histogram, mean, moments (variance), and all_of, which computes
/// several of them in one pass. Each has `identity(init)` (where a chunk's fold starts),
/// `A op(A, R)` (folds one result) and `merge(A, A)` (joins two chunks' partials); all are
/// trivially copyable, so they travel to the workers as their bytes.
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

/// The count and the mean of results, reduce::mean's value: mergeable, unlike a mean alone.
struct Mean {
  std::uint64_t count = 0;  ///< results seen
  double mean = 0;          ///< their mean (0 when there are none)
};

/// The count, the mean and M2 (the sum of squared deviations from the mean) of results,
/// reduce::moments's value: what a variance is computed from, mergeable. The mean is kept as
/// `shift` (the first result the partial saw) plus the mean of the results' distances from it,
/// so that data far from zero (values near 1e9 that differ in their decimals) keep every digit
/// of their spread. `variance(ddof)` is numpy.var(x, ddof=ddof): M2 / (count - ddof), NaN when
/// count <= ddof (numpy warns and gives NaN too).
struct Moments {
  std::uint64_t count = 0;  ///< results seen
  double shift = 0;         ///< the first result seen, which the others are measured from
  double shifted_mean = 0;  ///< the mean of (result - shift)
  double m2 = 0;            ///< the sum of the results' squared deviations from their mean
  /// The mean of the results (0 when there are none).
  double mean() const noexcept { return shift + shifted_mean; }
  /// M2 / (count - ddof): the population variance (ddof 0, numpy's default) or the sample
  /// variance (ddof 1); NaN when count <= ddof.
  double variance(double ddof = 0) const noexcept {
    const double n = static_cast<double>(count) - ddof;
    return n > 0 ? m2 / n : std::numeric_limits<double>::quiet_NaN();
  }
  /// The square root of variance(ddof) (numpy.std).
  double stddev(double ddof = 0) const noexcept { return std::sqrt(variance(ddof)); }
};

/// The mean of the results (as doubles), into a reduce::Mean (pass `corun::reduce::Mean{}` as
/// init): a running mean per chunk, partials joined weighted by their counts.
struct mean {
  /// Where a chunk's fold starts: no results.
  Mean identity(const Mean&) const { return {}; }
  /// Adds one result to the running mean.
  template <class R>
  Mean operator()(Mean acc, const R& value) const {
    ++acc.count;
    acc.mean += (static_cast<double>(value) - acc.mean) / static_cast<double>(acc.count);
    return acc;
  }
  /// The mean of both partials' results.
  Mean merge(const Mean& a, const Mean& b) const {
    if (a.count == 0) return b;
    if (b.count == 0) return a;
    const std::uint64_t n = a.count + b.count;
    return {n,
            a.mean + (b.mean - a.mean) * (static_cast<double>(b.count) / static_cast<double>(n))};
  }
};

/// The count, mean and M2 of the results (as doubles), into a reduce::Moments (pass
/// `corun::reduce::Moments{}` as init), for their variance: Welford's update per result, Chan,
/// Golub and LeVeque's pairwise formula to join partials, both on the distances from the
/// partial's first result, so that none loses the precision the textbook sum of squares (or a
/// running mean near 1e9) does.
struct moments {
  /// Where a chunk's fold starts: no results.
  Moments identity(const Moments&) const { return {}; }
  /// Welford: one result into the running count, mean and M2.
  template <class R>
  Moments operator()(Moments acc, const R& value) const {
    const double x = static_cast<double>(value);
    if (acc.count == 0) acc.shift = x;
    const double y = x - acc.shift;
    ++acc.count;
    const double delta = y - acc.shifted_mean;
    acc.shifted_mean += delta / static_cast<double>(acc.count);
    acc.m2 += delta * (y - acc.shifted_mean);
    return acc;
  }
  /// Chan et al.: the moments of both partials' results together, measured from a's shift.
  Moments merge(const Moments& a, const Moments& b) const {
    if (a.count == 0) return b;
    if (b.count == 0) return a;
    const std::uint64_t n = a.count + b.count;
    const double na = static_cast<double>(a.count), nb = static_cast<double>(b.count);
    const double delta = (b.shift - a.shift) + (b.shifted_mean - a.shifted_mean);
    return {n, a.shift, a.shifted_mean + delta * (nb / static_cast<double>(n)),
            a.m2 + b.m2 + delta * delta * (na * nb / static_cast<double>(n))};
  }
};

/// reduce::moments under the name one looks for: its value's variance(ddof) is the variance.
using variance = moments;

}  // namespace corun::reduce

namespace corun::detail {
/// One reduction of an all_of, at position I (so that equal types stay distinct bases).
template <std::size_t I, class Op>
struct reduction_slot {
  Op op;
};
template <class Indices, class... Ops>
struct reduction_slots;
template <std::size_t... I, class... Ops>
struct reduction_slots<std::index_sequence<I...>, Ops...> : reduction_slot<I, Ops>... {};

template <class Op, class A>
A merge_one(const Op& op, A a, A b) {
  if constexpr (requires { op.merge(std::move(a), std::move(b)); })
    return op.merge(std::move(a), std::move(b));
  else
    return op(std::move(a), std::move(b));
}
template <class Op, class A>
A identity_one(const Op& op, const A& init) {
  if constexpr (requires { op.identity(init); })
    return op.identity(init);
  else
    return init;
}
}  // namespace corun::detail

namespace corun::reduce {

/// Several reductions in one pass over the results (workercontext's ReductionComposition): each
/// result is folded by every one of them, and the value is a std::tuple of their values, in
/// order. Pass as init the tuple of their inits:
/// \code
/// using Stats = std::tuple<double, double, double, std::vector<std::uint64_t>>;
/// Stats stats = co_await corun::async_map_reduce<&f>(
///     pool, inputs, Stats{0.0, std::numeric_limits<double>::max(),
///                         std::numeric_limits<double>::lowest(), {}},
///     corun::reduce::all_of(corun::reduce::sum{}, corun::reduce::min{}, corun::reduce::max{},
///                           corun::reduce::histogram{0.0, 1.0, 10}),
///     corun::MapOptions<>{}, asio::use_awaitable);
/// \endcode
/// Each reduction starts its chunks from its own identity (or from its init, if it has none:
/// then it must fold from its init as a chunk's start). all_of stays trivially copyable when
/// its reductions are, as the ready-made ones are.
template <class... Ops>
struct all_of : detail::reduction_slots<std::index_sequence_for<Ops...>, Ops...> {
  static_assert(sizeof...(Ops) > 0, "corun::reduce::all_of needs at least one reduction");
  static_assert((std::is_trivially_copyable_v<Ops> && ...),
                "corun::reduce::all_of: every reduction must be trivially copyable (it travels to "
                "the workers as its bytes)");

  all_of() = default;
  /// The reductions, in the order of the tuple's values.
  explicit all_of(Ops... ops)
      : detail::reduction_slots<std::index_sequence_for<Ops...>, Ops...>{{std::move(ops)}...} {}

  /// Reduction I.
  template <std::size_t I>
  const auto& get() const noexcept {
    return static_cast<
               const detail::reduction_slot<I, std::tuple_element_t<I, std::tuple<Ops...>>>&>(*this)
        .op;
  }

  /// Where a chunk's fold starts: each reduction's identity of its init.
  template <class... A>
  std::tuple<A...> identity(const std::tuple<A...>& init) const {
    check_arity<A...>();
    return identity_each(init, std::index_sequence_for<Ops...>{});
  }
  /// Folds `value` into every reduction's value.
  template <class... A, class R>
  std::tuple<A...> operator()(std::tuple<A...> acc, const R& value) const {
    check_arity<A...>();
    return apply_each(std::move(acc), value, std::index_sequence_for<Ops...>{});
  }
  /// Joins two partials, each reduction with its own merge.
  template <class... A>
  std::tuple<A...> merge(std::tuple<A...> a, std::tuple<A...> b) const {
    check_arity<A...>();
    return merge_each(std::move(a), std::move(b), std::index_sequence_for<Ops...>{});
  }

 private:
  template <class... A>
  static constexpr void check_arity() {
    static_assert(sizeof...(A) == sizeof...(Ops),
                  "corun::reduce::all_of: init must be a std::tuple with one value per reduction");
  }
  template <class Tuple, std::size_t... I>
  Tuple identity_each(const Tuple& init, std::index_sequence<I...>) const {
    return Tuple{detail::identity_one(get<I>(), std::get<I>(init))...};
  }
  template <class Tuple, class R, std::size_t... I>
  Tuple apply_each(Tuple acc, const R& value, std::index_sequence<I...>) const {
    ((std::get<I>(acc) = get<I>()(std::move(std::get<I>(acc)), value)), ...);
    return acc;
  }
  template <class Tuple, std::size_t... I>
  Tuple merge_each(Tuple a, Tuple b, std::index_sequence<I...>) const {
    ((std::get<I>(a) =
          detail::merge_one(get<I>(), std::move(std::get<I>(a)), std::move(std::get<I>(b)))),
     ...);
    return a;
  }
};
/// all_of(sum{}, min{}) is an all_of<sum, min>.
template <class... Ops>
all_of(Ops...) -> all_of<Ops...>;

}  // namespace corun::reduce
