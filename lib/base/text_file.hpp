#pragma once
/// \file
/// Writing the CSV files corun exports: atomically, with fixed decimals.
/// Side: both.

#include <filesystem>
#include <string>
#include <string_view>

namespace corun::detail {

/// `field` as one CSV field (RFC 4180): as it is, or in double quotes with its quotes doubled when
/// it holds a comma, a quote or a line break (a template worker's name, "Scaled<long, 2>").
std::string csv_field(std::string_view field);

/// `v` with `decimals` digits after the point ("%.*f").
std::string format_fixed(double v, int decimals);

/// Writes `text` to `path` through a temporary file in the same directory, then renames it, so
/// readers never see a partial file and a failure leaves nothing behind. Throws
/// std::system_error naming the path.
void write_atomically(const std::filesystem::path& path, const std::string& text);

}  // namespace corun::detail
