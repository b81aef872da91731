#pragma once
/// \file
/// The one rule for shared-memory segment names, shared by SharedArray and DataIterator.
/// Side: both.

#include <cstddef>
#include <string>
#include <string_view>

namespace corun::detail {

/// Longest segment name, in Python's spelling (without the '/' shm_open wants in front): the
/// file /dev/shm/<name> is limited by NAME_MAX; Linux's shm_open accepts "/" + 255 characters
/// and refuses 256 with ENAMETOOLONG.
inline constexpr std::size_t max_segment_name_length = 255;

/// Throws std::invalid_argument unless `name` has 1 to 255 characters, no '/' or NUL, and is
/// not "." or "..". The message reads `<subject> "<name>" is invalid: ...`.
void check_segment_name(const std::string& name, std::string_view subject);

}  // namespace corun::detail
