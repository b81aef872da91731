/// \file
/// The one rule for shared-memory segment names.
/// Side: both.
#include "base/segment_name.hpp"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

namespace corun::detail {

void check_segment_name(const std::string& name, std::string_view subject) {
  if (std::any_of(name.begin(), name.end(),
                  [](unsigned char c) { return c < 0x20 || c == 0x7f; })) {
    std::string shown;  // a terminal must not interpret the name
    for (const unsigned char c : name) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      shown += c < 0x20 || c == 0x7f || c == '\\' ? std::string(hex) : std::string(1, char(c));
    }
    throw std::invalid_argument(std::string(subject) + " \"" + shown +
                                "\" is invalid: a segment name has no control characters");
  }
  if (name.empty() || name.size() > max_segment_name_length ||
      name.find_first_of(std::string_view("/\0", 2)) != std::string::npos || name == "." ||
      name == "..")
    throw std::invalid_argument(std::string(subject) + " \"" + name +
                                "\" is invalid: a segment name has 1 to 255 characters, no '/' "
                                "or NUL, and is not \".\" or \"..\"");
}

}  // namespace corun::detail
