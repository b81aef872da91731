// DType: numpy-compatible descriptors, their round trip through str() and parse(), and the
// fixed-size string element types.
#include <corun/dtype.hpp>

#include <catch2/catch.hpp>

#include <complex>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

using corun::DType;
using corun::FixedString;
using corun::FixedUString;

namespace {

/// DType::of<T>() has the expected kind, item size and numpy string, and that string parses
/// back to the same descriptor.
template <class T>
void check_round_trip(std::string_view expected, DType::Kind kind, std::size_t itemsize) {
  constexpr DType dt = DType::of<T>();
  INFO("expected " << expected);
  CHECK(dt.kind() == kind);
  CHECK(dt.itemsize() == itemsize);
  CHECK(dt.itemsize() == sizeof(T));
  CHECK_FALSE(dt.empty());
  CHECK(dt.str() == expected);
  CHECK(DType::parse(dt.str()) == dt);
  CHECK(DType::parse(expected) == dt);
  CHECK(DType::parse(expected).str() == expected);
}

}  // namespace

TEST_CASE("every element type round-trips through its numpy string", "[dtype]") {
  using K = DType::Kind;
  check_round_trip<bool>("|b1", K::boolean, 1);
  check_round_trip<std::int8_t>("|i1", K::signed_int, 1);
  check_round_trip<std::int16_t>("<i2", K::signed_int, 2);
  check_round_trip<std::int32_t>("<i4", K::signed_int, 4);
  check_round_trip<std::int64_t>("<i8", K::signed_int, 8);
  check_round_trip<std::uint8_t>("|u1", K::unsigned_int, 1);
  check_round_trip<std::uint16_t>("<u2", K::unsigned_int, 2);
  check_round_trip<std::uint32_t>("<u4", K::unsigned_int, 4);
  check_round_trip<std::uint64_t>("<u8", K::unsigned_int, 8);
  check_round_trip<float>("<f4", K::floating, 4);
  check_round_trip<double>("<f8", K::floating, 8);
  check_round_trip<std::complex<float>>("<c8", K::complex, 8);
  check_round_trip<std::complex<double>>("<c16", K::complex, 16);
  check_round_trip<FixedString<16>>("|S16", K::bytes, 16);
  check_round_trip<FixedString<1>>("|S1", K::bytes, 1);
  check_round_trip<FixedUString<8>>("<U8", K::unicode, 32);
  check_round_trip<FixedUString<1>>("<U1", K::unicode, 4);
}

TEST_CASE("const element types have the descriptor of the plain type", "[dtype]") {
  STATIC_REQUIRE(DType::of<const double>() == DType::of<double>());
  STATIC_REQUIRE(DType::of<const FixedUString<3>>() == DType::of<FixedUString<3>>());
  CHECK(DType::of<const FixedUString<3>>().str() == "<U3");
}

TEST_CASE("the element_type concept admits numpy types and rejects others", "[dtype]") {
  STATIC_REQUIRE(corun::element_type<std::int64_t>);
  STATIC_REQUIRE(corun::element_type<std::complex<double>>);
  STATIC_REQUIRE(corun::element_type<FixedString<4>>);
  STATIC_REQUIRE(corun::element_type<FixedUString<4>>);
  STATIC_REQUIRE_FALSE(corun::element_type<std::string>);
  STATIC_REQUIRE_FALSE(corun::element_type<long double>);
  STATIC_REQUIRE_FALSE(corun::element_type<std::complex<long double>>);
  STATIC_REQUIRE_FALSE(corun::element_type<int*>);
}

TEST_CASE("a default DType is unset", "[dtype]") {
  constexpr DType dt;
  CHECK(dt.empty());
  CHECK(dt.kind() == DType::Kind::none);
  CHECK(dt.itemsize() == 0);
  CHECK(dt.str() == "");
  CHECK(dt != DType::of<bool>());
}

TEST_CASE("parse accepts native and unspecified byte order", "[dtype]") {
  CHECK(DType::parse("=i8") == DType::of<std::int64_t>());
  CHECK(DType::parse("i8") == DType::of<std::int64_t>());
  CHECK(DType::parse("i8").str() == "<i8");
  CHECK(DType::parse("=f4") == DType::of<float>());
  CHECK(DType::parse("<i1") == DType::of<std::int8_t>());
  CHECK(DType::parse("<i1").str() == "|i1");
  CHECK(DType::parse("<b1") == DType::of<bool>());
  CHECK(DType::parse("b1") == DType::of<bool>());
  CHECK(DType::parse("<u1") == DType::of<std::uint8_t>());
  CHECK(DType::parse("S16") == DType::of<FixedString<16>>());
  CHECK(DType::parse("U8") == DType::of<FixedUString<8>>());
  CHECK(DType::parse("|U8") == DType::of<FixedUString<8>>());
}

TEST_CASE("parse gives the item size of unicode strings in bytes", "[dtype]") {
  const DType dt = DType::parse("<U8");
  CHECK(dt.kind() == DType::Kind::unicode);
  CHECK(dt.itemsize() == 32);
  CHECK(dt.str() == "<U8");
  const DType bytes = DType::parse("|S3");
  CHECK(bytes.kind() == DType::Kind::bytes);
  CHECK(bytes.itemsize() == 3);
  CHECK(bytes.str() == "|S3");
}

TEST_CASE("parse rejects malformed strings with a message quoting them", "[dtype][failure]") {
  const std::string bad[] = {
      "",    "<",    "|",   "=",   "<x8",  "x8",   "<i3",  "<i16", "<f2",  "<f16",
      "<c4", "<c32", "<b2", "<b0", ">i8",  ">f8",  "<i8x", "<i",   "i",    "<S0",
      "<U0", "<U",   "<S",  "S",   "<i-8", "<i+8", "<i 8", " <i8", "<i8 ", "<<i8",
      "<I8", "<F8",  "<O8", "<M8", "<V16", "<u3",  "<i0",  "8",    "<8i",
  };
  for (const std::string& text : bad) {
    INFO("text: \"" << text << '"');
    CHECK_THROWS_AS(DType::parse(text), std::invalid_argument);
    CHECK_THROWS_WITH(DType::parse(text), Catch::Contains('"' + text + '"'));
  }
  // A NUL cannot be quoted in what(), but it is rejected all the same.
  CHECK_THROWS_AS(DType::parse(std::string("<i8\0", 4)), std::invalid_argument);
  // Item sizes that overflow std::size_t, or would once multiplied by 4 for U.
  CHECK_THROWS_WITH(DType::parse("<i99999999999999999999999"),
                    Catch::Contains("\"<i99999999999999999999999\""));
  CHECK_THROWS_WITH(DType::parse("<U4611686018427387904"),
                    Catch::Contains("\"<U4611686018427387904\"") && Catch::Contains("too large"));
}

TEST_CASE("parse names the reason a string is rejected", "[dtype][failure]") {
  CHECK_THROWS_WITH(DType::parse(">i8"), Catch::Contains("big-endian"));
  CHECK_THROWS_WITH(DType::parse("<x8"), Catch::Contains("unknown kind 'x'"));
  CHECK_THROWS_WITH(DType::parse("<i3"), Catch::Contains("no i type of size 3"));
  CHECK_THROWS_WITH(DType::parse("<U"), Catch::Contains("missing item size"));
  CHECK_THROWS_WITH(DType::parse("<"), Catch::Contains("missing kind"));
  CHECK_THROWS_WITH(DType::parse("<i8x"), Catch::Contains("not a decimal number"));
}

TEST_CASE("a FixedString holds up to N bytes padded with NUL", "[dtype][string]") {
  const FixedString<16> empty;
  CHECK(empty.view().empty());
  CHECK(empty.str() == "");

  const FixedString<16> hello("hello");
  CHECK(hello.view() == "hello");
  CHECK(hello.str() == "hello");
  for (std::size_t i = 5; i < 16; ++i) CHECK(hello.bytes[i] == '\0');
  CHECK(hello == FixedString<16>(std::string("hello")));
  CHECK_FALSE(hello == FixedString<16>("hellO"));

  const FixedString<4> full("abcd");
  CHECK(full.view() == "abcd");
  CHECK(full.view().size() == 4);
  STATIC_REQUIRE(sizeof(FixedString<16>) == 16);
}

TEST_CASE("a FixedString keeps non-ASCII bytes unchanged", "[dtype][string]") {
  const std::string text = "h\xc3\xa9llo";  // "héllo", 6 bytes
  const FixedString<6> s(text);
  CHECK(s.str() == text);
  const FixedString<8> jp("\xe6\x97\xa5\xe6\x9c\xac");  // "日本", 6 bytes
  CHECK(jp.view() == "\xe6\x97\xa5\xe6\x9c\xac");
}

TEST_CASE("a FixedString too long for N throws length_error", "[dtype][string][failure]") {
  CHECK_THROWS_AS(FixedString<4>("abcde"), std::length_error);
  CHECK_THROWS_WITH(FixedString<4>("abcde"), Catch::Contains("abcde") && Catch::Contains("5"));
  CHECK_THROWS_AS(FixedString<5>("h\xc3\xa9llo"), std::length_error);
}

TEST_CASE("a FixedUString stores UTF-32 code points padded with zero", "[dtype][string]") {
  const FixedUString<8> empty;
  CHECK(empty.view().empty());
  CHECK(empty.str() == "");

  const FixedUString<8> hello("h\xc3\xa9llo");  // "héllo"
  CHECK(hello.view() == U"h\u00e9llo");
  CHECK(hello.view().size() == 5);
  CHECK(hello.str() == "h\xc3\xa9llo");
  for (std::size_t i = 5; i < 8; ++i) CHECK(hello.code_points[i] == U'\0');

  const FixedUString<8> jp("\xe6\x97\xa5\xe6\x9c\xac");  // "日本"
  CHECK(jp.view() == U"\u65e5\u672c");
  CHECK(jp.str() == "\xe6\x97\xa5\xe6\x9c\xac");

  const FixedUString<2> emoji(
      "\xf0\x9f\x98\x80"
      "a");  // U+1F600 then 'a'
  CHECK(emoji.view() == U"\U0001F600a");
  CHECK(emoji.str() ==
        "\xf0\x9f\x98\x80"
        "a");

  const FixedUString<3> edges("\x7f\xdf\xbf\xef\xbf\xbf");  // U+7F, U+7FF, U+FFFF
  CHECK(edges.view() == U"\u007f\u07ff\uffff");
  CHECK(edges.str() == "\x7f\xdf\xbf\xef\xbf\xbf");

  const FixedUString<1> max("\xf4\x8f\xbf\xbf");  // U+10FFFF
  CHECK(max.view() == U"\U0010FFFF");
  CHECK(max.str() == "\xf4\x8f\xbf\xbf");

  CHECK(hello == FixedUString<8>("h\xc3\xa9llo"));
  CHECK_FALSE(hello == jp);
  STATIC_REQUIRE(sizeof(FixedUString<8>) == 32);
}

TEST_CASE("a FixedUString counts code points, not bytes, against N", "[dtype][string][failure]") {
  // 8 code points in 24 bytes fit; 9 do not.
  const std::string eight =
      "\xe6\x97\xa5\xe6\x9c\xac\xe6\x97\xa5\xe6\x9c\xac"
      "\xe6\x97\xa5\xe6\x9c\xac\xe6\x97\xa5\xe6\x9c\xac";
  const FixedUString<8> fits(eight);
  CHECK(fits.view().size() == 8);
  CHECK(fits.str() == eight);
  CHECK_THROWS_AS(FixedUString<8>(eight + "x"), std::length_error);
  CHECK_THROWS_WITH(FixedUString<8>(eight + "x"), Catch::Contains("9 code points"));
}

TEST_CASE("a FixedUString rejects invalid UTF-8", "[dtype][string][failure]") {
  const char* bad[] = {
      "\xff",              // never valid
      "\x80",              // continuation byte first
      "a\xc3",             // truncated two-byte sequence
      "\xe6\x97",          // truncated three-byte sequence
      "\xc3\x28",          // bad continuation byte
      "\xc0\xaf",          // overlong '/'
      "\xe0\x80\xaf",      // overlong '/'
      "\xed\xa0\x80",      // UTF-16 surrogate
      "\xf4\x90\x80\x80",  // beyond U+10FFFF
      "\xf8\x88\x80\x80\x80",
  };
  for (const char* text : bad) {
    INFO("bytes: " << text);
    CHECK_THROWS_AS(FixedUString<8>(text), std::invalid_argument);
  }
  CHECK_THROWS_WITH(FixedUString<8>("ab\xff"), Catch::Contains("invalid UTF-8 at byte 2"));
}
