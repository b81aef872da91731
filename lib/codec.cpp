#include <corun/codec.hpp>

namespace corun::detail {

void codec_size_error(const char* type, std::size_t got, std::size_t expected) {
  throw std::invalid_argument("corun::codec<" + std::string(type) + ">: got " +
                              std::to_string(got) + " bytes, expected " + std::to_string(expected));
}

void codec_format_error(const char* type, const std::string& why) {
  throw std::invalid_argument("corun::codec<" + std::string(type) + ">: " + why);
}

}  // namespace corun::detail
