#pragma once
/// \file
/// Readable type names, for messages and for the registry of map functions.
/// Side: both.

#include <string>

namespace corun::detail {

/// The demangled form of a mangled C++ name, or the name itself when it is not one.
std::string demangle(const char* mangled);

}  // namespace corun::detail
