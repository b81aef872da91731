#pragma once
/// \file
/// What corun asks of the compiler, checked before any other header, Asio's included: C++20,
/// and Asio's coroutine support switched on wherever the compiler has coroutines (Asio 1.22
/// detects them for GCC but not for Clang with libstdc++, so `asio::awaitable` would be
/// missing there). Every public header includes this one first.
/// Side: both.

#if __cplusplus < 202002L
#error "corun needs C++20 or later: compile with -std=c++20 (or a later standard, e.g. -std=c++23)"
#endif

// Asio reads these when its first header is included; a program that includes Asio before any
// corun header must define them itself (or compile with a compiler Asio detects).
#if defined(__cpp_impl_coroutine) && __has_include(<coroutine>)
#ifndef ASIO_HAS_CO_AWAIT
#define ASIO_HAS_CO_AWAIT 1
#endif
#ifndef ASIO_HAS_STD_COROUTINE
#define ASIO_HAS_STD_COROUTINE 1
#endif
#endif
