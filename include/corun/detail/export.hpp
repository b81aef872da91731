#pragma once
/// \file
/// CORUN_API marks what libcorun exports. The library is built with hidden visibility, so
/// only the classes and functions marked here are visible to programs, not the Asio and
/// standard-library templates it instantiates ({fmt}'s FMT_API model).
/// Side: both.

#if defined(__GNUC__) || defined(__clang__)
#define CORUN_API __attribute__((visibility("default")))
#else
#define CORUN_API
#endif
