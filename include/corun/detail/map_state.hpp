#pragma once
/// \file
/// The worker's side of corun::map_function's State: how the hooks given to it are called, and
/// how a map spec's cache finds the State its process keeps for (function, params) in the
/// process's StateShelf (lib/worker/state_shelf.hpp), building it on first use.
/// Side: worker.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/map_with_state.hpp>
#include <corun/task_context.hpp>
#include <corun/worker_info.hpp>

#include <concepts>
#include <memory>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>

namespace corun::detail {

/// Whether two params values are equal, for P with an operator==.
using ParamsEqual = bool (*)(const void* a, const void* b);

/// The entry this process keeps for map function `function` (a MapWithState type) and these
/// params (`params` owns the value, null for empty params): params compare with `equal` when it
/// is set, else by their bytes `encoded`. Found, or made empty (no state, `params` kept) for
/// the caller to build. Defined in lib/worker/state_shelf.cpp; throws std::logic_error when the
/// task runs outside a runner.
CORUN_API SpecCache& map_state_entry(const TaskContext& ctx, const std::type_info& function,
                                     std::string_view encoded, const std::shared_ptr<void>& params,
                                     ParamsEqual equal);

template <class P>
bool params_equal(const void* a, const void* b) {
  return *static_cast<const P*>(a) == *static_cast<const P*>(b);
}

/// Whether init_state takes the map's params first.
template <class P, auto Init>
inline constexpr bool init_takes_params =
    std::is_invocable_v<decltype(Init), const P&, const WorkerInfo&>;

/// The State init_state returns (void when it cannot be called either way: the static_assert
/// in MapStateHooks says why).
template <class P, auto Init>
using map_state_t = std::decay_t<typename std::conditional_t<
    init_takes_params<P, Init>, std::invoke_result<decltype(Init), const P&, const WorkerInfo&>,
    std::conditional_t<std::is_invocable_v<decltype(Init), const WorkerInfo&>,
                       std::invoke_result<decltype(Init), const WorkerInfo&>,
                       std::type_identity<void>>>::type>;

/// Builds, attaches and ends the State of map function Key (a MapWithState<F, Init, Exit>)
/// whose params are P.
template <class Key, class P, auto Init, auto Exit>
struct MapStateHooks {
  static_assert(!std::is_null_pointer_v<decltype(Init)>,
                "corun::map_function<&f, &init_state>: init_state may not be nullptr");
  static_assert(init_takes_params<P, Init> ||
                    std::is_invocable_v<decltype(Init), const WorkerInfo&>,
                "corun::map_function<&f, &init_state>: init_state must be State init_state(const "
                "P&, const corun::WorkerInfo&) or State init_state(const corun::WorkerInfo&), P "
                "being the map function's params");
  using State = map_state_t<P, Init>;
  static_assert(std::is_object_v<State> && !std::is_void_v<State>,
                "corun::map_function<&f, &init_state>: init_state must return the State");
  static constexpr bool has_exit = !std::is_null_pointer_v<decltype(Exit)>;
  static constexpr bool exit_takes_params =
      std::is_invocable_v<decltype(Exit), State&, const P&, const WorkerInfo&>;
  static_assert(!has_exit || exit_takes_params ||
                    std::is_invocable_v<decltype(Exit), State&, const WorkerInfo&>,
                "corun::map_function<&f, &init_state, &exit_hook>: exit_hook must be void "
                "exit_hook(State&, const P&, const corun::WorkerInfo&) or void exit_hook(State&, "
                "const corun::WorkerInfo&), State being what init_state returns");

  /// Runs the exit hook on a shelf entry's State.
  static void finish(SpecCache& entry, const WorkerInfo& info) {
    if constexpr (has_exit) {
      State& state = *static_cast<State*>(entry.state.get());
      if constexpr (!exit_takes_params) {
        Exit(state, info);
      } else if constexpr (std::is_empty_v<P>) {
        Exit(state, P{}, info);
      } else {
        Exit(state, *static_cast<const P*>(entry.params.get()), info);
      }
    }
  }

  /// Gives the spec's cache the State of (Key, params), building it if this process has none.
  /// `encoded` is the params' bytes; `holder` owns `params` (null for empty params).
  static void attach(const TaskContext& ctx, std::string_view encoded,
                     const std::shared_ptr<void>& holder, const P& params) {
    SpecCache& cache = *ctx.cache;
    // A State built without the params serves every params. Params compare by value when they
    // can: the bytes of a trivially copyable P include its padding, which equal values need
    // not share.
    ParamsEqual equal = nullptr;
    if constexpr (init_takes_params<P, Init> && !std::is_empty_v<P> && std::equality_comparable<P>)
      equal = &params_equal<P>;
    SpecCache& entry = map_state_entry(
        ctx, typeid(Key), init_takes_params<P, Init> ? encoded : std::string_view(), holder, equal);
    if (!entry.state) {
      const WorkerInfo info = ctx.worker_info();
      // A prvalue initialises the State in place: it need not be movable.
      if constexpr (init_takes_params<P, Init>)
        entry.state = std::shared_ptr<State>(new State(Init(params, info)));
      else
        entry.state = std::shared_ptr<State>(new State(Init(info)));
      entry.state_type = &typeid(State);
      if constexpr (has_exit) entry.finish = &finish;
    }
    cache.state = entry.state;
    cache.state_type = entry.state_type;
  }
};

/// The hooks of a map function without State: nothing to attach.
struct NoMapState {};

}  // namespace corun::detail
