// The ready-made reductions, in-process: histogram's bins follow numpy.histogram's rule (the
// comparison with numpy itself, over many values, is histogram_numpy.py), and ranges it cannot
// bin are refused when it is made.
#include <corun/reduce.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

using corun::reduce::histogram;
using Counts = histogram::value_type;

namespace {
Counts fold(const histogram& h, const std::vector<double>& values) {
  Counts acc = h.identity({});
  for (const double v : values) acc = h(std::move(acc), v);
  return acc;
}
}  // namespace

TEST_CASE("histogram puts 0.3, 0.6 and 0.7 in numpy's bins 2, 5 and 6", "[reduce][histogram]") {
  // numpy.histogram([0.3, 0.6, 0.7], bins=10, range=(0, 1)): 0.3 * 10 is 3, but linspace's
  // edge 3 is 3 * 0.1 = 0.30000000000000004, above 0.3, so 0.3 belongs to bin 2.
  const histogram h{0, 1, 10};
  CHECK(fold(h, {0.3}) == Counts{0, 0, 1, 0, 0, 0, 0, 0, 0, 0});
  CHECK(fold(h, {0.6}) == Counts{0, 0, 0, 0, 0, 1, 0, 0, 0, 0});
  CHECK(fold(h, {0.7}) == Counts{0, 0, 0, 0, 0, 0, 1, 0, 0, 0});
  CHECK(h.bin_of(0.3) == 2);
  CHECK(h.bin_of(0.6) == 5);
  CHECK(h.bin_of(0.7) == 6);
}

TEST_CASE("histogram's edges are numpy.linspace's, the left one in its bin, hi in the last",
          "[reduce][histogram]") {
  const histogram h{0, 1, 10};
  // numpy.linspace(0, 1, 11)
  const std::vector<double> edges{
      0.0, 0.1, 0.2, 0.30000000000000004, 0.4, 0.5, 0.6000000000000001, 0.7000000000000001,
      0.8, 0.9, 1.0};
  for (std::size_t i = 0; i < edges.size(); ++i) CHECK(h.edge(i) == edges[i]);
  for (std::size_t i = 0; i < 10; ++i) {
    CHECK(h.bin_of(edges[i]) == i);
    if (i > 0) CHECK(h.bin_of(std::nextafter(edges[i], 0.0)) == i - 1);
  }
  CHECK(h.bin_of(1.0) == 9);
  CHECK(fold(h, {-0.0, std::nextafter(0.0, -1.0), std::nextafter(1.0, 2.0), std::nan(""),
                 std::numeric_limits<double>::infinity()}) == Counts{1, 0, 0, 0, 0, 0, 0, 0, 0, 0});
}

TEST_CASE("a histogram range numpy cannot bin is refused when made, naming the range",
          "[reduce][histogram][failure]") {
  const double inf = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH(histogram(-1e308, 1e308, 10),
                    "corun::reduce::histogram: range [-1e+308, 1e+308] with 10 bins: its width "
                    "hi - lo overflows a double (1.7976931348623157e+308 at most); give a "
                    "narrower range");
  CHECK_THROWS_WITH(histogram(0, 1e-310, 10),
                    "corun::reduce::histogram: range [0, 1e-310] with 10 bins: its width 1e-310 "
                    "is too narrow for that many bins (bins / (hi - lo) overflows a double); give "
                    "a wider range or fewer bins");
  CHECK_THROWS_WITH(histogram(-inf, 0, 3),
                    "corun::reduce::histogram: range [-inf, 0] with 3 bins: lo and hi must be "
                    "finite");
  CHECK_THROWS_WITH(histogram(0, std::nan(""), 3),
                    Catch::Contains("[0, nan]") && Catch::Contains("must be finite"));
  CHECK_THROWS_WITH(histogram(1, 1, 4),
                    "corun::reduce::histogram: range [1, 1] with 4 bins: lo must be below hi and "
                    "bins at least 1");
  CHECK_THROWS_AS(histogram(0, 1, 0), std::invalid_argument);
  // The widest and the narrowest ranges that are not refused still bin exactly.
  const histogram wide{-8.9e307, 8.9e307, 1000};
  CHECK(wide.bin_of(-8.9e307) == 0);
  CHECK(wide.bin_of(0.0) == 499);  // numpy rounds it so too
  CHECK(wide.bin_of(8.9e307) == 999);
  const histogram narrow{0, 1e-300, 10};
  CHECK(narrow.bin_of(5e-301) == 5);
}
