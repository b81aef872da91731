#include <corun/codec.hpp>

#include <catch2/catch.hpp>
#include <complex>
#include <xtensor/xio.hpp>

using corun::codec;

namespace {
template <class T>
T round_trip(const T& value) {
  std::string bytes;
  codec<T>::encode(value, bytes);
  return codec<T>::decode(bytes);
}

struct Point {
  double x, y;
  int tag;
  friend bool operator==(const Point&, const Point&) = default;
};
}  // namespace

TEST_CASE("trivially copyable results round-trip through their bytes", "[codec]") {
  CHECK(round_trip(std::int64_t{-42}) == -42);
  CHECK(round_trip(3.25) == 3.25);
  CHECK(round_trip(std::complex<float>(1.5f, -2.f)) == std::complex<float>(1.5f, -2.f));
  CHECK(round_trip(Point{1.5, -2.5, 7}) == Point{1.5, -2.5, 7});
  std::string eight;
  codec<std::int64_t>::encode(5, eight);
  CHECK(eight.size() == 8);
}

TEST_CASE("strings and vectors round-trip, empty ones included", "[codec]") {
  CHECK(round_trip(std::string("foo_0foo_1")) == "foo_0foo_1");
  CHECK(round_trip(std::string()).empty());
  CHECK(round_trip(std::vector<double>{1, 2.5, -3}) == std::vector<double>{1, 2.5, -3});
  CHECK(round_trip(std::vector<std::int32_t>{}).empty());
}

TEST_CASE("xtensor containers round-trip with their shape", "[codec]") {
  const xt::xarray<double> a = {{1., 2., 3.}, {4., 5., 6.}};
  const auto b = round_trip(a);
  CHECK(b.shape() == a.shape());
  CHECK(bool(b == a));
  const xt::xtensor<std::int64_t, 1> t = {7, 8, 9};
  CHECK(bool(round_trip(t) == t));
  const xt::xarray<float> empty = xt::xarray<float>::from_shape({0, 4});
  CHECK(round_trip(empty).shape() == empty.shape());
}

TEST_CASE("malformed result bytes are rejected with std::invalid_argument", "[codec][failure]") {
  CHECK_THROWS_WITH(codec<std::int64_t>::decode("abc"), Catch::Contains("got 3 bytes, expected 8"));
  CHECK_THROWS_WITH(codec<std::vector<double>>::decode(std::string(12, 'x')),
                    Catch::Contains("not a multiple of the element size 8"));
  CHECK_THROWS_AS(codec<xt::xarray<double>>::decode("ab"), std::invalid_argument);
  std::string bytes;
  codec<xt::xarray<double>>::encode(xt::xarray<double>({1., 2.}), bytes);
  bytes.pop_back();
  CHECK_THROWS_AS(codec<xt::xarray<double>>::decode(bytes), std::invalid_argument);
  std::string rank2;
  const xt::xarray<double> column = xt::xarray<double>::from_shape({2, 1});
  codec<xt::xarray<double>>::encode(column, rank2);
  CHECK_THROWS_WITH((codec<xt::xtensor<double, 1>>::decode(rank2)),
                    Catch::Contains("rank does not match"));
  // A shape whose element count overflows must not allocate.
  std::string huge;
  const std::uint32_t rank = 2;
  const std::uint64_t dim = std::uint64_t{1} << 62;
  huge.append(reinterpret_cast<const char*>(&rank), 4);
  huge.append(reinterpret_cast<const char*>(&dim), 8);
  huge.append(reinterpret_cast<const char*>(&dim), 8);
  CHECK_THROWS_AS(codec<xt::xarray<double>>::decode(huge), std::invalid_argument);
}
