// Slice views: xtensor views of exactly one slice of a shared array, mapped through the
// per-process cache, and the errors for a wrong element type, slice or segment.
#include <corun/slice_view.hpp>

#include <catch2/catch.hpp>

#include <corun/error.hpp>
#include <corun/shared_array.hpp>

#include <cstdint>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>
#include <xtensor/xmath.hpp>

using corun::DataIterator;
using corun::Slice;
using Ints = corun::SharedArray<std::int64_t>;

namespace {

template <class View>
std::vector<typename std::remove_const_t<typename View::value_type>> elements(const View& v) {
  return {v.begin(), v.end()};
}

std::vector<std::size_t> shape_of(const auto& v) {
  return {v.shape().begin(), v.shape().end()};
}

template <class F>
corun::Error error_of(F&& f) {
  try {
    f();
  } catch (const corun::Error& e) {
    return e;
  }
  FAIL("no corun::Error was thrown");
  throw std::logic_error("unreachable");
}

}  // namespace

TEST_CASE("a read-only view of a 1-d slice has exactly its elements", "[slice_view]") {
  auto a = Ints::create({10});
  std::iota(a.begin(), a.end(), 1);
  const auto it = DataIterator::over(a, 4);
  const std::vector<std::vector<std::int64_t>> expected = {{1, 2, 3, 4}, {5, 6, 7, 8}, {9, 10}};
  std::size_t i = 0;
  std::int64_t total = 0;
  const std::int64_t* base = nullptr;
  for (Slice s : it) {
    const auto v = corun::view_slice<const std::int64_t>(it, s);
    STATIC_REQUIRE(std::is_same_v<decltype(v.data()), const std::int64_t*>);
    REQUIRE(i < expected.size());
    CHECK(shape_of(v) == std::vector<std::size_t>{s.size()});
    CHECK(elements(v) == expected[i]);
    // Views of one array share this process's one mapping of it: no copies.
    if (base == nullptr) base = v.data();
    CHECK(v.data() == base + s.start);
    a[s.start] += 100;
    CHECK(v(0) == static_cast<std::int64_t>(s.start) + 101);
    a[s.start] -= 100;
    total += xt::sum(v)();
    ++i;
  }
  CHECK(i == 3);
  CHECK(total == 55);
}

TEST_CASE("a view of an n-d slice keeps the other axes", "[slice_view]") {
  auto a = Ints::create({10, 3});
  std::iota(a.begin(), a.end(), 0);
  const auto it = DataIterator::partitioned(a, 3);
  REQUIRE(it.slice(1) == Slice{4, 7});
  const auto v = corun::view_slice<const std::int64_t>(it, it.slice(1));
  CHECK(shape_of(v) == std::vector<std::size_t>{3, 3});
  CHECK(elements(v) == std::vector<std::int64_t>{12, 13, 14, 15, 16, 17, 18, 19, 20});
  CHECK(v(0, 0) == 12);
  CHECK(v(2, 1) == 19);
  const auto last = corun::view_slice<const std::int64_t>(it, it.slice(2));
  CHECK(shape_of(last) == std::vector<std::size_t>{3, 3});
  CHECK(last(2, 2) == 29);

  auto cube = corun::SharedArray<float>::create({4, 2, 5});
  std::iota(cube.begin(), cube.end(), 0.0f);
  const auto rows = corun::view_slice<const float>(DataIterator::over(cube, 3), Slice{3, 4});
  CHECK(shape_of(rows) == std::vector<std::size_t>{1, 2, 5});
  CHECK(rows(0, 0, 0) == 30.0f);
  CHECK(rows(0, 1, 4) == 39.0f);
}

TEST_CASE("a mutable view writes into the shared array", "[slice_view]") {
  auto a = Ints::create({6, 2});
  const auto it = DataIterator::over(a, 2);
  for (Slice s : it) {
    auto v = corun::view_slice<std::int64_t>(it, s);
    v += static_cast<std::int64_t>(s.start);
    v(0, 1) = -1;
  }
  CHECK(std::vector<std::int64_t>(a.begin(), a.end()) ==
        std::vector<std::int64_t>{0, -1, 0, 0, 2, -1, 2, 2, 4, -1, 4, 4});
  // A borrower made by attach sees the writes too.
  auto b = Ints::attach(a.name(), {6, 2});
  CHECK(b[5] == -1);
}

TEST_CASE("view_array shows the whole array", "[slice_view]") {
  auto a = corun::SharedArray<double>::create({3, 2});
  std::iota(a.begin(), a.end(), 0.5);
  const auto v = corun::view_array<const double>(a.info());
  CHECK(shape_of(v) == std::vector<std::size_t>{3, 2});
  CHECK(elements(v) == std::vector<double>{0.5, 1.5, 2.5, 3.5, 4.5, 5.5});
  auto w = corun::view_array<double>(a.info());
  w(2, 1) = 9.0;
  CHECK(a[5] == 9.0);
  const auto r = corun::view_rows<const double>(a.info(), Slice{1, 2});
  CHECK(elements(r) == std::vector<double>{2.5, 3.5});
}

TEST_CASE("empty slices and empty arrays give empty views", "[slice_view]") {
  auto a = Ints::create({4});
  const auto none = corun::view_slice<const std::int64_t>(DataIterator::over(a, 1), Slice{2, 2});
  CHECK(none.size() == 0);
  CHECK(shape_of(none) == std::vector<std::size_t>{0});
  auto empty = Ints::create({0, 3});
  const auto v = corun::view_array<const std::int64_t>(empty.info());
  CHECK(v.size() == 0);
  CHECK(shape_of(v) == std::vector<std::size_t>{0, 3});
  auto flat = Ints::create({5, 0});
  const auto rows = corun::view_rows<const std::int64_t>(flat.info(), Slice{1, 4});
  CHECK(rows.size() == 0);
  CHECK(shape_of(rows) == std::vector<std::size_t>{3, 0});
}

TEST_CASE("a dtype mismatch names both element types", "[slice_view][failure]") {
  auto a = Ints::create({4}, "corun_test_dtype");
  const auto it = DataIterator::over(a, 2);
  const corun::Error e = error_of([&] { (void)corun::view_slice<const double>(it, Slice{0, 2}); });
  CHECK(e.code() == corun::errc::dtype_mismatch);
  CHECK_THAT(e.what(), Catch::Contains("<i8") && Catch::Contains("<f8") &&
                           Catch::Contains("corun_test_dtype"));
  const corun::Error u = error_of([&] { (void)corun::view_slice<std::uint64_t>(it, Slice{0, 2}); });
  CHECK(u.code() == corun::errc::dtype_mismatch);
  CHECK_THAT(u.what(), Catch::Contains("<u8"));
}

TEST_CASE("a slice beyond the array is rejected", "[slice_view][failure]") {
  auto a = Ints::create({10});
  const auto it = DataIterator::over(a, 4);
  CHECK_THROWS_AS(corun::view_slice<const std::int64_t>(it, Slice{8, 11}), std::invalid_argument);
  CHECK_THROWS_WITH(corun::view_slice<const std::int64_t>(it, Slice{8, 11}),
                    Catch::Contains("[8, 11)") && Catch::Contains("10 rows"));
  CHECK_THROWS_AS(corun::view_slice<const std::int64_t>(it, Slice{11, 12}), std::invalid_argument);
  CHECK_THROWS_AS(corun::view_slice<const std::int64_t>(it, Slice{5, 4}), std::invalid_argument);
}

TEST_CASE("a view of a missing segment names it", "[slice_view][failure]") {
  const DataIterator it{"corun_test_no_such_segment",     2, 4, {4},
                        corun::DType::of<std::int64_t>(), 0};
  const corun::Error e = error_of([&] {
    (void)corun::view_slice<const std::int64_t>(it, Slice{0, 2});
  });
  CHECK(e.code() == corun::errc::segment_not_found);
  CHECK_THAT(e.what(), Catch::Contains("corun_test_no_such_segment"));
}

TEST_CASE("a view of a segment smaller than the metadata says is refused",
          "[slice_view][failure]") {
  auto a = Ints::create({4}, "corun_test_short");
  const DataIterator it{"corun_test_short", 2, 8, {8}, corun::DType::of<std::int64_t>(), 0};
  const corun::Error e = error_of([&] {
    (void)corun::view_slice<const std::int64_t>(it, Slice{0, 2});
  });
  CHECK(e.code() == corun::errc::segment_too_small);
  CHECK_THAT(e.what(), Catch::Contains("32 bytes") && Catch::Contains("needs 64"));
}

TEST_CASE("the cache maps a segment once", "[slice_view][cache]") {
  corun::release_mappings();
  auto a = Ints::create({8});
  std::iota(a.begin(), a.end(), 1);
  const auto it = DataIterator::partitioned(a, 2);
  const std::size_t before = corun::cached_mapping_count();
  const auto first = corun::view_slice<const std::int64_t>(it, it.slice(0));
  const auto second = corun::view_slice<const std::int64_t>(it, it.slice(1));
  auto writable = corun::view_slice<std::int64_t>(it, it.slice(1));
  CHECK(corun::cached_mapping_count() == before + 1);
  // All views share one mapping: consecutive slices are adjacent in memory.
  CHECK(second.data() == first.data() + 4);
  CHECK(writable.data() == second.data());
  auto b = Ints::create({8});
  (void)corun::view_array<const std::int64_t>(b.info());
  CHECK(corun::cached_mapping_count() == before + 2);
}

TEST_CASE("a segment re-created under the same name is mapped again", "[slice_view][cache]") {
  corun::release_mappings();
  const std::string name = "corun_test_recreate";
  const std::size_t before = corun::cached_mapping_count();
  {
    auto a = Ints::create({4}, name);
    std::fill(a.begin(), a.end(), 1);
    const auto v = corun::view_array<const std::int64_t>(a.info());
    CHECK(elements(v) == std::vector<std::int64_t>{1, 1, 1, 1});
  }
  CHECK(corun::cached_mapping_count() == before + 1);  // kept until released or replaced
  {
    auto b = Ints::create({4}, name);
    std::fill(b.begin(), b.end(), 2);
    const auto v = corun::view_array<const std::int64_t>(b.info());
    CHECK(elements(v) == std::vector<std::int64_t>{2, 2, 2, 2});
    CHECK(corun::cached_mapping_count() == before + 1);  // the stale mapping was replaced
  }
  {
    auto c = Ints::create({6}, name);  // larger this time
    std::iota(c.begin(), c.end(), 10);
    const auto v = corun::view_array<const std::int64_t>(c.info());
    CHECK(elements(v) == std::vector<std::int64_t>{10, 11, 12, 13, 14, 15});
  }
  corun::release_mappings();
  CHECK(corun::cached_mapping_count() == before);
}

TEST_CASE("release_mappings drops mappings of removed segments only", "[slice_view][cache]") {
  corun::release_mappings();
  const std::size_t before = corun::cached_mapping_count();
  auto kept = Ints::create({2});
  std::optional<Ints> removed;
  removed.emplace(Ints::create({2}));
  (void)corun::view_array<const std::int64_t>(kept.info());
  (void)corun::view_array<const std::int64_t>(removed->info());
  CHECK(corun::cached_mapping_count() == before + 2);
  removed.reset();
  corun::release_mappings();
  CHECK(corun::cached_mapping_count() == before + 1);
  kept[1] = 5;
  CHECK(corun::view_array<const std::int64_t>(kept.info())(1) == 5);
  CHECK(corun::cached_mapping_count() == before + 1);
  corun::release_mappings(true);
  CHECK(corun::cached_mapping_count() == 0);
  // A view after releasing everything maps the segment again.
  CHECK(corun::view_array<const std::int64_t>(kept.info())(1) == 5);
  CHECK(corun::cached_mapping_count() == 1);
  corun::release_mappings(true);
}
