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

// Asio reads these when its first header is included. corun.pc, the CMake target corun::corun
// and Meson's dependency('corun') define them for the whole program, so the include order does
// not matter there; a program compiled without those flags that includes Asio first gets the
// message below instead of Asio's "no member named 'use_awaitable'".
#if defined(__cpp_impl_coroutine) && __has_include(<coroutine>)
#if defined(ASIO_DETAIL_CONFIG_HPP) && !defined(ASIO_HAS_CO_AWAIT)
#error \
    "corun: Asio was included before corun without its coroutine support (asio::awaitable would be missing): compile with -DASIO_HAS_CO_AWAIT=1 -DASIO_HAS_STD_COROUTINE=1 (corun.pc, corun::corun and dependency('corun') add them), or include <corun/corun.hpp> before any Asio header"
#endif
#ifndef ASIO_HAS_CO_AWAIT
#define ASIO_HAS_CO_AWAIT 1
#endif
#ifndef ASIO_HAS_STD_COROUTINE
#define ASIO_HAS_STD_COROUTINE 1
#endif
#endif
