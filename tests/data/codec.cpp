#include <corun/codec.hpp>

#include <catch2/catch.hpp>
#include <complex>
#include <cstdint>
#include <random>
#include <string>
#include <tuple>
#include <vector>
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

namespace {
std::string shape_bytes(const std::vector<std::uint64_t>& dims) {
  std::string out;
  const auto rank = static_cast<std::uint32_t>(dims.size());
  out.append(reinterpret_cast<const char*>(&rank), sizeof rank);
  for (std::uint64_t d : dims) out.append(reinterpret_cast<const char*>(&d), sizeof d);
  return out;
}

/// Decodes `bytes` as T: it either succeeds, and then encodes back to exactly `bytes`, or
/// throws std::invalid_argument. Anything else (another exception, UB under UBSan) fails.
template <class T>
void decode_quietly(const std::string& bytes) {
  try {
    const T value = codec<T>::decode(bytes);
    std::string again;
    codec<T>::encode(value, again);
    if (again != bytes) FAIL("decoded bytes do not encode back to themselves");
  } catch (const std::invalid_argument&) {
  }
}

template <class... T>
void decode_with_each(const std::string& bytes) {
  (decode_quietly<T>(bytes), ...);
}
}  // namespace

TEST_CASE("a zero dimension beside huge ones is rejected before the shape is built",
          "[codec][failure]") {
  const std::uint64_t huge = std::uint64_t{1} << 62;
  CHECK_THROWS_WITH(codec<xt::xarray<double>>::decode(shape_bytes({0, huge, huge})),
                    Catch::Contains("shape {0, 4611686018427387904, 4611686018427387904} "
                                    "overflows"));
  CHECK_THROWS_AS((codec<xt::xtensor<std::int64_t, 3>>::decode(shape_bytes({huge, huge, 0}))),
                  std::invalid_argument);
  // Empty arrays with sane shapes still decode, shape kept.
  const auto empty = codec<xt::xarray<float>>::decode(shape_bytes({0, 1u << 20, 1u << 20}));
  CHECK(empty.size() == 0);
  CHECK(empty.shape() == std::vector<std::size_t>{0, 1u << 20, 1u << 20});
}

TEST_CASE("tuples round-trip element by element, vectors and strings among them", "[codec]") {
  using Stats = std::tuple<double, std::int64_t, std::vector<std::uint64_t>, std::string, Point>;
  const Stats stats{-1.5, 42, {3, 0, 7}, "bins", Point{1, 2, 3}};
  CHECK(round_trip(stats) == stats);
  const Stats empty{0, 0, {}, {}, Point{}};
  CHECK(round_trip(empty) == empty);
  // Raw elements take their size, others a u64 length first.
  std::string bytes;
  codec<std::tuple<double, std::vector<std::uint64_t>>>::encode({2.0, {1, 2}}, bytes);
  CHECK(bytes.size() == 8 + 8 + 16);
  using Nested = std::tuple<std::tuple<int, std::string>, xt::xarray<double>>;
  const Nested nested{{7, "seven"}, xt::xarray<double>{{1.0, 2.0}, {3.0, 4.0}}};
  const Nested back = round_trip(nested);
  CHECK(std::get<0>(back) == std::get<0>(nested));
  CHECK(std::get<1>(back) == std::get<1>(nested));
}

TEST_CASE("a tuple whose bytes are truncated or too many is rejected, saying which",
          "[codec][failure]") {
  using Pair = std::tuple<double, std::vector<std::int32_t>>;
  std::string bytes;
  codec<Pair>::encode({1.0, {1, 2, 3}}, bytes);
  CHECK_THROWS_WITH(codec<Pair>::decode(bytes + "x"),
                    "corun::codec<std::tuple>: 1 bytes left after the last element");
  CHECK_THROWS_WITH(codec<Pair>::decode(bytes.substr(0, bytes.size() - 1)),
                    "corun::codec<std::tuple>: an element of 12 bytes where 11 are left");
  CHECK_THROWS_WITH(codec<Pair>::decode(bytes.substr(0, 4)),
                    "corun::codec<std::tuple>: truncated element");
  CHECK_THROWS_WITH(codec<Pair>::decode(bytes.substr(0, 12)),
                    "corun::codec<std::tuple>: truncated length");
}

TEST_CASE("every decoder rejects random, truncated and ill-shaped bytes with invalid_argument",
          "[codec][failure][fuzz]") {
  std::mt19937_64 rng{20240610};  // fixed: a failure reproduces
  const std::uint64_t dims[] = {0,
                                1,
                                2,
                                3,
                                7,
                                255,
                                std::uint64_t{1} << 31,
                                std::uint64_t{1} << 32,
                                std::uint64_t{1} << 61,
                                std::uint64_t{1} << 62,
                                std::uint64_t{1} << 63,
                                ~std::uint64_t{0}};
  const auto all_decoders = [](const std::string& bytes) {
    decode_with_each<std::int8_t, std::int64_t, double, Point, std::complex<float>, std::string,
                     std::vector<std::int32_t>, std::vector<double>, std::vector<Point>,
                     xt::xarray<double>, xt::xarray<std::int8_t>,
                     xt::xarray<std::uint16_t, xt::layout_type::column_major>,
                     xt::xtensor<float, 1>, xt::xtensor<std::int64_t, 2>,
                     xt::xtensor<double, 3, xt::layout_type::column_major>,
                     std::tuple<double, std::vector<std::uint64_t>>,
                     std::tuple<std::string, Point, xt::xarray<double>>>(bytes);
  };
  for (int round = 0; round < 3000; ++round) {
    // Random bytes of random length.
    std::string random(rng() % 64, '\0');
    for (char& c : random) c = static_cast<char>(rng());
    all_decoders(random);
    // A random shape from the edge values, with a payload that is empty, short or exact.
    std::vector<std::uint64_t> shape(rng() % 5);
    for (auto& d : shape) d = dims[rng() % std::size(dims)];
    std::string shaped = shape_bytes(shape);
    shaped.append(rng() % 3 == 0 ? 8 * (rng() % 4) : rng() % 40, '\x01');
    all_decoders(shaped);
    // A valid encoding, truncated anywhere.
    xt::xarray<double> valid = xt::xarray<double>::from_shape({rng() % 3, rng() % 3 + 1});
    std::string encoded;
    codec<xt::xarray<double>>::encode(valid, encoded);
    encoded.resize(rng() % (encoded.size() + 1));
    all_decoders(encoded);
  }
}
