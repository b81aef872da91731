#pragma once
/// \file
/// Params of user types through cereal (Debian's libcereal-dev): include this header in the
/// file that defines a worker whose Params type has cereal `serialize` (or `save`/`load`)
/// functions. Such params travel in cereal's binary archive; both ends are the same program,
/// so its native byte order and sizes are right.
/// Side: both.
///
/// Not part of <corun/corun.hpp>: only programs with such params need cereal installed, and
/// only the files that define those workers pay for parsing its headers.

#include <corun/params.hpp>

#include <cereal/archives/binary.hpp>
#include <cereal/cereal.hpp>

#include <istream>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>

namespace corun::detail {

template <class P>
struct cereal_params<P, std::enable_if_t<!encodable<P> && !std::is_same_v<P, NoParams> &&
                                         cereal::traits::is_output_serializable<
                                             P, cereal::BinaryOutputArchive>::value>> {
  static constexpr bool available = true;

  static std::string encode(const P& params) {
    std::ostringstream out(std::ios::binary);
    {
      cereal::BinaryOutputArchive archive(out);
      archive(params);
    }
    return std::move(out).str();
  }

  static P decode(std::string_view bytes) {
    static_assert(std::is_default_constructible_v<P>,
                  "corun: a Params type decoded with cereal must be default constructible");
    std::istringstream in(std::string(bytes), std::ios::binary);
    P value{};
    try {
      cereal::BinaryInputArchive archive(in);
      archive(value);
    } catch (const cereal::Exception& e) {
      params_error(typeid(P).name(), e.what());
    } catch (const std::length_error& e) {  // a corrupted length
      params_error(typeid(P).name(), e.what());
    } catch (const std::bad_alloc&) {
      params_error(typeid(P).name(), "a length in the encoded bytes is too large");
    }
    if (in.peek() != std::istream::traits_type::eof())
      params_error(typeid(P).name(), "trailing bytes after the encoded value");
    return value;
  }
};

}  // namespace corun::detail
