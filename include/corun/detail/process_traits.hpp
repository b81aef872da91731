#pragma once
/// \file
/// What corun learns from a worker type's members: its Params, the form of its `process` and
/// the type of its result, and whether its `process_callback` takes that result. No
/// corun::Worker is needed to ask (async_map's functions and tests ask too).
/// Side: worker.

#include <corun/detail/config.hpp>

#include <corun/params.hpp>
#include <corun/slice_view.hpp>
#include <corun/task_context.hpp>

#include <type_traits>
#include <utility>

namespace corun::detail {

/// W's Params (NoParams for a type not derived from corun::Worker).
template <class W>
struct worker_params {
  using type = NoParams;
};
template <class W>
requires requires {
  typename W::params_type;
}
struct worker_params<W> {
  using type = typename W::params_type;
};
template <class W>
using worker_params_t = typename worker_params<W>::type;

template <class W>
using view_of = SliceView<const typename W::element_type>;

template <class W>
concept process_takes_params_context = requires(view_of<W> view, const worker_params_t<W>& p,
                                                const TaskContext& ctx) {
  W::process(view, p, ctx);
};
template <class W>
concept process_takes_params = requires(view_of<W> view, const worker_params_t<W>& p) {
  W::process(view, p);
};
template <class W>
concept process_takes_context = requires(view_of<W> view, const TaskContext& ctx) {
  W::process(view, ctx);
};
template <class W>
concept process_takes_slice = requires(view_of<W> view) {
  W::process(view);
};

/// Calls W::process in whichever of its four forms it has.
template <class W>
decltype(auto) call_process(view_of<W> view, const worker_params_t<W>& params,
                            const TaskContext& ctx) {
  if constexpr (process_takes_params_context<W>)
    return W::process(view, params, ctx);
  else if constexpr (process_takes_params<W>)
    return W::process(view, params);
  else if constexpr (process_takes_context<W>)
    return W::process(view, ctx);
  else
    return W::process(view);
}

template <class W>
concept has_process = process_takes_params_context<W> || process_takes_params<W> ||
    process_takes_context<W> || process_takes_slice<W>;

template <class W, bool = has_process<W>>
struct worker_result {
  static_assert(has_process<W>,
                "a corun worker needs static process(SliceView<const T>), "
                "process(SliceView<const T>, const Params&), "
                "process(SliceView<const T>, const TaskContext&) or "
                "process(SliceView<const T>, const Params&, const TaskContext&)");
  using type = void;
};
template <class W>
struct worker_result<W, true> {
  using type = decltype(call_process<W>(std::declval<view_of<W>>(),
                                        std::declval<const worker_params_t<W>&>(),
                                        std::declval<const TaskContext&>()));
};

/// The result type of W::process.
template <class W>
using worker_result_t = typename worker_result<W>::type;

// A name that a type's own member `process_callback`, if any, makes ambiguous in the derived
// probe below: that ambiguity is how an overloaded or template member is detected too.
struct process_callback_probe {
  int process_callback;
};
template <class W>
struct process_callback_lookup : W, process_callback_probe {};

template <class W, bool = std::is_final_v<W>>
    struct declares_process_callback_impl : std::bool_constant < !requires {
  &process_callback_lookup<W>::process_callback;
} > {};
// A final W cannot be derived from: the probe is taking the member's address, which finds a
// single, non-template member only.
template <class W>
    struct declares_process_callback_impl<W, true> : std::bool_constant < requires {
  &W::process_callback;
} > {};

/// Whether W declares (or inherits) any member named `process_callback`, whatever its
/// signature.
template <class W>
concept declares_process_callback = declares_process_callback_impl<W>::value;

/// Whether `process_callback` takes the result R of W::process: `process_callback(R)`,
/// `(const R&)` or `(R&&)` (and what implicit conversions allow), or `process_callback()`
/// when R is void.
template <class W, class R>
concept process_callback_accepts = (std::is_void_v<R> &&
                                    requires(W & w) { w.process_callback(); }) ||
                                   (!std::is_void_v<R> && requires(W & w, std::decay_t<R>&& value) {
                                     w.process_callback(std::move(value));
                                   });

}  // namespace corun::detail
