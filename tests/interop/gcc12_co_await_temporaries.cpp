// GCC 12's coroutine bug with temporaries in a co_await expression, in plain Asio (no corun):
// which shapes of a `co_await` full-expression free memory twice, and which are safe. NOT part
// of the test suite, on purpose: the crashing shapes abort. Build and run it by hand:
//
//   g++ -std=c++20 -O0 tests/interop/gcc12_co_await_temporaries.cpp -o /tmp/repro   # or -O2
//   for s in $(seq 1 22); do /tmp/repro $s; done      # add -fsanitize=address to see the frees
//
// Each shape passes a value to an Asio-style operation (async_initiate, use_awaitable) or to an
// awaitable<T> coroutine, and co_awaits the result in the same full-expression. Measured with
// g++ 12.2.0 (Debian 12.2.0-14+deb12u1) and Asio 1.24, the same at -O0 and -O2, with and without
// AddressSanitizer (which names the fault: "attempting double-free", or "free on address which
// was not malloc()-ed" when the member's buffer is its in-object SSO storage):
//
//   crash  1  Opts{.n = 1, .s = long_string}   aggregate temporary, parameter by value
//   crash  2  the same, parameter by const&
//   crash  3  {}  to a by-value Opts parameter (even with an empty string: invalid free)
//   crash  4  {.n = 1, .s = long_string}        braced, designated, no type name
//   crash  5  Opts{...} to an awaitable<T> coroutine by value (no async_initiate involved)
//   crash  6  a defaulted parameter `Opts o = {}` that the call leaves out
//   crash  7  a lambda with an init-capture of a std::string ([s = std::string(...)])
//   safe   8  std::string(long_string) temporary          (not an aggregate)
//   safe   9  a const char* converted to a std::string parameter
//   safe  10  a non-aggregate class temporary (user-provided constructor) holding a string
//   safe  11  an Opts returned by a function: make_opts()
//   safe  12  Opts{o}: a copy of a named Opts (copy construction, not aggregate initialisation)
//   safe  13  std::vector<std::string>(1, long_string)
//   safe  14  std::vector<std::uint64_t>{}   (value-initialised; no initializer_list)
//   safe  15  a lambda capturing a named std::string by reference ([&s])
//   safe  16  Plain{...}: a designated-init aggregate whose members are all trivially destructible
//   safe  17  a named Opts local, std::move'd in
//   safe  18  a named Opts local, by const&
//   safe  19  a named Opts local, copied in
//   safe  20  the awaitable made in its own statement (a named local), then co_await std::move(op)
//   crash 21  a lambda copying a named std::string: [s]
//   crash 22  a lambda copying it implicitly: [=]
//
// So: aggregate initialisation (a lambda's captures are initialised the same way) of an object
// with a non-trivially-destructible member, inside a co_await full-expression. Build such values
// in a named local on the line before. clang++ 14 runs every shape cleanly under ASan.
// A std::vector<std::string>{long_string} (an initializer_list) inside the co_await does not
// even compile with g++ 12 ("array used as initializer"): define REPRO_INIT_LIST to see it.
//
// GCC's bugzilla has this as PR 101976 (members of temporary aggregates in co_await statements
// are "promoted" to the frame and destroyed twice; its regression test
// g++.dg/coroutines/pr101976.C is `co_await subtask({})` with an aggregate wrapper), and the
// lambda-capture form as PR 100611 (g++.dg/coroutines/pr100611.C).
#include <asio/async_result.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <utility>
#include <vector>

namespace {

const char* const long_string = "a string long enough to live on the heap";

struct Opts {
  int n = 0;
  std::string s;
};
struct Plain {
  int n = 0;
  std::size_t len = 0;
};
struct Boxed {  // not an aggregate
  explicit Boxed(std::string v) : s(std::move(v)) {}
  std::string s;
};

// An operation in Asio's style: a template on the completion token, completing with a length.
template <class Token>
auto async_length(asio::io_context& io, std::size_t length, Token&& token) {
  return asio::async_initiate<Token, void(std::size_t)>(
      [&io](auto handler, std::size_t len) {
        asio::post(io, [h = std::move(handler), len]() mutable { std::move(h)(len); });
      },
      token, length);
}
template <class Token>
auto async_by_value(asio::io_context& io, Opts o, Token&& token) {
  return async_length(io, o.s.size(), std::forward<Token>(token));
}
template <class Token>
auto async_by_cref(asio::io_context& io, const Opts& o, Token&& token) {
  return async_length(io, o.s.size(), std::forward<Token>(token));
}
template <class Token>
auto async_defaulted(asio::io_context& io, Token&& token, Opts o = {}) {
  return async_length(io, o.s.size() + std::strlen(long_string), std::forward<Token>(token));
}
template <class Token>
auto async_string(asio::io_context& io, std::string s, Token&& token) {
  return async_length(io, s.size(), std::forward<Token>(token));
}
template <class Token>
auto async_boxed(asio::io_context& io, Boxed b, Token&& token) {
  return async_length(io, b.s.size(), std::forward<Token>(token));
}
template <class Token>
auto async_strings(asio::io_context& io, std::vector<std::string> v, Token&& token) {
  return async_length(io, v.front().size(), std::forward<Token>(token));
}
template <class Token>
auto async_ints(asio::io_context& io, std::vector<std::uint64_t> v, Token&& token) {
  return async_length(io, v.size() + std::strlen(long_string), std::forward<Token>(token));
}
template <class Token>
auto async_plain(asio::io_context& io, Plain p, Token&& token) {
  return async_length(io, p.len, std::forward<Token>(token));
}
template <class Token, class F>
auto async_call(asio::io_context& io, F f, Token&& token) {
  return async_length(io, f(), std::forward<Token>(token));
}
asio::awaitable<std::size_t> coro_by_value(Opts o) {
  co_return o.s.size();
}
Opts make_opts() {
  return Opts{.n = 1, .s = long_string};
}

asio::awaitable<std::size_t> run(asio::io_context& io, int shape) {
  using asio::use_awaitable;
  const std::size_t n = std::strlen(long_string);
  switch (shape) {
    case 1:
      co_return co_await async_by_value(io, Opts{.n = 1, .s = long_string}, use_awaitable);
    case 2:
      co_return co_await async_by_cref(io, Opts{.n = 1, .s = long_string}, use_awaitable);
    case 3:
      co_return co_await async_by_value(io, {}, use_awaitable) + n;
    case 4:
      co_return co_await async_by_value(io, {.n = 1, .s = long_string}, use_awaitable);
    case 5:
      co_return co_await coro_by_value(Opts{.n = 1, .s = long_string});
    case 6:
      co_return co_await async_defaulted(io, use_awaitable);
    case 7:
      co_return co_await async_call(
          io, [s = std::string(long_string)] { return s.size(); }, use_awaitable);
    case 8:
      co_return co_await async_string(io, std::string(long_string), use_awaitable);
    case 9:
      co_return co_await async_string(io, long_string, use_awaitable);
    case 10:
      co_return co_await async_boxed(io, Boxed{long_string}, use_awaitable);
    case 11:
      co_return co_await async_by_value(io, make_opts(), use_awaitable);
    case 12: {
      const Opts o{.n = 1, .s = long_string};
      co_return co_await async_by_value(io, Opts{o}, use_awaitable);
    }
    case 13:
      co_return co_await async_strings(io, std::vector<std::string>(1, long_string), use_awaitable);
    case 14:
      co_return co_await async_ints(io, std::vector<std::uint64_t>{}, use_awaitable);
    case 15: {
      const std::string s = long_string;
      co_return co_await async_call(
          io, [&s] { return s.size(); }, use_awaitable);
    }
    case 16:
      co_return co_await async_plain(io, Plain{.n = 1, .len = n}, use_awaitable);
    case 17: {
      Opts o{.n = 1, .s = long_string};
      co_return co_await async_by_value(io, std::move(o), use_awaitable);
    }
    case 18: {
      const Opts o{.n = 1, .s = long_string};
      co_return co_await async_by_cref(io, o, use_awaitable);
    }
    case 19: {
      const Opts o{.n = 1, .s = long_string};
      co_return co_await async_by_value(io, o, use_awaitable);
    }
    case 20: {
      auto op = async_by_value(io, Opts{.n = 1, .s = long_string}, use_awaitable);
      co_return co_await std::move(op);
    }
    case 21: {
      const std::string s = long_string;
      co_return co_await async_call(
          io, [s] { return s.size(); }, use_awaitable);
    }
    case 22: {
      const std::string s = long_string;
      co_return co_await async_call(
          io, [=] { return s.size(); }, use_awaitable);
    }
#ifdef REPRO_INIT_LIST
    case 23:
      co_return co_await async_strings(io, std::vector<std::string>{long_string}, use_awaitable);
#endif
  }
  co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int shape = argc > 1 ? std::atoi(argv[1]) : 1;
  asio::io_context io;
  std::size_t got = 0;
  asio::co_spawn(io, run(io, shape), [&](std::exception_ptr e, std::size_t n) {
    if (e) std::rethrow_exception(e);
    got = n;
  });
  io.run();
  const bool ok = got == std::strlen(long_string);
  std::printf("shape %d: %s\n", shape, ok ? "ok" : "wrong result");
  return ok ? 0 : 1;
}
