/// \file
/// The errors of corun::codec and of params decoding (both sides), out of line so that every
/// codec instantiation shares one message.
/// Side: both.
#include <corun/codec.hpp>
#include <corun/params.hpp>

namespace corun::detail {

void codec_size_error(const char* type, std::size_t got, std::size_t expected) {
  throw std::invalid_argument("corun::codec<" + std::string(type) + ">: got " +
                              std::to_string(got) + " bytes, expected " + std::to_string(expected));
}

void codec_format_error(const char* type, const std::string& why) {
  throw std::invalid_argument("corun::codec<" + std::string(type) + ">: " + why);
}

void codec_shape_error(const std::vector<std::size_t>& shape) {
  std::string s = "shape {";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  codec_format_error("xtensor", s + "} overflows the address space");
}

void params_error(const char* type, const std::string& why) {
  throw std::invalid_argument("corun: params of type " + std::string(type) + ": " + why);
}

}  // namespace corun::detail
