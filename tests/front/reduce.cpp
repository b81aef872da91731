// The ready-made reductions: in-process, histogram's bins follow numpy.histogram's rule (the
// comparison with numpy itself, over many values, is histogram_numpy.py), and ranges it cannot
// bin are refused when it is made; mean and moments fold and merge exactly on values whose
// arithmetic is exact (moments_numpy.py compares them with numpy on a million values);
// bit_and, bit_or and all_of; then all_of through async_map_reduce on a real pool.
#include <corun/reduce.hpp>

#include <corun/map.hpp>

#include "support/drive.hpp"

#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <tuple>
#include <type_traits>
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

namespace {
template <class Op, class A, class R>
A fold_with(const Op& op, const std::vector<R>& values, std::size_t from, std::size_t to) {
  A acc = op.identity(A{});
  for (std::size_t i = from; i < to; ++i) acc = op(std::move(acc), values[i]);
  return acc;
}
template <class Op, class A, class R>
A fold_with(const Op& op, const std::vector<R>& values) {
  return fold_with<Op, A>(op, values, 0, values.size());
}
/// Whether `m` holds exactly this count, mean and M2.
bool holds(const corun::reduce::Moments& m, std::uint64_t count, double mean, double m2) {
  return m.count == count && m.mean() == mean && m.m2 == m2;
}
bool same(const corun::reduce::Moments& a, const corun::reduce::Moments& b) {
  return holds(a, b.count, b.mean(), b.m2);
}
}  // namespace

using corun::reduce::Mean;
using corun::reduce::Moments;

TEST_CASE("moments fold by Welford and merge by Chan's formula, exactly on exact values",
          "[reduce][moments]") {
  const corun::reduce::moments op;
  // {1, 3, 5, 7}: mean 4, M2 9 + 1 + 1 + 9; {5, 7, 9, 3}: mean 6, M2 20; Welford's steps are
  // exact on both (their running means are whole numbers).
  const std::vector<double> values{1, 3, 5, 7, 5, 7, 9, 3};
  const Moments left = fold_with<corun::reduce::moments, Moments>(op, values, 0, 4);
  const Moments right = fold_with<corun::reduce::moments, Moments>(op, values, 4, 8);
  CHECK(holds(left, 4, 4.0, 20.0));
  CHECK(left.shift == 1.0);
  CHECK(holds(right, 4, 6.0, 20.0));
  // Joined: mean 5, M2 20 + 20 + 2^2 * 4 * 4 / 8 = 48, whichever comes first.
  CHECK(holds(op.merge(left, right), 8, 5.0, 48.0));
  CHECK(holds(op.merge(right, left), 8, 5.0, 48.0));
  const Moments all = op.merge(left, right);
  CHECK(all.variance() == 6.0);
  CHECK(all.variance(1) == 48.0 / 7.0);
  CHECK(all.stddev(0) == std::sqrt(6.0));
  // One fold over all eight divides by 5, 6 and 7 on the way: within an ulp of it.
  const Moments folded = fold_with<corun::reduce::moments, Moments>(op, values);
  CHECK(folded.count == 8);
  CHECK(folded.mean() == Approx(5.0).epsilon(1e-15));
  CHECK(folded.m2 == Approx(48.0).epsilon(1e-15));
  // Integer results count as doubles; variance is reduce::moments under another name.
  static_assert(std::is_same_v<corun::reduce::variance, corun::reduce::moments>);
  CHECK(
      holds(fold_with<corun::reduce::variance, Moments>(op, std::vector<std::int64_t>{1, 3, 5, 7}),
            4, 4.0, 20.0));
}

TEST_CASE("moments of nothing, of one value and of negative values", "[reduce][moments]") {
  const corun::reduce::moments op;
  const Moments none = op.identity(Moments{});
  CHECK(holds(none, 0, 0.0, 0.0));
  CHECK(holds(op.merge(none, none), 0, 0.0, 0.0));
  CHECK(std::isnan(none.variance()));
  const Moments one = op(none, 3.25);
  CHECK(holds(one, 1, 3.25, 0.0));
  CHECK(one.variance() == 0.0);
  CHECK(std::isnan(one.variance(1)));  // numpy.var([3.25], ddof=1) is nan too
  CHECK(same(op.merge(none, one), one));
  CHECK(same(op.merge(one, none), one));
  // {-3, -1, -2}: mean -2, M2 2, variance 2/3 (numpy.var([-3, -1, -2]) = 0.6666666666666666).
  const Moments negative =
      fold_with<corun::reduce::moments, Moments>(op, std::vector<double>{-3, -1, -2});
  CHECK(holds(negative, 3, -2.0, 2.0));
  CHECK(negative.variance() == 2.0 / 3.0);
  CHECK(negative.variance(1) == 1.0);
  CHECK(same(op.merge(op(none, -3.0), op(op(none, -1.0), -2.0)), negative));
}

TEST_CASE("mean keeps the count, so partials join weighted by it", "[reduce][mean]") {
  const corun::reduce::mean op;
  const std::vector<double> values{1, 2, 3, 4, 10};
  const Mean all = fold_with<corun::reduce::mean, Mean>(op, values);
  CHECK(all.count == 5);
  CHECK(all.mean == 4.0);
  const Mean left = fold_with<corun::reduce::mean, Mean>(op, values, 0, 4);
  const Mean right = fold_with<corun::reduce::mean, Mean>(op, values, 4, 5);
  CHECK(left.mean == 2.5);
  const Mean joined = op.merge(left, right);
  CHECK(joined.count == 5);
  CHECK(joined.mean == 4.0);
  CHECK(op.merge(Mean{}, Mean{}).count == 0);
  CHECK(op.merge(Mean{}, right).mean == 10.0);
  CHECK(op.merge(left, Mean{}).mean == 2.5);
  CHECK(fold_with<corun::reduce::mean, Mean>(op, std::vector<int>{-4, -6}).mean == -5.0);
}

TEST_CASE("bit_and starts from all ones, bit_or from zero", "[reduce][bits]") {
  const corun::reduce::bit_and band;
  const corun::reduce::bit_or bor;
  CHECK(band.identity(std::uint8_t{0}) == 0xFF);
  CHECK(band.identity(std::int32_t{0}) == -1);
  CHECK(band.identity(std::uint64_t{0}) == ~std::uint64_t{0});
  CHECK(bor.identity(std::uint64_t{7}) == 0);
  const std::vector<std::uint32_t> values{0b1100, 0b1010, 0b1110};
  CHECK(fold_with<corun::reduce::bit_and, std::uint32_t>(band, values) == 0b1000);
  CHECK(fold_with<corun::reduce::bit_or, std::uint32_t>(bor, values) == 0b1110);
  CHECK(fold_with<corun::reduce::bit_and, std::uint32_t>(band, std::vector<std::uint32_t>{}) ==
        0xFFFFFFFFu);
  CHECK(fold_with<corun::reduce::bit_or, std::uint32_t>(bor, std::vector<std::uint32_t>{}) == 0);
  // Two partials join by the same operation.
  CHECK(band(std::uint32_t{0b1100}, std::uint32_t{0b0110}) == 0b0100);
  CHECK(bor(std::int64_t{-8}, std::int64_t{3}) == -5);
}

TEST_CASE("all_of computes several reductions in one pass, into a tuple", "[reduce][all_of]") {
  using corun::reduce::histogram;
  const corun::reduce::all_of stats(corun::reduce::sum{}, corun::reduce::min{},
                                    corun::reduce::max{}, histogram{0.0, 1.0, 4},
                                    corun::reduce::moments{});
  static_assert(std::is_trivially_copyable_v<decltype(stats)>);
  using Stats = std::tuple<double, double, double, std::vector<std::uint64_t>, Moments>;
  const Stats start = stats.identity(Stats{});
  CHECK(std::get<0>(start) == 0.0);
  CHECK(std::get<1>(start) == std::numeric_limits<double>::max());
  CHECK(std::get<2>(start) == std::numeric_limits<double>::lowest());
  CHECK(std::get<3>(start) == std::vector<std::uint64_t>{0, 0, 0, 0});
  CHECK(holds(std::get<4>(start), 0, 0.0, 0.0));
  CHECK(stats.get<3>().bins == 4);

  const std::vector<double> values{0.25, 0.5, -1.0, 3.0};
  Stats acc = start;
  for (const double v : values) acc = stats(std::move(acc), v);
  CHECK(std::get<0>(acc) == 2.75);
  CHECK(std::get<1>(acc) == -1.0);
  CHECK(std::get<2>(acc) == 3.0);
  CHECK(std::get<3>(acc) == std::vector<std::uint64_t>{0, 1, 1, 0});  // -1 and 3 are outside
  CHECK(same(std::get<4>(acc),
             fold_with<corun::reduce::moments, Moments>(corun::reduce::moments{}, values)));

  // Halves merged, each reduction by its own merge; an empty partial changes nothing.
  Stats left = start, right = start;
  left = stats(stats(std::move(left), values[0]), values[1]);
  right = stats(stats(std::move(right), values[2]), values[3]);
  const Stats joined = stats.merge(left, right);
  CHECK(std::get<0>(joined) == 2.75);
  CHECK(std::get<1>(joined) == -1.0);
  CHECK(std::get<2>(joined) == 3.0);
  CHECK(std::get<3>(joined) == std::vector<std::uint64_t>{0, 1, 1, 0});
  CHECK(std::get<4>(joined).count == 4);
  CHECK(std::get<4>(joined).mean() == 0.6875);
  const Stats with_empty = stats.merge(start, joined);
  CHECK(std::get<0>(with_empty) == 2.75);
  CHECK(std::get<3>(with_empty) == std::vector<std::uint64_t>{0, 1, 1, 0});
}

namespace {
/// Multiples of 1/8 in [-62.5, 62.5]: their sums are exact in any order.
double eighths(const std::int64_t& x) {
  return static_cast<double>((x * 7919) % 1001 - 500) / 8.0;
}
std::int64_t same_int(const std::int64_t& x) {
  return x;
}
}  // namespace

TEST_CASE("async_map_reduce with all_of gives every reduction's value in one map",
          "[reduce][all_of][map]") {
  asio::io_context io;
  corun::PoolOptions options;
  options.workers = 2;
  options.start_method = corun::StartMethod::fork;
  corun::ProcessPool pool(io.get_executor(), options);
  std::vector<std::int64_t> inputs(100'000);
  std::iota(inputs.begin(), inputs.end(), 0);

  using Stats = std::tuple<double, double, double, std::vector<std::uint64_t>, Moments>;
  const corun::reduce::all_of stats(corun::reduce::sum{}, corun::reduce::min{},
                                    corun::reduce::max{}, corun::reduce::histogram{-64.0, 64.0, 8},
                                    corun::reduce::moments{});
  Stats expected = stats.identity(Stats{});
  for (const std::int64_t x : inputs) expected = stats(std::move(expected), eighths(x));
  for (const std::size_t chunk : {std::size_t{0}, std::size_t{1000}}) {
    INFO("chunk_size " << chunk);
    auto future = corun::async_map_reduce<&eighths>(
        pool, inputs,
        Stats{
            0.0, std::numeric_limits<double>::max(), std::numeric_limits<double>::lowest(), {}, {}},
        stats, corun::MapOptions<>{.chunk_size = chunk}, asio::use_future);
    const Stats got = corun::test::drive(io, future);
    CHECK(std::get<0>(got) == std::get<0>(expected));
    CHECK(std::get<1>(got) == -62.5);
    CHECK(std::get<2>(got) == 62.5);
    CHECK(std::get<3>(got) == std::get<3>(expected));
    const std::vector<std::uint64_t>& counts = std::get<3>(got);
    CHECK(std::accumulate(counts.begin(), counts.end(), std::uint64_t{0}) == 100'000);
    CHECK(std::get<4>(got).count == 100'000);
    // The mean is 118.75 / 100000, near zero next to the values (|x| <= 62.5): within 1e-12 of
    // it (a relative bound means nothing there, for numpy's mean as for this one).
    CHECK(std::get<4>(got).mean() == Approx(118.75 / 100'000).epsilon(0).margin(1e-12));
    CHECK(std::get<0>(got) == 118.75);
    CHECK(std::get<4>(got).m2 == Approx(std::get<4>(expected).m2).epsilon(1e-12));
  }

  // The bit reductions and a sum of integers, over 0 .. 2^16 - 1.
  std::vector<std::int64_t> small(1 << 16);
  std::iota(small.begin(), small.end(), 0);
  auto bits = corun::async_map_reduce<&same_int>(
      pool, small, std::tuple<std::int64_t, std::int64_t, std::int64_t>{-1, 0, 0},
      corun::reduce::all_of(corun::reduce::bit_and{}, corun::reduce::bit_or{},
                            corun::reduce::sum{}),
      corun::MapOptions<>{.chunk_size = 4096}, asio::use_future);
  CHECK(corun::test::drive(io, bits) ==
        std::tuple<std::int64_t, std::int64_t, std::int64_t>{0, 0xFFFF, 65535LL * 65536 / 2});
  auto done = pool.async_shutdown(asio::use_future);
  corun::test::drive(io, done);
}
