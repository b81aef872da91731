#pragma once
/// \file
/// The statistics reductions for async_map_reduce: mean, and moments (alias variance), whose
/// values reduce::Mean and reduce::Moments merge exactly across chunks. Included by
/// <corun/reduce.hpp>.
/// Side: both.

#include <corun/detail/config.hpp>

#include <cmath>
#include <cstdint>
#include <limits>

namespace corun::reduce {

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

/// reduce::moments under the name one looks for: its value's variance(ddof) is the variance.
using variance = moments;

}  // namespace corun::reduce
