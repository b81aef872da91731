#pragma once
/// \file
/// corun::codec<T>: how a task's result crosses from a worker process to the parent.
/// Provided: trivially copyable types, std::string, std::vector of trivially copyable types,
/// xtensor containers (xt::xarray, xt::xtensor) of arithmetic types, and std::tuple of any of
/// these (reduce::all_of's value). For other types,
/// specialise:
/// \code
/// template <> struct corun::codec<MyResult> {
///   static void encode(const MyResult& value, std::string& out);  // append bytes to out
///   static MyResult decode(std::string_view bytes);  // throw std::invalid_argument if malformed
/// };
/// \endcode
/// Side: both.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <vector>
#include <xtensor/xarray.hpp>
#include <xtensor/xtensor.hpp>

namespace corun {

/// Primary template: deliberately undefined. A compiler error naming `codec<T>` means the
/// result type of a worker's `process` has no codec: specialise corun::codec for it.
template <class T>
struct codec;

namespace detail {
[[noreturn]] CORUN_API void codec_size_error(const char* type, std::size_t got,
                                             std::size_t expected);
[[noreturn]] CORUN_API void codec_format_error(const char* type, const std::string& why);
[[noreturn]] CORUN_API void codec_shape_error(const std::vector<std::size_t>& shape);

template <class T>
inline constexpr bool is_byte_copyable =
    std::is_trivially_copyable_v<T> && !std::is_pointer_v<T> && !std::is_member_pointer_v<T>;
}  // namespace detail

/// Trivially copyable values travel as their bytes.
template <class T>
requires detail::is_byte_copyable<T>
struct codec<T> {
  /// Appends the value's sizeof(T) bytes.
  static void encode(const T& value, std::string& out) {
    out.append(reinterpret_cast<const char*>(&value), sizeof(T));
  }
  /// The value of exactly sizeof(T) bytes; throws std::invalid_argument for another size.
  static T decode(std::string_view bytes) {
    if (bytes.size() != sizeof(T))
      detail::codec_size_error(typeid(T).name(), bytes.size(), sizeof(T));
    T value;
    std::memcpy(static_cast<void*>(&value), bytes.data(), sizeof(T));
    return value;
  }
};

/// A std::string travels as its bytes (the protocol frames each result, so no length is added).
template <>
struct codec<std::string> {
  /// Appends the string's bytes.
  static void encode(const std::string& value, std::string& out) { out.append(value); }
  /// The bytes as a string (any bytes are valid).
  static std::string decode(std::string_view bytes) { return std::string(bytes); }
};

/// A std::vector of byte-copyable elements travels as its elements' bytes.
template <class T>
requires detail::is_byte_copyable<T>
struct codec<std::vector<T>> {
  /// Appends size() * sizeof(T) bytes.
  static void encode(const std::vector<T>& value, std::string& out) {
    out.append(reinterpret_cast<const char*>(value.data()), value.size() * sizeof(T));
  }
  /// The elements of `bytes`; throws std::invalid_argument when its size is not a multiple of
  /// sizeof(T).
  static std::vector<T> decode(std::string_view bytes) {
    if (bytes.size() % sizeof(T) != 0)
      detail::codec_format_error("std::vector",
                                 std::to_string(bytes.size()) +
                                     " bytes is not a multiple of the element size " +
                                     std::to_string(sizeof(T)));
    std::vector<T> value(bytes.size() / sizeof(T));
    if (!value.empty()) std::memcpy(value.data(), bytes.data(), bytes.size());
    return value;
  }
};

namespace detail {
/// xtensor containers: u32 rank, u64 per dimension, then the elements in storage order.
template <class Container>
struct xtensor_codec {
  using value_type = typename Container::value_type;
  static void encode(const Container& value, std::string& out) {
    const auto rank = static_cast<std::uint32_t>(value.dimension());
    out.append(reinterpret_cast<const char*>(&rank), sizeof rank);
    for (std::size_t d : value.shape()) {
      const auto dim = static_cast<std::uint64_t>(d);
      out.append(reinterpret_cast<const char*>(&dim), sizeof dim);
    }
    // Storage order is the container's layout, the same type decodes it on the other side.
    out.append(reinterpret_cast<const char*>(value.data()), value.size() * sizeof(value_type));
  }
  static Container decode(std::string_view bytes) {
    std::uint32_t rank = 0;
    if (bytes.size() < sizeof rank) codec_format_error("xtensor", "truncated rank");
    std::memcpy(&rank, bytes.data(), sizeof rank);
    bytes.remove_prefix(sizeof rank);
    if (rank > 32 || bytes.size() < rank * sizeof(std::uint64_t))
      codec_format_error("xtensor", "bad rank " + std::to_string(rank));
    if constexpr (requires { Container::rank; }) {
      if (Container::rank != SIZE_MAX && rank != Container::rank)  // xarray: SIZE_MAX
        codec_format_error("xtensor", "rank does not match the container (" + std::to_string(rank) +
                                          " vs " + std::to_string(Container::rank) + ")");
    }
    std::vector<std::size_t> shape(rank);
    for (auto& d : shape) {
      std::uint64_t dim;
      std::memcpy(&dim, bytes.data(), sizeof dim);
      bytes.remove_prefix(sizeof dim);
      d = static_cast<std::size_t>(dim);
    }
    // xtensor's strides are signed products of the dimensions, zeros aside: a zero dimension
    // must not let huge ones through, so bound the product of the non-zero ones.
    std::size_t nonzero = 1;
    bool empty = false;
    for (std::size_t d : shape) {
      if (d == 0)
        empty = true;
      else if (__builtin_mul_overflow(nonzero, d, &nonzero) ||
               nonzero > static_cast<std::size_t>(PTRDIFF_MAX) / sizeof(value_type))
        codec_shape_error(shape);
    }
    const std::size_t count = empty ? 0 : nonzero;
    if (bytes.size() != count * sizeof(value_type))
      codec_size_error("xtensor payload", bytes.size(), count * sizeof(value_type));
    Container value;
    if constexpr (requires { value.resize(shape); }) {
      value.resize(shape);
    }
    if (value.size() != count) codec_format_error("xtensor", "rank does not match the container");
    if (count != 0) std::memcpy(value.data(), bytes.data(), bytes.size());
    return value;
  }
};
}  // namespace detail

template <class T, xt::layout_type L>
requires std::is_arithmetic_v<T>
struct codec<xt::xarray<T, L>> : detail::xtensor_codec<xt::xarray<T, L>> {
};

template <class T, std::size_t N, xt::layout_type L>
requires std::is_arithmetic_v<T>
struct codec<xt::xtensor<T, N, L>> : detail::xtensor_codec<xt::xtensor<T, N, L>> {
};

/// A type corun can send back from a worker (void is handled separately).
template <class T>
concept encodable = requires(const T& value, std::string& out, std::string_view bytes) {
  codec<T>::encode(value, out);
  { codec<T>::decode(bytes) } -> std::convertible_to<T>;
};

/// A std::tuple travels element by element: a byte-copyable element as its sizeof bytes, any
/// other as a u64 length and its codec's bytes.
template <class... T>
requires(!detail::is_byte_copyable<std::tuple<T...>> &&
         (encodable<T> && ...)) struct codec<std::tuple<T...>> {
  /// Appends each element in order.
  static void encode(const std::tuple<T...>& value, std::string& out) {
    std::apply([&](const T&... element) { (put(element, out), ...); }, value);
  }
  /// The tuple of exactly these bytes; throws std::invalid_argument when an element is
  /// truncated, malformed, or bytes are left over.
  static std::tuple<T...> decode(std::string_view bytes) {
    // Braced initialisation reads the elements in order.
    std::tuple<T...> value{take<T>(bytes)...};
    if (!bytes.empty())
      detail::codec_format_error(
          "std::tuple", std::to_string(bytes.size()) + " bytes left after the last element");
    return value;
  }

 private:
  template <class E>
  static void put(const E& element, std::string& out) {
    if constexpr (detail::is_byte_copyable<E>) {
      codec<E>::encode(element, out);
    } else {
      const std::size_t at = out.size();
      out.append(sizeof(std::uint64_t), '\0');
      codec<E>::encode(element, out);
      const auto n = static_cast<std::uint64_t>(out.size() - at - sizeof(std::uint64_t));
      std::memcpy(out.data() + at, &n, sizeof n);
    }
  }
  template <class E>
  static E take(std::string_view& bytes) {
    std::size_t n = sizeof(E);
    if constexpr (!detail::is_byte_copyable<E>) {
      std::uint64_t len = 0;
      if (bytes.size() < sizeof len) detail::codec_format_error("std::tuple", "truncated length");
      std::memcpy(&len, bytes.data(), sizeof len);
      bytes.remove_prefix(sizeof len);
      if (len > bytes.size())
        detail::codec_format_error("std::tuple", "an element of " + std::to_string(len) +
                                                     " bytes where " +
                                                     std::to_string(bytes.size()) + " are left");
      n = static_cast<std::size_t>(len);
    } else if (bytes.size() < n) {
      detail::codec_format_error("std::tuple", "truncated element");
    }
    E element = codec<E>::decode(bytes.substr(0, n));
    bytes.remove_prefix(n);
    return element;
  }
};

}  // namespace corun
