#include "segment_name.hpp"

#include <stdexcept>

namespace corun::detail {

void check_segment_name(const std::string& name, std::string_view subject) {
  if (name.empty() || name.size() > max_segment_name_length ||
      name.find_first_of(std::string_view("/\0", 2)) != std::string::npos || name == "." ||
      name == "..")
    throw std::invalid_argument(std::string(subject) + " \"" + name +
                                "\" is invalid: a segment name has 1 to 255 characters, no '/' "
                                "or NUL, and is not \".\" or \"..\"");
}

}  // namespace corun::detail
