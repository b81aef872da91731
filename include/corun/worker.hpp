#pragma once
/// \file
/// Worker<Derived, T, Params>: the CRTP base of user workers; CORUN_REGISTER_WORKER.
/// Side: both.
///
/// In `Worker<Derived, T, Params>`, `Derived` is the worker type itself (the CRTP argument), `T`
/// the element type of the shared array the worker reads (its iterator's array must hold T, and
/// `process` takes `SliceView<const T>`), and `Params` the parameters below (default: none).
/// A worker type has a static `process` that runs in a worker process on one slice, and
/// optionally a `process_callback` that runs on the orchestrator's executor with each slice's
/// result:
/// \code
/// struct AddInts : corun::Worker<AddInts, std::int64_t> {
///   using Worker::Worker;
///   static std::int64_t process(corun::SliceView<const std::int64_t> slice);
///   void process_callback(std::int64_t partial) { total += partial; }
///   std::int64_t total = 0;
/// };
/// CORUN_REGISTER_WORKER(AddInts);  // optional: it only chooses the name reports show
/// \endcode
///
/// `process_callback` is optional: without it results are decoded and discarded. If the type
/// declares a member named `process_callback`, it must take the result R of `process` as
/// `process_callback(R)`, `(const R&)` or `(R&&)` (`process_callback()` when `process` returns
/// void); any other signature (e.g. `R&`) is a compile error naming these forms. A misspelt
/// name (`process_callbak`) is just another member and cannot be detected: results are then
/// discarded. R must be default constructible.
///
/// Parameters: `Worker<Derived, T, Params>` holds a Params value given to its constructor
/// (`Derived{iterator, params}` or `Derived{iterator, params, output}`); it is encoded once
/// per run (see <corun/params.hpp> for which types can be), sent once to each worker process
/// that runs a task of it, decoded there once, and passed to `process`, which may take
/// `(view)`, `(view, const Params&)`, `(view, const TaskContext&)` or
/// `(view, const Params&, const TaskContext&)`.
///
/// Per-process state and hooks (mpire's worker_state, worker_init and worker_exit), all
/// optional, all static members of the worker type, run in the worker process:
/// \code
/// struct Count : corun::Worker<Count, std::int64_t, Config> {
///   using Worker::Worker;
///   struct State { std::vector<double> scratch; std::int64_t tasks = 0; };
///   // creates the State (else it is value-initialised)
///   static State init_state(const Config& params, const corun::WorkerInfo& info);
///   // runs after init_state, before this worker object's first task in the process
///   static void worker_init(const Config& params, const corun::WorkerInfo& info);
///   // runs before the process exits (shutdown, worker_lifespan), or when the parent forgets
///   // the worker object; may take (State&, const Config&, const WorkerInfo&) instead
///   static void worker_exit(const Config& params, const corun::WorkerInfo& info);
///   static std::int64_t process(corun::SliceView<const std::int64_t> slice,
///                               const Config& params, const corun::TaskContext& ctx) {
///     State& state = ctx.state<State>();
///     return ++state.tasks;
///   }
/// };
/// \endcode
/// They run once per worker process and per worker object (per spec: a worker of a
/// WorkerOrchestrator, for all its runs; one async_execute call), lazily, when the process runs
/// that object's first task: a process that never runs one never runs them. An exception from
/// init_state or worker_init fails that task (a TaskError), and the next task of the object tries
/// again; an exception from worker_exit is reported through corun/diagnostics.hpp (in a worker
/// process: on its stderr). PoolOptions::worker_init and worker_exit are per process, whatever
/// the work: they run before and after these.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/codec.hpp>
#include <corun/data_iterator.hpp>
#include <corun/detail/process_traits.hpp>
#include <corun/dtype.hpp>
#include <corun/error.hpp>
#include <corun/params.hpp>
#include <corun/slice.hpp>
#include <corun/slice_view.hpp>
#include <corun/task_context.hpp>
#include <corun/worker_info.hpp>

#include <concepts>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>

namespace corun {

/// CRTP base of worker types: holds the DataIterator of the array the worker reads, its
/// parameters, and optionally an output array that `process` writes through
/// TaskContext::output<T>().
/// \tparam Derived the worker type itself: `struct AddInts : Worker<AddInts, std::int64_t>`.
/// \tparam T the element type of the array the worker reads: `process` takes
///   `SliceView<const T>`, and the iterator given to the constructor must describe an array of T.
/// \tparam Params what every worker process receives once (see <corun/params.hpp>).
template <class Derived, element_type T, class Params = NoParams>
class Worker {
  // A Params type none of <corun/params.hpp>'s ways can encode is reported here, once.
  static_assert(params_encodable<Params>, CORUN_DETAIL_PARAMS_UNENCODABLE);

 public:
  /// T, the element type of the array `process` reads.
  using element_type = T;
  /// Params, what every task of this worker receives.
  using params_type = Params;

  /// Throws corun::Error (dtype_mismatch) when `data` does not describe an array of T, and
  /// std::invalid_argument when it is malformed. Params are value-initialised.
  explicit Worker(DataIterator data, std::optional<ArrayInfo> output = std::nullopt)
      : Worker(std::move(data), Params{}, std::move(output)) {}
  /// The same, with the parameters every task of this worker sees.
  Worker(DataIterator data, Params params, std::optional<ArrayInfo> output = std::nullopt)
      : data_(std::move(data)), params_(std::move(params)), output_(std::move(output)) {
    data_.validate();
    if (data_.data_type != DType::of<T>())
      throw Error(errc::dtype_mismatch, "corun::Worker: array '" + data_.shm_name + "' holds " +
                                            data_.data_type.str() + " but the worker reads " +
                                            DType::of<T>().str());
  }

  /// The array this worker reads and how it is cut into slices.
  const DataIterator& data_iterator() const noexcept { return data_; }
  /// The array `process` writes through TaskContext::output<T>(), if there is one.
  const std::optional<ArrayInfo>& output() const noexcept { return output_; }
  /// The parameters given to the constructor (encoded when the worker is given to an
  /// orchestrator or to async_execute).
  const Params& params() const noexcept { return params_; }

 private:
  DataIterator data_;
  Params params_;
  std::optional<ArrayInfo> output_;
};

namespace detail {

/// Whether W derives from corun::Worker with its own element and params types.
template <class W>
concept worker_type = std::derived_from<W, Worker<W, typename W::element_type, worker_params_t<W>>>;

/// The bytes of a worker object's params (empty for a type that cannot encode them: Worker's
/// static_assert has said why).
template <class W>
std::string encoded_params_of(const W& worker) {
  if constexpr (params_encodable<worker_params_t<W>>)
    return encode_params(worker.params());
  else
    return {};
}

/// The bytes of W's value-initialised params.
template <class W>
std::string encoded_default_params() {
  if constexpr (params_encodable<worker_params_t<W>>)
    return encode_params(worker_params_t<W>{});
  else
    return {};
}

/// Runs W::process on one slice in this process and appends the encoded result to `out`.
using TaskInvoker = void (*)(const TaskContext& ctx, std::string& out);

/// Adds a worker type to this process's registry; aborts with a message when `name` is
/// already taken by another type. Returns true so the macro can initialise a static.
CORUN_API bool register_worker(const char* name, const std::type_info& type, TaskInvoker invoker);
/// Adds a worker type under its type's demangled name (made unique by a suffix if another type
/// has it, as two types of anonymous namespaces may: static initialisation runs in the same
/// order in every process of a program, so every process picks the same suffix). A name the
/// macro gave the type stays the one the parent uses.
CORUN_API bool register_worker_automatically(const std::type_info& type, TaskInvoker invoker);
/// The registered name of a type, or nullptr.
CORUN_API const char* registered_name(const std::type_info& type) noexcept;
/// The invoker registered under `name`, or nullptr.
CORUN_API TaskInvoker find_invoker(std::string_view name) noexcept;
/// The name of W, or throws corun::Error (worker_not_registered) naming the type.
CORUN_API const char* require_registered(const std::type_info& type);

template <class W>
concept has_state = requires {
  typename W::State;
};

/// W's State, from W::init_state(params, info) or value-initialised.
template <class W>
std::shared_ptr<void> make_state(const worker_params_t<W>& params, const WorkerInfo& info) {
  using S = typename W::State;
  if constexpr (requires { W::init_state(params, info); }) {
    static_assert(std::is_convertible_v<decltype(W::init_state(params, info)), S>,
                  "corun: a worker's init_state(const Params&, const WorkerInfo&) must return "
                  "its State");
    return std::make_shared<S>(W::init_state(params, info));
  } else {
    static_assert(std::is_default_constructible_v<S>,
                  "corun: a worker's State must be default constructible, or the worker must "
                  "declare static State init_state(const Params&, const WorkerInfo&)");
    return std::make_shared<S>();
  }
}

/// Whether W::worker_exit takes W's State first (a conjunction, so that a W without State is
/// never substituted into the requirement).
template <class W>
concept exit_takes_state = has_state<W> &&
    requires(typename W::State& state, const worker_params_t<W>& params, const WorkerInfo& info) {
  W::worker_exit(state, params, info);
};

/// Runs W::worker_exit, with the state when it takes one.
template <class W>
void finish_spec(SpecCache& cache, const WorkerInfo& info) {
  using P = worker_params_t<W>;
  const P& params = *static_cast<const P*>(cache.params.get());
  if constexpr (exit_takes_state<W>) {
    W::worker_exit(*static_cast<typename W::State*>(cache.state.get()), params, info);
  } else if constexpr (requires { W::worker_exit(params, info); }) {
    W::worker_exit(params, info);
  } else {
    static_assert(
        !requires { &W::worker_exit; },
        "corun: a worker's worker_exit must be static and take (const Params&, const "
        "WorkerInfo&), or (State&, const Params&, const WorkerInfo&)");
  }
}

/// The task's params as a P, decoded by the first task of its spec in this process and kept
/// while the process holds the spec (async_map's functions use it too).
template <class P>
const P& cached_params(const TaskContext& ctx) {
  SpecCache& cache = *ctx.cache;
  if (!cache.params) {
    if constexpr (params_encodable<P>)
      cache.params = std::make_shared<P>(decode_params<P>(ctx.params));
  }
  return *static_cast<const P*>(cache.params.get());
}

/// W's params in this process, and its state and worker_init, made and run by the first task
/// of its spec.
template <class W>
const worker_params_t<W>& prepare_spec(const TaskContext& ctx) {
  SpecCache& cache = *ctx.cache;
  const auto& params = cached_params<worker_params_t<W>>(ctx);
  if (cache.finish == nullptr) {
    const WorkerInfo info = ctx.worker_info();
    std::shared_ptr<void> state;
    if constexpr (has_state<W>) state = make_state<W>(params, info);
    if constexpr (requires { W::worker_init(params, info); }) {
      W::worker_init(params, info);
    } else {
      static_assert(
          !requires { &W::worker_init; },
          "corun: a worker's worker_init must be static and take (const Params&, const "
          "WorkerInfo&)");
    }
    if constexpr (has_state<W>) {
      cache.state = std::move(state);
      cache.state_type = &typeid(typename W::State);
    }
    cache.finish = &finish_spec<W>;
  }
  return params;
}

template <class W>
void invoke_process(const TaskContext& ctx, std::string& out);

/// Registers W in every process of the program, without CORUN_REGISTER_WORKER: this member
/// is instantiated by whatever names W for a pool (WorkerRef, async_execute), and as a
/// static of the program it is initialised at start-up in each of its processes, a spawned
/// worker included, before main.
template <class W>
struct automatic_registration {
  static inline const bool registered =
      register_worker_automatically(typeid(W), &invoke_process<W>);
};

/// The name W is registered under (registering it, if nothing did yet).
template <class W>
const char* worker_name_of() {
  (void)automatic_registration<W>::registered;
  return require_registered(typeid(W));
}

template <class W>
void invoke_process(const TaskContext& ctx, std::string& out) {
  using T = typename W::element_type;
  using R = worker_result_t<W>;
  const auto& params = prepare_spec<W>(ctx);
  const auto view = ctx.input_rows<const T>(ctx.segment_rows);
  if constexpr (std::is_void_v<R>) {
    call_process<W>(view, params, ctx);
  } else {
    static_assert(encodable<std::decay_t<R>>,
                  "the result type of process has no corun::codec: specialise corun::codec<R>");
    codec<std::decay_t<R>>::encode(call_process<W>(view, params, ctx), out);
  }
}

}  // namespace detail

/// If this process was started by a ProcessPool (start method spawn), becomes a worker and
/// never returns; otherwise returns at once. Call it first thing in `main`.
CORUN_API void enter_worker_if_spawned(int argc, char** argv);

}  // namespace corun

#define CORUN_DETAIL_CONCAT2(a, b) a##b
#define CORUN_DETAIL_CONCAT(a, b) CORUN_DETAIL_CONCAT2(a, b)

/// Makes `Type::process` reachable by the stable name "Type" in every worker process, whatever
/// the start method. Use once per type, at namespace scope, in a source file of the program.
/// Optional: a worker type a WorkerOrchestrator or async_execute uses anywhere in the program
/// registers itself (under its demangled name); the macro only chooses the name.
#define CORUN_REGISTER_WORKER(Type)                                                               \
  [[maybe_unused]] static const bool CORUN_DETAIL_CONCAT(corun_registered_worker_, __COUNTER__) = \
      ::corun::detail::register_worker(#Type, typeid(Type),                                       \
                                       &::corun::detail::invoke_process<Type>)
