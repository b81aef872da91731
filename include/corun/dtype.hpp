#pragma once
/// \file
/// numpy-compatible element descriptors, fixed-size string elements, and the concept every
/// element type of a shared array satisfies.
/// Side: both.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <algorithm>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace corun {

/// A fixed-width byte string, numpy's `|SN`: N bytes, shorter contents padded with NUL.
template <std::size_t N>
struct FixedString {
  static_assert(N > 0, "FixedString<0> has no numpy equivalent");
  /// The stored bytes, as numpy holds them: NUL-padded, not NUL-terminated when full.
  char bytes[N] = {};

  FixedString() = default;
  /// Copies `s`; throws std::length_error when it is longer than N bytes.
  FixedString(std::string_view s) {  // NOLINT: implicit, like std::string
    if (s.size() > N)
      throw std::length_error("FixedString<" + std::to_string(N) + "> cannot hold \"" +
                              std::string(s) + "\" (" + std::to_string(s.size()) + " bytes)");
    std::copy(s.begin(), s.end(), bytes);
  }
  /// The contents up to the first NUL, as numpy reads them.
  std::string_view view() const noexcept {
    return {bytes, static_cast<std::size_t>(std::find(bytes, bytes + N, '\0') - bytes)};
  }
  /// view() as a std::string.
  std::string str() const { return std::string(view()); }
  /// Compares all N bytes, the padding included.
  friend bool operator==(const FixedString& a, const FixedString& b) noexcept {
    return std::equal(a.bytes, a.bytes + N, b.bytes);
  }
};

namespace detail {
CORUN_API std::u32string utf8_to_utf32(std::string_view utf8);
CORUN_API std::string utf32_to_utf8(std::u32string_view utf32);
}  // namespace detail

/// A fixed-width unicode string, numpy's `<UN`: N UTF-32 code points, padded with 0.
template <std::size_t N>
struct FixedUString {
  static_assert(N > 0, "FixedUString<0> has no numpy equivalent");
  /// The stored code points, as numpy holds them: 0-padded, not 0-terminated when full.
  char32_t code_points[N] = {};

  FixedUString() = default;
  /// Decodes UTF-8 `s`; throws std::invalid_argument on bad UTF-8, std::length_error when
  /// it has more than N code points.
  FixedUString(std::string_view utf8) {  // NOLINT: implicit, like std::string
    const std::u32string u = detail::utf8_to_utf32(utf8);
    if (u.size() > N)
      throw std::length_error("FixedUString<" + std::to_string(N) + "> cannot hold \"" +
                              std::string(utf8) + "\" (" + std::to_string(u.size()) +
                              " code points)");
    std::copy(u.begin(), u.end(), code_points);
  }
  /// The code points up to the first 0, as numpy reads them.
  std::u32string_view view() const noexcept {
    return {code_points,
            static_cast<std::size_t>(std::find(code_points, code_points + N, U'\0') - code_points)};
  }
  /// The contents as UTF-8.
  std::string str() const { return detail::utf32_to_utf8(view()); }
  /// Compares all N code points, the padding included.
  friend bool operator==(const FixedUString& a, const FixedUString& b) noexcept {
    return std::equal(a.code_points, a.code_points + N, b.code_points);
  }
};

/// A numpy-compatible element descriptor: `"<i8"`, `"<f8"`, `"|b1"`, `"|S16"`, `"<U8"`, ...
/// Only little-endian and byte-order-free types exist here (corun runs on little-endian hosts).
class CORUN_API DType {
 public:
  /// numpy's kind characters.
  enum class Kind : char {
    none = 0,
    boolean = 'b',
    signed_int = 'i',
    unsigned_int = 'u',
    floating = 'f',
    complex = 'c',
    bytes = 'S',
    unicode = 'U',
  };

  /// An unset descriptor (str() is "", itemsize() is 0).
  constexpr DType() = default;
  /// A descriptor from its parts, unchecked: `itemsize` in bytes (4 per character for `U`).
  constexpr DType(Kind kind, std::size_t itemsize) : kind_(kind), itemsize_(itemsize) {}

  /// The descriptor of a C++ element type; see `element_type` for what is accepted.
  template <class T>
  static constexpr DType of() noexcept;

  /// Parses numpy's `dtype.str` forms (`"<i8"`, `"|u1"`, `"<U8"`, also `"=f8"` and `"i8"`);
  /// throws std::invalid_argument quoting `text` when it is malformed or unsupported.
  static DType parse(std::string_view text);

  /// numpy's `dtype.str`: byte order, kind, and size (characters for `U`, bytes otherwise).
  std::string str() const;
  /// numpy's kind character (Kind::none when unset).
  constexpr Kind kind() const noexcept { return kind_; }
  /// Bytes per element (4 per character for `U`).
  constexpr std::size_t itemsize() const noexcept { return itemsize_; }
  /// Whether this is the unset descriptor.
  constexpr bool empty() const noexcept { return kind_ == Kind::none; }
  /// Same kind and itemsize: the same numpy dtype.
  friend constexpr bool operator==(const DType&, const DType&) = default;

 private:
  Kind kind_ = Kind::none;
  std::size_t itemsize_ = 0;
};

namespace detail {
template <class T>
struct dtype_traits {
  static constexpr DType value{};
};
template <>
struct dtype_traits<bool> {
  static constexpr DType value{DType::Kind::boolean, 1};
};
template <class T>
requires(std::is_integral_v<T> && !std::is_same_v<T, bool>) struct dtype_traits<T> {
  static constexpr DType value{
      std::is_signed_v<T> ? DType::Kind::signed_int : DType::Kind::unsigned_int, sizeof(T)};
};
template <class T>
requires(std::is_same_v<T, float> || std::is_same_v<T, double>) struct dtype_traits<T> {
  static constexpr DType value{DType::Kind::floating, sizeof(T)};
};
template <class T>
requires(std::is_same_v<T, float> ||
         std::is_same_v<T, double>) struct dtype_traits<std::complex<T>> {
  static constexpr DType value{DType::Kind::complex, 2 * sizeof(T)};
};
template <std::size_t N>
struct dtype_traits<FixedString<N>> {
  static constexpr DType value{DType::Kind::bytes, N};
};
template <std::size_t N>
struct dtype_traits<FixedUString<N>> {
  static constexpr DType value{DType::Kind::unicode, 4 * N};
};
}  // namespace detail

/// An element type a shared array can hold. If the compiler says a type does not satisfy
/// `element_type`, the type is not trivially copyable, not standard layout, or has no numpy
/// descriptor: use bool, a fixed-width integer, float, double, std::complex of those,
/// FixedString<N> or FixedUString<N>.
template <class T>
concept element_type = std::is_trivially_copyable_v<T> && std::is_standard_layout_v<T> &&
                       !detail::dtype_traits<std::remove_cv_t<T>>::value.empty();

template <class T>
constexpr DType DType::of() noexcept {
  static_assert(element_type<T>, "corun::DType::of<T>: T has no numpy descriptor");
  return detail::dtype_traits<std::remove_cv_t<T>>::value;
}

}  // namespace corun
