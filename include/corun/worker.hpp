#pragma once
/// \file
/// Worker<Derived, T>: the CRTP base of user workers; TaskContext; CORUN_REGISTER_WORKER.
///
/// A worker type names the element type of the array it reads, a static `process` that runs
/// in a worker process on one slice, and optionally a `process_callback` that runs on the
/// orchestrator's executor with each slice's result:
/// \code
/// struct AddInts : corun::Worker<AddInts, std::int64_t> {
///   using Worker::Worker;
///   static std::int64_t process(corun::SliceView<const std::int64_t> slice);
///   void process_callback(std::int64_t partial) { total += partial; }
///   std::int64_t total = 0;
/// };
/// CORUN_REGISTER_WORKER(AddInts);
/// \endcode
///
/// `process_callback` is optional: without it results are decoded and discarded. If the type
/// declares a member named `process_callback`, it must take the result R of `process` as
/// `process_callback(R)`, `(const R&)` or `(R&&)` (`process_callback()` when `process` returns
/// void); any other signature (e.g. `R&`) is a compile error naming these forms. A misspelt
/// name (`process_callbak`) is just another member and cannot be detected: results are then
/// discarded. R must be default constructible.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/codec.hpp>
#include <corun/data_iterator.hpp>
#include <corun/dtype.hpp>
#include <corun/error.hpp>
#include <corun/slice.hpp>
#include <corun/slice_view.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>

namespace corun {

/// What `process` may know about the task it runs.
struct CORUN_API TaskContext {
  int worker_id = 0;             ///< the worker process's slot in the pool, stable for a process
  Slice slice;                   ///< rows of this task
  const DataIterator& iterator;  ///< the metadata of the input array
  const std::optional<ArrayInfo>& output_info;  ///< the output array, when the worker has one
  /// Which segments (inodes) the parent meant by the two names, 0 if unknown: lets a worker
  /// reuse its mappings without asking the file system on every task.
  std::uint64_t input_inode = 0;
  std::uint64_t output_inode = 0;
  /// The task's own encoded input (a chunk of async_map's inputs); empty for array workers.
  std::string_view argument{};
  /// The encoded parameters of the run (Worker's Params, MapOptions' params).
  std::string_view params{};

  /// The whole input array, for stencil-style reads beyond the slice.
  template <class T>
  SliceView<const T> array() const {
    return input_rows<const T>(Slice{0, iterator.size_of_data});
  }
  /// Rows `rows` of the input array (what `process` receives is input_rows(slice)).
  template <class T>
  SliceView<T> input_rows(Slice rows) const {
    return detail::adapt_rows<T>(
        detail::map_rows(iterator.shm_name, iterator.shm_shape, iterator.data_type,
                         DType::of<std::remove_const_t<T>>(), rows, input_inode));
  }
  /// This task's rows of the output array (the worker was constructed with one); tasks write
  /// disjoint rows, so no copy and no lock is needed.
  template <class T>
  SliceView<T> output() const {
    return output_rows<T>(slice);
  }
  /// The whole output array.
  template <class T>
  SliceView<T> output_array() const {
    return output_rows<T>(Slice{0, require_output().rows()});
  }

 private:
  template <class T>
  SliceView<T> output_rows(Slice rows) const {
    return detail::adapt_rows<T>(detail::map_rows(
        require_output(), DType::of<std::remove_const_t<T>>(), rows, output_inode));
  }
  const ArrayInfo& require_output() const;
};

/// CRTP base of worker types: holds the DataIterator of the array the worker reads, and
/// optionally an output array that `process` writes through TaskContext::output<T>().
template <class Derived, element_type T>
class Worker {
 public:
  using element_type = T;

  /// Throws corun::Error (dtype_mismatch) when `data` does not describe an array of T, and
  /// std::invalid_argument when it is malformed.
  explicit Worker(DataIterator data, std::optional<ArrayInfo> output = std::nullopt)
      : data_(std::move(data)), output_(std::move(output)) {
    data_.validate();
    if (data_.data_type != DType::of<T>())
      throw Error(errc::dtype_mismatch, "corun::Worker: array '" + data_.shm_name + "' holds " +
                                            data_.data_type.str() + " but the worker reads " +
                                            DType::of<T>().str());
  }

  const DataIterator& data_iterator() const noexcept { return data_; }
  const std::optional<ArrayInfo>& output() const noexcept { return output_; }

 private:
  DataIterator data_;
  std::optional<ArrayInfo> output_;
};

namespace detail {

template <class W>
concept process_takes_context = requires(SliceView<const typename W::element_type> view,
                                         const TaskContext& ctx) {
  W::process(view, ctx);
};
template <class W>
concept process_takes_slice = requires(SliceView<const typename W::element_type> view) {
  W::process(view);
};

template <class W, bool = process_takes_context<W>>
struct worker_result {
  static_assert(process_takes_slice<W>,
                "a corun worker needs static process(SliceView<const T>) or "
                "static process(SliceView<const T>, const TaskContext&)");
  using type = decltype(W::process(std::declval<SliceView<const typename W::element_type>>()));
};
template <class W>
struct worker_result<W, true> {
  using type = decltype(W::process(std::declval<SliceView<const typename W::element_type>>(),
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

/// Runs W::process on one slice in this process and appends the encoded result to `out`.
using TaskInvoker = void (*)(const TaskContext& ctx, std::string& out);

/// Adds a worker type to this process's registry; aborts with a message when `name` is
/// already taken by another type. Returns true so the macro can initialise a static.
CORUN_API bool register_worker(const char* name, const std::type_info& type, TaskInvoker invoker);
/// The registered name of a type, or nullptr.
CORUN_API const char* registered_name(const std::type_info& type) noexcept;
/// The invoker registered under `name`, or nullptr.
CORUN_API TaskInvoker find_invoker(std::string_view name) noexcept;
/// The name of W, or throws corun::Error (worker_not_registered) naming the type.
CORUN_API const char* require_registered(const std::type_info& type);

template <class W>
void invoke_process(const TaskContext& ctx, std::string& out) {
  using T = typename W::element_type;
  using R = worker_result_t<W>;
  const auto view = ctx.input_rows<const T>(ctx.slice);
  auto call = [&]() -> decltype(auto) {
    if constexpr (process_takes_context<W>)
      return W::process(view, ctx);
    else
      return W::process(view);
  };
  if constexpr (std::is_void_v<R>) {
    call();
  } else {
    static_assert(encodable<std::decay_t<R>>,
                  "the result type of process has no corun::codec: specialise corun::codec<R>");
    codec<std::decay_t<R>>::encode(call(), out);
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
#define CORUN_REGISTER_WORKER(Type)                                                               \
  [[maybe_unused]] static const bool CORUN_DETAIL_CONCAT(corun_registered_worker_, __COUNTER__) = \
      ::corun::detail::register_worker(#Type, typeid(Type),                                       \
                                       &::corun::detail::invoke_process<Type>)
