#pragma once
/// \file
/// NoParams, and how parameters are encoded to travel to worker processes.

#include <corun/detail/config.hpp>

#include <corun/codec.hpp>

#include <string>
#include <string_view>
#include <type_traits>

namespace corun {

/// The parameters of work that has none.
struct NoParams {
  friend bool operator==(const NoParams&, const NoParams&) = default;
};

namespace detail {

/// Empty types (NoParams, captureless lambdas) encode to nothing; others through corun::codec.
template <class P>
std::string encode_params(const P& params) {
  std::string out;
  if constexpr (!std::is_empty_v<P>) {
    static_assert(encodable<P>,
                  "corun: the parameters' type has no corun::codec: make it trivially copyable "
                  "or specialise corun::codec<P>");
    codec<P>::encode(params, out);
  }
  return out;
}

template <class P>
P decode_params(std::string_view bytes) {
  if constexpr (std::is_empty_v<P>)
    return P{};
  else
    return codec<P>::decode(bytes);
}

}  // namespace detail
}  // namespace corun
