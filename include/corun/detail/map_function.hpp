#pragma once
/// \file
/// The machinery of corun/map.hpp that worker processes run: what a map function takes and
/// returns, how inputs and results are laid out in a chunk, and the invokers (registered at
/// start-up by a class template's static member). The parent's side is detail/map_io.hpp.

#include <corun/detail/config.hpp>

#include <corun/codec.hpp>
#include <corun/detail/completion.hpp>
#include <corun/detail/map_engine.hpp>
#include <corun/params.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace corun::detail {

/// What a map function takes and returns: `R f(In)` or `R f(In, P)` (by value or const&).
template <auto F>
struct map_function_traits {
  static_assert(sizeof(F) == 0,
                "corun: a map function must be a free function R f(const In&) or "
                "R f(const In&, const Params&)");
};
template <class R, class A, R (*F)(A)>
struct map_function_traits<F> {
  using input = std::remove_cvref_t<A>;
  using result = R;
  using params = NoParams;
  static R call(const input& x, const params&) { return F(x); }
};
template <class R, class A, R (*F)(A) noexcept>
struct map_function_traits<F> : map_function_traits<static_cast<R (*)(A)>(F)> {};
template <class R, class A, class B, R (*F)(A, B)>
struct map_function_traits<F> {
  using input = std::remove_cvref_t<A>;
  using result = R;
  using params = std::remove_cvref_t<B>;
  static R call(const input& x, const params& p) { return F(x, p); }
};
template <class R, class A, class B, R (*F)(A, B) noexcept>
struct map_function_traits<F> : map_function_traits<static_cast<R (*)(A, B)>(F)> {};

/// How one item is laid out in a chunk: trivially copyable items as their bytes, others with a
/// u32 length before their codec's bytes.
template <class T>
struct item_format {
  static constexpr bool raw = is_byte_copyable<T>;

  static void put(const T& value, std::string& out) {
    if constexpr (raw) {
      out.append(reinterpret_cast<const char*>(&value), sizeof(T));
    } else {
      const std::size_t at = out.size();
      out.append(sizeof(std::uint32_t), '\0');
      codec<T>::encode(value, out);
      const std::size_t n = out.size() - at - sizeof(std::uint32_t);
      if (n > UINT32_MAX) codec_format_error("corun map item", "an item of over 4 GiB");
      const auto n32 = static_cast<std::uint32_t>(n);
      std::memcpy(out.data() + at, &n32, sizeof n32);
    }
  }

  /// Calls `each(T&&)` for every item of `bytes`; returns how many there were.
  template <class Each>
  static std::size_t for_each(std::string_view bytes, Each&& each) {
    std::size_t n = 0;
    if constexpr (raw) {
      if (bytes.size() % sizeof(T) != 0)
        codec_format_error("corun map chunk",
                           std::to_string(bytes.size()) + " bytes is not a whole number of items");
      for (; !bytes.empty(); bytes.remove_prefix(sizeof(T)), ++n) {
        T value;
        std::memcpy(static_cast<void*>(&value), bytes.data(), sizeof(T));
        each(std::move(value));
      }
    } else {
      while (!bytes.empty()) {
        std::uint32_t len = 0;
        if (bytes.size() < sizeof len) codec_format_error("corun map chunk", "truncated length");
        std::memcpy(&len, bytes.data(), sizeof len);
        bytes.remove_prefix(sizeof len);
        if (bytes.size() < len) codec_format_error("corun map chunk", "truncated item");
        each(codec<T>::decode(bytes.substr(0, len)));
        bytes.remove_prefix(len);
        ++n;
      }
    }
    return n;
  }
};

inline void check_item_count(std::size_t got, std::size_t expected) {
  if (got != expected)
    throw std::invalid_argument("corun map chunk: " + std::to_string(got) + " items where " +
                                std::to_string(expected) + " were expected");
}

/// `decode(bytes)`, decoded again only when the bytes change (consecutive tasks of a map
/// share their parameters).
template <class T, class Decode>
const T& decoded_once(std::string_view bytes, Decode decode) {
  thread_local std::string last;
  thread_local std::optional<T> value;
  if (!value || bytes != last) {
    value.reset();
    value.emplace(decode(bytes));
    last.assign(bytes);
  }
  return *value;
}

/// The decoded parameters of the task at hand.
template <class P>
const P& task_params(std::string_view bytes) {
  if constexpr (std::is_empty_v<P>) {
    static const P none{};
    return none;
  } else {
    return decoded_once<P>(bytes, [](std::string_view b) { return decode_params<P>(b); });
  }
}

/// Calls `f` on one input; an exception becomes an ItemFailure naming the input's index.
template <class Call>
decltype(auto) call_on_item(std::size_t index, Call&& call) {
  try {
    return call();
  } catch (const std::exception& e) {
    throw ItemFailure(index, typeid(e), e.what());
  }
}

template <class Traits>
void check_map_types() {
  using In = typename Traits::input;
  using R = typename Traits::result;
  static_assert(!std::is_void_v<R>, "corun: a map function must return a value");
  static_assert(encodable<In>,
                "corun: the map function's input type has no corun::codec: specialise it");
  static_assert(encodable<std::decay_t<R>>,
                "corun: the map function's result type has no corun::codec: specialise it");
}

/// The home of map function F in every process: its invoker, registered at start-up.
template <auto F>
struct MapFunction {
  using traits = map_function_traits<F>;
  using In = typename traits::input;
  using R = std::decay_t<typename traits::result>;

  static void invoke(const TaskContext& ctx, std::string& out) {
    const auto& params = task_params<typename traits::params>(ctx.params);
    std::size_t index = ctx.slice.start;
    const std::size_t n = item_format<In>::for_each(ctx.argument, [&](In&& x) {
      item_format<R>::put(call_on_item(index, [&] { return traits::call(x, params); }), out);
      ++index;
    });
    check_item_count(n, ctx.slice.end - ctx.slice.start);
  }

  inline static const char* const name = register_function(typeid(MapFunction), &invoke);
};

/// Reduction Op's starting value for a chunk, when it has one (ready-made reductions do).
template <class Op, class A>
concept has_identity = requires(const Op& op, const A& init) {
  { op.identity(init) } -> std::convertible_to<A>;
};

/// Joins two partial results: Op::merge when it has one, else Op itself.
template <class Op, class A>
A merge_partials(const Op& op, A a, A b) {
  if constexpr (requires { op.merge(std::move(a), std::move(b)); })
    return op.merge(std::move(a), std::move(b));
  else
    return op(std::move(a), std::move(b));
}

/// The encoded parameters of a reduction: the function's params, then the operation.
template <class P, class Op, class A>
std::string encode_reduction(const P& params, const Op& op, const A& init) {
  std::string out;
  const std::string p = encode_params(params), o = encode_params(op), i = encode_params(init);
  for (const std::string* part : {&p, &o, &i}) {
    const auto n = static_cast<std::uint64_t>(part->size());
    out.append(reinterpret_cast<const char*>(&n), sizeof n);
    out.append(*part);
  }
  return out;
}

template <class P, class Op, class A>
struct Reduction {
  P params;
  Op op;
  A init;
};

template <class P, class Op, class A>
Reduction<P, Op, A> decode_reduction(std::string_view bytes) {
  std::string_view parts[3];
  for (auto& part : parts) {
    std::uint64_t n = 0;
    if (bytes.size() < sizeof n ||
        (std::memcpy(&n, bytes.data(), sizeof n), bytes.size() - sizeof n < n))
      codec_format_error("corun reduction", "truncated parameters");
    part = bytes.substr(sizeof n, n);
    bytes.remove_prefix(sizeof n + n);
  }
  return {decode_params<P>(parts[0]), decode_params<Op>(parts[1]), decode_params<A>(parts[2])};
}

/// The home of map function F reduced by Op into an A: each task folds its chunk's results,
/// so one A per chunk crosses the process boundary.
template <auto F, class Op, class A>
struct MapReduceFunction {
  using traits = map_function_traits<F>;
  using In = typename traits::input;
  using P = typename traits::params;

  static void invoke(const TaskContext& ctx, std::string& out) {
    const auto& red = decoded_once<Reduction<P, Op, A>>(
        ctx.params, [](std::string_view b) { return decode_reduction<P, Op, A>(b); });
    std::optional<A> acc;
    if constexpr (has_identity<Op, A>) acc.emplace(red.op.identity(red.init));
    std::size_t index = ctx.slice.start;
    const std::size_t n = item_format<In>::for_each(ctx.argument, [&](In&& x) {
      auto value = call_on_item(index, [&] { return traits::call(x, red.params); });
      if (!acc) {
        if constexpr (std::is_constructible_v<A, decltype(value)>) acc.emplace(std::move(value));
      } else {
        acc = call_on_item(index, [&] { return A(red.op(std::move(*acc), std::move(value))); });
      }
      ++index;
    });
    check_item_count(n, ctx.slice.end - ctx.slice.start);
    codec<A>::encode(*acc, out);
  }

  inline static const char* const name = register_function(typeid(MapReduceFunction), &invoke);
};

}  // namespace corun::detail
