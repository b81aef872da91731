#pragma once
/// \file
/// The machinery of corun/map.hpp that worker processes run: what a map function takes and
/// returns (its TaskContext and State included), how inputs and results are laid out in a chunk,
/// and the invokers (registered at start-up by a class template's static member). The parent's
/// side is detail/map_io.hpp.
/// Side: worker.

#include <corun/detail/config.hpp>

#include <corun/codec.hpp>
#include <corun/detail/chunk_reply.hpp>
#include <corun/detail/completion.hpp>
#include <corun/detail/map_registry.hpp>
#include <corun/detail/map_state.hpp>
#include <corun/map_with_state.hpp>
#include <corun/params.hpp>
#include <corun/task_context.hpp>

#include <algorithm>
#include <array>
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

template <class B>
inline constexpr bool is_task_context = std::is_same_v<std::remove_cvref_t<B>, TaskContext>;

/// What a class-type map function (corun::map_function<...>) takes and returns.
template <class T>
struct class_map_function_traits {
  static_assert(sizeof(T) == 0,
                "corun: a map function must be a free function R f(const In&), R f(const In&, "
                "const Params&), R f(const In&, const corun::TaskContext&) or R f(const In&, "
                "const Params&, const corun::TaskContext&), or corun::map_function<&f, "
                "&init_state[, &exit_hook]>");
};

/// What a map function takes and returns: `R f(In)`, `R f(In, P)`, `R f(In, TaskContext)` or
/// `R f(In, P, TaskContext)` (by value or const&), or corun::map_function<&f, ...>. `call`
/// gives every form the same arguments; `state` is how its per-process State is made
/// (NoMapState: it has none).
template <auto F>
struct map_function_traits : class_map_function_traits<std::remove_cv_t<decltype(F)>> {};
template <class R, class A, R (*F)(A)>
struct map_function_traits<F> {
  using input = std::remove_cvref_t<A>;
  using result = R;
  using params = NoParams;
  using state = NoMapState;
  static constexpr bool takes_context = false;
  static R call(const input& x, const params&, const TaskContext&) { return F(x); }
};
template <class R, class A, R (*F)(A) noexcept>
struct map_function_traits<F> : map_function_traits<static_cast<R (*)(A)>(F)> {};
template <class R, class A, class B, R (*F)(A, B)>
struct map_function_traits<F> {
  using input = std::remove_cvref_t<A>;
  using result = R;
  static constexpr bool takes_context = is_task_context<B>;
  using params = std::conditional_t<takes_context, NoParams, std::remove_cvref_t<B>>;
  using state = NoMapState;
  static R call(const input& x, const params& p, const TaskContext& ctx) {
    if constexpr (takes_context)
      return F(x, ctx);
    else
      return F(x, p);
  }
};
template <class R, class A, class B, R (*F)(A, B) noexcept>
struct map_function_traits<F> : map_function_traits<static_cast<R (*)(A, B)>(F)> {};
template <class R, class A, class B, class C, R (*F)(A, B, C)>
struct map_function_traits<F> {
  static_assert(is_task_context<C>,
                "corun: a map function of three arguments must be R f(const In&, const Params&, "
                "const corun::TaskContext&)");
  using input = std::remove_cvref_t<A>;
  using result = R;
  using params = std::remove_cvref_t<B>;
  using state = NoMapState;
  static constexpr bool takes_context = true;
  static R call(const input& x, const params& p, const TaskContext& ctx) { return F(x, p, ctx); }
};
template <class R, class A, class B, class C, R (*F)(A, B, C) noexcept>
struct map_function_traits<F> : map_function_traits<static_cast<R (*)(A, B, C)>(F)> {};

/// corun::map_function<F, Init, Exit>: F's traits, with the hooks of its State.
template <auto F, auto Init, auto Exit>
struct class_map_function_traits<MapWithState<F, Init, Exit>> : map_function_traits<F> {
  static_assert(map_function_traits<F>::takes_context,
                "corun::map_function<&f, &init_state>: f must take a const corun::TaskContext& "
                "last, to reach its State: R f(const In&, [const Params&,] const "
                "corun::TaskContext& ctx), then ctx.state<State>()");
  using state = MapStateHooks<MapWithState<F, Init, Exit>, typename map_function_traits<F>::params,
                              Init, Exit>;
};

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

  /// Reads the items of `bytes` one at a time.
  class Reader {
   public:
    explicit Reader(std::string_view bytes) : bytes_(bytes) {}
    bool at_end() const noexcept { return at_ == bytes_.size(); }
    /// Bytes of the items read so far.
    std::size_t consumed() const noexcept { return at_; }
    T next() {
      const std::string_view rest = bytes_.substr(at_);
      if constexpr (raw) {
        if (rest.size() < sizeof(T))
          codec_format_error("corun map chunk", std::to_string(bytes_.size()) +
                                                    " bytes is not a whole number of items");
        T value;
        std::memcpy(static_cast<void*>(&value), rest.data(), sizeof(T));
        at_ += sizeof(T);
        return value;
      } else {
        std::uint32_t len = 0;
        if (rest.size() < sizeof len) codec_format_error("corun map chunk", "truncated length");
        std::memcpy(&len, rest.data(), sizeof len);
        if (rest.size() - sizeof len < len) codec_format_error("corun map chunk", "truncated item");
        at_ += sizeof len + len;
        return codec<T>::decode(rest.substr(sizeof len, len));
      }
    }

   private:
    std::string_view bytes_;
    std::size_t at_ = 0;
  };

  /// Calls `each(T&&)` for every item of `bytes`; returns how many there were.
  template <class Each>
  static std::size_t for_each(std::string_view bytes, Each&& each) {
    std::size_t n = 0;
    for (Reader items(bytes); !items.at_end(); ++n) each(items.next());
    return n;
  }
};

inline void check_item_count(std::size_t got, std::size_t expected) {
  if (got != expected)
    throw std::invalid_argument("corun map chunk: " + std::to_string(got) + " items where " +
                                std::to_string(expected) + " were expected");
}

/// The task's spec's params as a T made by `decode(bytes)`: decoded by the first task of the
/// spec in this process and kept while the process holds the spec, so that large params cost
/// nothing per chunk (worker.hpp's cached_params, with a decoder of its own).
template <class T, class Decode>
const T& spec_params(const TaskContext& ctx, Decode decode) {
  SpecCache& cache = *ctx.cache;
  if (!cache.params) cache.params = std::make_shared<T>(decode(ctx.params));
  return *static_cast<const T*>(cache.params.get());
}

/// The decoded parameters of the task at hand.
template <class P>
const P& task_params(const TaskContext& ctx) {
  if constexpr (std::is_empty_v<P>) {
    static const P none{};
    return none;
  } else {
    return spec_params<P>(ctx, [](std::string_view b) { return decode_params<P>(b); });
  }
}

/// Maps a chunk's inputs in order with `map_one(index, In&&)`, which returns false when the
/// input's result does not fit the reply (it then added nothing). Stops at the first input
/// that throws or does not fit, and says which in the returned end; the parent sends the rest
/// again.
template <class In, class MapOne>
ChunkEnd map_inputs(const TaskContext& ctx, MapOne&& map_one) {
  ChunkEnd end;
  typename item_format<In>::Reader inputs(ctx.argument);
  while (!inputs.at_end()) {
    const std::size_t before = inputs.consumed();
    const std::size_t index = ctx.slice.start + end.done;
    try {
      if (!map_one(index, inputs.next())) {
        end.stop = ChunkStop::result_budget;
        end.consumed = before;
        return end;
      }
    } catch (const ItemFailure&) {
      throw;  // the chunk cannot be salvaged (its reduction threw)
    } catch (...) {
      end.stop = ChunkStop::input_failed;
      describe_current_exception(end.failure_type, end.failure_message);
      end.consumed = inputs.consumed();
      end.failed_from = before;
      if (end.consumed == before) throw;  // the chunk itself is malformed: fail the task
      return end;
    }
    ++end.done;
    end.consumed = inputs.consumed();
  }
  check_item_count(end.done, ctx.slice.end - ctx.slice.start);
  return end;
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
    const auto& params = task_params<typename traits::params>(ctx);
    if constexpr (!std::is_same_v<typename traits::state, NoMapState>) {
      if (!ctx.cache->state) traits::state::attach(ctx, ctx.params, ctx.cache->params, params);
    }
    const std::size_t results_at = out.size();
    // Room for the end of the reply, and for the texts of a failure.
    const std::size_t budget = ctx.max_result_bytes > kChunkEndBytes + 1024
                                   ? ctx.max_result_bytes - kChunkEndBytes - 1024
                                   : 0;
    ChunkEnd end = map_inputs<In>(ctx, [&](std::size_t, In&& x) {
      const std::size_t before = out.size();
      item_format<R>::put(traits::call(x, params, ctx), out);
      if (out.size() - results_at <= budget) return true;
      const std::size_t bytes = out.size() - before;
      out.resize(before);
      if (before == results_at)  // the first input's own result is too large: it fails alone
        throw std::length_error("result of " + std::to_string(bytes) +
                                " bytes exceeds PoolOptions::max_result_bytes (" +
                                std::to_string(ctx.max_result_bytes) + ")");
      return false;
    });
    append_chunk_end(out, results_at, end);
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

/// The three parts encode_reduction wrote: params, operation, init.
inline std::array<std::string_view, 3> reduction_parts(std::string_view bytes) {
  std::array<std::string_view, 3> parts;
  for (auto& part : parts) {
    std::uint64_t n = 0;
    if (bytes.size() < sizeof n ||
        (std::memcpy(&n, bytes.data(), sizeof n), bytes.size() - sizeof n < n))
      codec_format_error("corun reduction", "truncated parameters");
    part = bytes.substr(sizeof n, n);
    bytes.remove_prefix(sizeof n + n);
  }
  return parts;
}

template <class P, class Op, class A>
Reduction<P, Op, A> decode_reduction(std::string_view bytes) {
  const auto parts = reduction_parts(bytes);
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
    const auto& red = spec_params<Reduction<P, Op, A>>(
        ctx, [](std::string_view b) { return decode_reduction<P, Op, A>(b); });
    if constexpr (!std::is_same_v<typename traits::state, NoMapState>) {
      if (!ctx.cache->state) {
        // The State is the map function's, whatever reduces its results: keyed by its params'
        // bytes alone, and owning them through the spec's decoded reduction.
        const std::shared_ptr<void> holder(ctx.cache->params, const_cast<P*>(&red.params));
        traits::state::attach(ctx, reduction_parts(ctx.params)[0], holder, red.params);
      }
    }
    std::optional<A> acc;
    if constexpr (has_identity<Op, A>) acc.emplace(red.op.identity(red.init));
    ChunkEnd end = map_inputs<In>(ctx, [&](std::size_t index, In&& x) {
      auto value = traits::call(x, red.params, ctx);
      if (!acc) {
        if constexpr (std::is_constructible_v<A, decltype(value)>) acc.emplace(std::move(value));
        return true;
      }
      // The fold consumes the partial: when the reduction throws there is none left to send,
      // so the whole task fails, naming the input.
      try {
        acc = A(red.op(std::move(*acc), std::move(value)));
      } catch (...) {
        std::string type, message;
        describe_current_exception(type, message);
        throw ItemFailure(index, std::move(type), "the reduction threw: " + message);
      }
      return true;
    });
    const std::size_t results_at = out.size();
    if (acc && end.done != 0) codec<A>::encode(*acc, out);
    append_chunk_end(out, results_at, end);
  }

  inline static const char* const name = register_function(typeid(MapReduceFunction), &invoke);
};

}  // namespace corun::detail
