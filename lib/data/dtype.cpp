/// \file
/// DType (both sides): numpy's type strings parsed and printed, and what they say of an element.
/// Side: both.
#include <corun/dtype.hpp>

#include <charconv>
#include <stdexcept>

namespace corun {

namespace {
[[noreturn]] void reject(std::string_view text, const std::string& why) {
  throw std::invalid_argument("corun::DType::parse: \"" + std::string(text) + "\": " + why);
}

bool valid_size(DType::Kind kind, std::size_t n) {
  switch (kind) {
    case DType::Kind::boolean:
      return n == 1;
    case DType::Kind::signed_int:
    case DType::Kind::unsigned_int:
      return n == 1 || n == 2 || n == 4 || n == 8;
    case DType::Kind::floating:
      return n == 4 || n == 8;
    case DType::Kind::complex:
      return n == 8 || n == 16;
    case DType::Kind::bytes:
    case DType::Kind::unicode:
      return n >= 1;
    case DType::Kind::none:
      return false;
  }
  return false;
}
}  // namespace

DType DType::parse(std::string_view text) {
  std::string_view rest = text;
  char order = 0;
  if (!rest.empty() && (rest[0] == '<' || rest[0] == '|' || rest[0] == '=' || rest[0] == '>')) {
    order = rest[0];
    rest.remove_prefix(1);
  }
  if (order == '>') reject(text, "big-endian element types are not supported");
  if (rest.empty()) reject(text, "missing kind character");
  const char k = rest[0];
  Kind kind;
  switch (k) {
    case 'b':
      kind = Kind::boolean;
      break;
    case 'i':
      kind = Kind::signed_int;
      break;
    case 'u':
      kind = Kind::unsigned_int;
      break;
    case 'f':
      kind = Kind::floating;
      break;
    case 'c':
      kind = Kind::complex;
      break;
    case 'S':
      kind = Kind::bytes;
      break;
    case 'U':
      kind = Kind::unicode;
      break;
    default:
      reject(text, std::string("unknown kind '") + k + "' (expected one of b i u f c S U)");
  }
  rest.remove_prefix(1);
  if (rest.empty()) reject(text, "missing item size");
  std::size_t n = 0;
  const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
  if (ec != std::errc() || end != rest.data() + rest.size())
    reject(text, "item size \"" + std::string(rest) + "\" is not a decimal number");
  if (!valid_size(kind, n))
    reject(text, "no " + std::string(1, k) + " type of size " + std::to_string(n));
  if (kind == Kind::unicode) {
    if (n > (std::size_t(-1) >> 3)) reject(text, "item size too large");
    n *= 4;
  }
  return DType(kind, n);
}

std::string DType::str() const {
  if (kind_ == Kind::none) return "";
  const bool single_byte = kind_ == Kind::bytes || itemsize_ == 1;
  const std::size_t count = kind_ == Kind::unicode ? itemsize_ / 4 : itemsize_;
  return std::string(1, single_byte ? '|' : '<') + static_cast<char>(kind_) + std::to_string(count);
}

namespace detail {

namespace {
// [[noreturn]], so clang sees that `len` is set on every path that goes on.
[[noreturn]] void bad_utf8(std::string_view s, std::size_t at) {
  throw std::invalid_argument("invalid UTF-8 at byte " + std::to_string(at) + " of \"" +
                              std::string(s) + "\"");
}
}  // namespace

std::u32string utf8_to_utf32(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    std::size_t len;
    char32_t cp;
    if (b0 < 0x80) {
      len = 1, cp = b0;
    } else if ((b0 & 0xE0) == 0xC0) {
      len = 2, cp = b0 & 0x1F;
    } else if ((b0 & 0xF0) == 0xE0) {
      len = 3, cp = b0 & 0x0F;
    } else if ((b0 & 0xF8) == 0xF0) {
      len = 4, cp = b0 & 0x07;
    } else {
      bad_utf8(s, i);
    }
    if (i + len > s.size()) bad_utf8(s, i);
    for (std::size_t j = 1; j < len; ++j) {
      const auto b = static_cast<unsigned char>(s[i + j]);
      if ((b & 0xC0) != 0x80) bad_utf8(s, i + j);
      cp = (cp << 6) | (b & 0x3F);
    }
    static constexpr char32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_len[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) bad_utf8(s, i);
    out.push_back(cp);
    i += len;
  }
  return out;
}

std::string utf32_to_utf8(std::u32string_view u) {
  std::string out;
  out.reserve(u.size());
  for (char32_t cp : u) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp <= 0x10FFFF) {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      throw std::invalid_argument("code point " + std::to_string(cp) + " is not valid Unicode");
    }
  }
  return out;
}

}  // namespace detail
}  // namespace corun
