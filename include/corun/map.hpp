#pragma once
/// \file
/// async_map, async_imap and async_map_reduce: a free function over a range of plain inputs,
/// in the pool's worker processes.
/// Side: both.
///
/// \code
/// double square(const double& x) { return x * x; }
/// ...
/// std::vector<double> squares = co_await corun::async_map<&square>(pool, inputs);
/// \endcode
///
/// The function needs no registration: the class template that holds it registers it, at
/// start-up, in every process of the program (spawned workers included). Inputs are cut into
/// chunks (MapOptions::chunk_size, or automatically from the time inputs take), each chunk is
/// one task; results come back one chunk at a time. Inputs and results travel through
/// corun::codec (trivially copyable types as their bytes, std::string, vectors, xtensor
/// containers, user specialisations).
///
/// A map function may take the task's context last, `R f(const In&, const corun::TaskContext&)`
/// or `R f(const In&, const P&, const corun::TaskContext&)`: the TaskContext of the worker
/// process that maps the input (`ctx.worker_id`, `ctx.worker_info()`; `ctx.slice` holds the
/// indices of the inputs of the chunk). Given as corun::map_function<&f, &init_state[,
/// &exit_hook]> (corun/map_with_state.hpp), it also has a per-process State, built once per
/// worker process from the map's params and kept across maps: `ctx.state<State>()`.

#include <corun/detail/config.hpp>

#include <corun/cancellation.hpp>
#include <corun/codec.hpp>
#include <corun/detail/completion.hpp>
#include <corun/detail/map_engine.hpp>
#include <corun/detail/map_function.hpp>
#include <corun/detail/map_io.hpp>
#include <corun/error_policy.hpp>
#include <corun/map_with_state.hpp>
#include <corun/params.hpp>
#include <corun/pool.hpp>
#include <corun/retry.hpp>

#include <asio/async_result.hpp>

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

namespace corun {

/// How a map runs. `Params` reach the function's second argument in every worker process.
///
/// In a coroutine built by g++ 12, options whose Params own memory (std::string, a vector, a
/// struct holding either) must be a named local, passed by name (copied or moved), never a
/// temporary written inside the co_await expression (`MapOptions<P>{.params = ...}`, `{}`):
/// GCC 12 destroys the members of such an aggregate temporary twice (a double free). See the
/// README, "GCC 12 and temporaries in co_await".
/// \code
/// corun::MapOptions<std::string> options{.params = label};
/// auto out = co_await corun::async_map<&f>(pool, inputs, std::move(options), asio::use_awaitable);
/// \endcode
template <class Params = NoParams>
struct MapOptions {
  /// Inputs per task; 0: automatic (tiny inputs are batched so that a task takes about 2 ms;
  /// expensive ones go one per task; the last chunks shrink so that workers finish together).
  std::size_t chunk_size = 0;
  /// async_imap: results in input order (buffering at most what is in flight), or as they
  /// come (imap_unordered).
  bool ordered = true;
  /// Chunks kept in flight at once; 0: PoolOptions::max_tasks_active.
  std::size_t max_tasks_active = 0;
  /// Bytes of inputs and results the parent holds for the map at once: the chunks in flight
  /// (their inputs, and the results they are expected to bring) and the results waiting for
  /// their turn. Chunks are sized to fit several per worker, and no chunk goes out while the
  /// window is full, so memory stays bounded however long (or endless) the inputs are. One
  /// chunk always goes out, however large its input.
  std::size_t max_bytes_in_flight = std::size_t{64} << 20;
  /// fail_fast: stop at the first input that fails; collect: map every other input. Either way
  /// the operation then fails with corun::RunError, with one TaskError per failed input
  /// (slice [i, i + 1), its message "input i: ..."), sorted by input. An input that throws
  /// does not cost its chunk's other inputs: the worker returns the results before it and the
  /// rest are sent again. A chunk whose worker crashed or timed out (or whose reduction threw)
  /// fails as a whole, its TaskError covering its slice. `retry` re-runs both: such chunks, and
  /// each input that threw an exception its retry_on picks (alone, after its backoff, up to
  /// `attempts` runs of that input; TaskError::attempts counts them); without it,
  /// PoolOptions::retries re-runs failed chunks, never inputs that threw.
  ErrorPolicy on_error = ErrorPolicy::fail_fast;
  /// What cancellation does with chunks already at a worker.
  CancelMode on_cancel = CancelMode::drain;
  /// A progress bar of inputs on stderr (`on`: when it is a terminal; see corun/progress.hpp).
  ProgressBar progress_bar = ProgressBar::off;
  /// How failed chunks and inputs that threw run again (see on_error); unset:
  /// PoolOptions::retries for chunks. Checked when the map starts (RetryPolicy::validate throws
  /// std::invalid_argument).
  std::optional<RetryPolicy> retry{};
  /// The map's chunks wait for a worker ahead of lower priorities' tasks (higher first; see
  /// OrchestratorOptions::priority for the rule that keeps low priorities from starving).
  int priority = 0;
  /// The value the function's second argument receives (encoded once per map; see
  /// <corun/params.hpp> for which types can be).
  Params params{};
};

namespace detail {
template <class P>
MapSettings settings_of(const MapOptions<P>& o) {
  MapSettings s;
  s.chunk_size = o.chunk_size;
  s.ordered = o.ordered;
  s.max_tasks_active = o.max_tasks_active;
  s.max_bytes_in_flight = o.max_bytes_in_flight;
  s.on_error = o.on_error;
  s.on_cancel = o.on_cancel;
  s.progress_bar = o.progress_bar;
  s.priority = o.priority;
  if (o.retry) {
    o.retry->validate();
    s.retry = std::make_shared<const RetryPolicy>(*o.retry);
  }
  return s;
}

template <class Traits, class Params>
void check_params() {
  static_assert(std::is_same_v<typename Traits::params, Params>,
                "corun: the map function's parameters and MapOptions<Params> differ: a function "
                "R f(const In&, const P&) needs MapOptions<P>{.params = ...}, and a function "
                "without parameters MapOptions<> (corun::NoParams)");
}

/// What runs a map's chunks: a ProcessPool's service, or any pool-like object's
/// `task_service()` (corun::ClusterPool: each chunk runs on the rank with the fewest tasks per
/// worker).
template <class Pool>
std::shared_ptr<TaskService> service_of(Pool& pool) {
  if constexpr (std::is_same_v<std::remove_const_t<Pool>, ProcessPool>)
    return PoolAccess::service(pool);
  else
    return pool.task_service();
}

/// Keeps the inputs for the operation (see KeptInputs).
template <class Range>
KeptInputs<Range> keep_inputs(Range&& inputs) {
  static_assert(input_sequence<std::remove_reference_t<Range>>,
                "corun: async_map's inputs must be a range (begin(), end())");
  return KeptInputs<Range>(std::forward<Range>(inputs));
}

/// Starts a map whose results go to the sink `make_sink(handler, executor, input count)`
/// makes, once the token has turned into a handler.
template <class Signature, class In, class Token, class Range, class MakeSink>
auto initiate_map(Token&& token, const std::shared_ptr<TaskService>& service,
                  KeptInputs<Range> view, std::shared_ptr<const TaskSpec> spec,
                  MapSettings settings, MakeSink make_sink) {
  return asio::async_initiate<Token, Signature>(
      [](auto handler, std::shared_ptr<TaskService> on, KeptInputs<Range> inputs,
         std::shared_ptr<const TaskSpec> what, MapSettings how, MakeSink make) {
        auto source = std::make_unique<RangeSource<Range, In>>(std::move(inputs));
        std::unique_ptr<MapSink> sink = make(std::move(handler), on->executor(), source->size());
        start_map(on, std::move(what), how, std::move(source), std::move(sink));
      },
      token, service, std::move(view), std::move(spec), settings, std::move(make_sink));
}

}  // namespace detail

/// Maps F over `inputs` in the pool's workers. Completes with `void(std::exception_ptr,
/// std::vector<R>)`, the results in input order. Failures: corun::RunError whose TaskErrors
/// name the inputs that failed (the vector holds R{} there); cancellation: operation_aborted.
/// An lvalue `inputs` must outlive the operation; an rvalue is moved in.
template <auto F, class Pool, class Range, class Params = NoParams,
          class Token = asio::default_completion_token_t<ProcessPool::executor_type>>
auto async_map(Pool& pool, Range&& inputs, MapOptions<Params> options = {}, Token&& token = {}) {
  using traits = detail::map_function_traits<F>;
  using R = std::decay_t<typename traits::result>;
  detail::check_map_types<traits>();
  detail::check_params<traits, Params>();
  static_assert(std::is_default_constructible_v<R>,
                "corun: async_map's result type must be default constructible");
  auto settings = detail::settings_of(options);
  settings.ordered = false;  // results are placed by index
  return detail::initiate_map<void(std::exception_ptr, std::vector<R>), typename traits::input>(
      std::forward<Token>(token), detail::service_of(pool),
      detail::keep_inputs(std::forward<Range>(inputs)),
      detail::make_function_spec(detail::MapFunction<F>::name, encode_params(options.params)),
      settings, [](auto handler, const asio::any_io_executor& executor, auto size) {
        return std::make_unique<detail::VectorSink<R, decltype(handler)>>(std::move(handler),
                                                                          executor, size);
      });
}

/// Maps F over `inputs`, calling `on_result(std::size_t index, R value)` on the pool's
/// executor for each result: in input order (MapOptions::ordered, the default) or as they
/// come. `inputs` may be lazy and of unknown length: at most MapOptions::max_tasks_active
/// chunks, and MapOptions::max_bytes_in_flight bytes of inputs and results, are in flight (or
/// waiting for their turn), so memory stays bounded. Completes with
/// `void(std::exception_ptr)`; an exception thrown by on_result ends the map with it.
template <auto F, class Pool, class Range, class Params, class OnResult,
          class Token = asio::default_completion_token_t<ProcessPool::executor_type>>
auto async_imap(Pool& pool, Range&& inputs, MapOptions<Params> options, OnResult on_result,
                Token&& token = {}) {
  using traits = detail::map_function_traits<F>;
  using R = std::decay_t<typename traits::result>;
  detail::check_map_types<traits>();
  detail::check_params<traits, Params>();
  static_assert(std::is_invocable_v<OnResult&, std::size_t, R&&>,
                "corun: async_imap's on_result must take (std::size_t index, R value)");
  return detail::initiate_map<void(std::exception_ptr), typename traits::input>(
      std::forward<Token>(token), detail::service_of(pool),
      detail::keep_inputs(std::forward<Range>(inputs)),
      detail::make_function_spec(detail::MapFunction<F>::name, encode_params(options.params)),
      detail::settings_of(options),
      [each = std::move(on_result)](auto handler, const asio::any_io_executor& executor,
                                    auto) mutable {
        return std::make_unique<detail::CallbackSink<R, OnResult, decltype(handler)>>(
            std::move(handler), executor, std::move(each));
      });
}

/// Maps F over `inputs` and reduces the results with `op`, starting from `init`: each worker
/// folds its chunk (so one value per chunk crosses the process boundary), and the partial
/// results are joined in input order. Completes with `void(std::exception_ptr, A)`.
///
/// `op` is a reduction from corun/reduce.hpp or any trivially copyable callable (a
/// captureless lambda) with `A op(A, R)` that also joins two partials as `A op(A, A)` (or has
/// `merge(A, A)`); a chunk's fold starts from `op.identity(init)` when it has one, else from
/// its first result. `op` must be associative.
template <auto F, class Pool, class Range, class A, class Op, class Params = NoParams,
          class Token = asio::default_completion_token_t<ProcessPool::executor_type>>
auto async_map_reduce(Pool& pool, Range&& inputs, A init, Op op, MapOptions<Params> options = {},
                      Token&& token = {}) {
  using traits = detail::map_function_traits<F>;
  using R = std::decay_t<typename traits::result>;
  detail::check_map_types<traits>();
  detail::check_params<traits, Params>();
  static_assert(encodable<A>, "corun: the reduction's value type has no corun::codec");
  static_assert(std::is_empty_v<Op> || detail::is_byte_copyable<Op> || encodable<Op>,
                "corun: the reduction must be trivially copyable (it travels to the workers)");
  static_assert(std::is_invocable_r_v<A, const Op&, A, R>,
                "corun: the reduction must be callable as A op(A, R)");
  static_assert(detail::has_identity<Op, A> || std::is_constructible_v<A, R>,
                "corun: a reduction without identity(init) starts each chunk from its first "
                "result, so A must be constructible from R");
  auto settings = detail::settings_of(options);
  settings.ordered = true;  // partials join in input order (concat is not commutative)
  auto spec = detail::make_function_spec(detail::MapReduceFunction<F, Op, A>::name,
                                         detail::encode_reduction(options.params, op, init));
  return detail::initiate_map<void(std::exception_ptr, A), typename traits::input>(
      std::forward<Token>(token), detail::service_of(pool),
      detail::keep_inputs(std::forward<Range>(inputs)), std::move(spec), settings,
      [start = std::move(init), reduction = std::move(op)](
          auto handler, const asio::any_io_executor& executor, auto) mutable {
        return std::make_unique<detail::ReduceSink<A, Op, decltype(handler)>>(
            std::move(handler), executor, std::move(start), std::move(reduction));
      });
}

}  // namespace corun
