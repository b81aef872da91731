#pragma once
/// \file
/// Parameters of a run: NoParams, and how a Params value becomes bytes that reach every worker
/// process (spawn, fork and serial alike) and becomes a value again there.
/// Side: both.
///
/// A Params type is encoded by the first of these that applies:
/// - NoParams: no bytes;
/// - a type with a corun::codec (trivially copyable types by their bytes, std::string,
///   std::vector of trivially copyable types, xtensor containers, user specialisations);
/// - a type cereal can serialise (a `serialize`, or `save` and `load`, member or free function
///   template taking an archive): cereal's portable binary archive. Include
///   <corun/cereal.hpp> (which brings cereal's headers, Debian's libcereal-dev) in the file
///   that defines the worker; a std::string or std::vector member also needs cereal's
///   <cereal/types/string.hpp> or <cereal/types/vector.hpp>, as with any cereal type.
/// Any other type is a compile error naming these three ways.
/// \code
/// struct Scale { double factor; int offset; };           // trivially copyable: its bytes
/// struct Config {                                         // cereal
///   std::string label; std::vector<int> bins;
///   template <class Archive> void serialize(Archive& ar) { ar(label, bins); }
/// };
/// \endcode

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/codec.hpp>

#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>

namespace corun {

/// The parameters of a worker that has none.
struct NoParams {
  /// Every NoParams equals every other (params compare like any other value).
  friend bool operator==(NoParams, NoParams) = default;
};

namespace detail {

/// Stands in for a cereal archive when detecting whether a type has cereal functions, so that
/// the detection needs none of cereal's headers.
struct cereal_probe_archive {
  template <class... Args>
  cereal_probe_archive& operator()(Args&&...);
  template <class Arg>
  cereal_probe_archive& operator&(Arg&&);
  template <class Arg>
  cereal_probe_archive& operator<<(Arg&&);
  template <class Arg>
  cereal_probe_archive& operator>>(Arg&&);
};

template <class P>
concept has_cereal_member_serialize = requires(P& value, cereal_probe_archive& archive) {
  value.serialize(archive);
};
template <class P>
concept has_cereal_member_save_load = requires(P& value, const P& constant,
                                               cereal_probe_archive& archive) {
  constant.save(archive);
  value.load(archive);
};
template <class P>
concept has_cereal_free_serialize = requires(P& value, cereal_probe_archive& archive) {
  serialize(archive, value);
};
template <class P>
concept has_cereal_free_save_load = requires(P& value, const P& constant,
                                             cereal_probe_archive& archive) {
  save(archive, constant);
  load(archive, value);
};
/// Whether P declares cereal's serialisation functions (member or free, found by ADL).
template <class P>
concept has_cereal_functions = has_cereal_member_serialize<P> || has_cereal_member_save_load<P> ||
    has_cereal_free_serialize<P> || has_cereal_free_save_load<P>;

/// cereal's encoding of P; defined by <corun/cereal.hpp> (`available` is then true).
template <class P, class = void>
struct cereal_params {
  static constexpr bool available = false;
};

[[noreturn]] CORUN_API void params_error(const char* type, const std::string& why);

}  // namespace detail

// The two messages a Params type may meet, shared by Worker's check and the functions below.
#define CORUN_DETAIL_PARAMS_UNENCODABLE                                                      \
  "corun: this Params type cannot be sent to worker processes: make it trivially copyable, " \
  "specialise corun::codec<P>, or give it a cereal serialize(Archive&) (or save/load) "      \
  "function and #include <corun/cereal.hpp>"
#define CORUN_DETAIL_INCLUDE_CEREAL                                                    \
  "corun: this Params type is serialised with cereal: #include <corun/cereal.hpp> in " \
  "the file that defines the worker (Debian's libcereal-dev)"

/// A type that can be the Params of a worker or of async_map.
template <class P>
concept params_encodable = std::is_same_v<P, NoParams> || encodable<P> ||
    detail::has_cereal_functions<P> || detail::cereal_params<P>::available;

/// The bytes of `params` (see the file comment for how each kind of type is encoded).
template <class P>
std::string encode_params(const P& params) {
  static_assert(params_encodable<P>, CORUN_DETAIL_PARAMS_UNENCODABLE);
  if constexpr (std::is_same_v<P, NoParams>) {
    return {};
  } else if constexpr (encodable<P>) {
    std::string out;
    codec<P>::encode(params, out);
    return out;
  } else if constexpr (detail::cereal_params<P>::available) {
    return detail::cereal_params<P>::encode(params);
  } else {
    static_assert(!detail::has_cereal_functions<P>, CORUN_DETAIL_INCLUDE_CEREAL);
    detail::params_error(typeid(P).name(), "has no encoding");
  }
}

/// The value encode_params<P> encoded. Throws std::invalid_argument (or what a user's codec or
/// cereal function throws) when `bytes` are not an encoded P.
template <class P>
P decode_params(std::string_view bytes) {
  static_assert(params_encodable<P>, CORUN_DETAIL_PARAMS_UNENCODABLE);
  if constexpr (std::is_same_v<P, NoParams>) {
    if (!bytes.empty())
      detail::params_error("corun::NoParams", std::to_string(bytes.size()) + " unexpected bytes");
    return {};
  } else if constexpr (encodable<P>) {
    return codec<P>::decode(bytes);
  } else if constexpr (detail::cereal_params<P>::available) {
    return detail::cereal_params<P>::decode(bytes);
  } else {
    static_assert(!detail::has_cereal_functions<P>, CORUN_DETAIL_INCLUDE_CEREAL);
    detail::params_error(typeid(P).name(), "has no encoding");
  }
}

}  // namespace corun
