#pragma once
/// \file
/// Writing the CSV files corun exports: atomically, with fixed decimals.
/// Side: both.

#include <filesystem>
#include <string>

namespace corun::detail {

/// `v` with `decimals` digits after the point ("%.*f").
std::string format_fixed(double v, int decimals);

/// Writes `text` to `path` through a temporary file in the same directory, then renames it, so
/// readers never see a partial file and a failure leaves nothing behind. Throws
/// std::system_error naming the path.
void write_atomically(const std::filesystem::path& path, const std::string& text);

}  // namespace corun::detail
