#pragma once
/// \file
/// corun::map_function<&f, &init_state[, &exit_hook]>: a map function with a per-process State
/// (mpire's worker_state), built once per worker process from the map's params, for async_map,
/// async_imap and async_map_reduce.
/// Side: both.
///
/// \code
/// struct Vocabulary { std::unordered_map<std::string, std::int32_t> ids; };
/// // runs in a worker process, once, before the first input of the map there
/// Vocabulary load(const Source& params, const corun::WorkerInfo& info);
/// // runs in the worker process before it exits (optional)
/// void unload(Vocabulary& state, const Source& params, const corun::WorkerInfo& info);
/// std::int32_t lookup(const std::string& word, const Source&, const corun::TaskContext& ctx) {
///   const auto& ids = ctx.state<Vocabulary>().ids;
///   const auto it = ids.find(word);
///   return it == ids.end() ? -1 : it->second;
/// }
/// ...
/// corun::MapOptions<Source> options{.params = source};
/// auto ids = co_await corun::async_map<corun::map_function<&lookup, &load, &unload>>(
///     pool, words, std::move(options), asio::use_awaitable);
/// \endcode
///
/// The function takes the TaskContext last: `R f(const In&, const P&, const TaskContext&)` or
/// `R f(const In&, const TaskContext&)` (any map function may take it, with or without a State:
/// `ctx.worker_id`, `ctx.worker_info()`, and `ctx.slice`, the indices of the inputs of the chunk
/// the input belongs to). `init_state` is `State init_state(const P&, const WorkerInfo&)` or
/// `State init_state(const WorkerInfo&)`, and its return type is the State that
/// `ctx.state<State>()` gives (any other type there throws std::logic_error naming both, and
/// the input fails with it). The exit hook is `void exit_hook(State&, const P&, const
/// WorkerInfo&)` or `void exit_hook(State&, const WorkerInfo&)`.
///
/// How long the State lives: a worker process builds it lazily, when it maps the first input of
/// a map of this map_function there, and keeps it for every later map of the same map_function
/// with the same params (compared with their operator== when P has one, else by their encoded
/// bytes: the bytes of a trivially copyable P include its padding, which equal values need not
/// share, so give such a P `bool operator==(const P&) const = default` or equal params may build
/// a second State; an init_state that takes no params builds one State for all of them),
/// async_map, async_imap and async_map_reduce alike, as a
/// Worker's State lives across the runs of an orchestrator. A process keeps the States of
/// kMapStatesPerWorker (function, params) pairs beyond those that maps running there use;
/// past that, the least recently used one's exit hook runs and it is dropped (built again if a
/// map needs it later). The exit hook runs before the process exits (graceful shutdown,
/// worker_lifespan), before PoolOptions::worker_exit; a crashed or killed process runs none. An
/// exception from init_state fails the chunk's task (a TaskError with its message), and the next
/// task tries again; one from the exit hook is reported through corun/diagnostics.hpp. A serial
/// pool (StartMethod::serial) keeps the States in the program's own process, one set per worker
/// slot, and runs the exit hooks when it shuts down.

#include <corun/detail/config.hpp>

#include <cstddef>

namespace corun {

/// Map states a worker process keeps beyond those of the maps it is running (see above).
inline constexpr std::size_t kMapStatesPerWorker = 16;

/// The type of corun::map_function<F, InitState, ExitHook>: F with the hooks that build and end
/// its per-process State. Empty: all it holds is in its template arguments.
/// \tparam F the map function, taking `const corun::TaskContext&` last
/// \tparam InitState `State init_state([const P&,] const WorkerInfo&)`
/// \tparam ExitHook nullptr, or `void exit_hook(State&, [const P&,] const WorkerInfo&)`
template <auto F, auto InitState, auto ExitHook = nullptr>
struct MapWithState {};

/// F with a per-process State built by InitState (and ended by ExitHook), as the template
/// argument of async_map, async_imap and async_map_reduce:
/// `corun::async_map<corun::map_function<&f, &init_state>>(pool, inputs, options)`.
template <auto F, auto InitState, auto ExitHook = nullptr>
inline constexpr MapWithState<F, InitState, ExitHook> map_function{};

}  // namespace corun
