#pragma once
/// \file
/// WorkerRef, a worker object taking part in a WorkerOrchestrator run (parent side): it keeps the
/// worker's TaskSpec and a type-erased call of its process_callback, checked where the worker's
/// type is still known, so the orchestrator's run itself needs no templates.
/// Side: parent.

#include <corun/detail/config.hpp>

#include <corun/codec.hpp>
#include <corun/data_iterator.hpp>
#include <corun/detail/process_traits.hpp>
#include <corun/detail/task_service.hpp>
#include <corun/slice.hpp>
#include <corun/worker.hpp>

#include <memory>
#include <string>
#include <type_traits>
#include <utility>

namespace corun {

namespace detail {
struct RunAccess;

/// Whether `process_callback` takes the result R of W::process and the task's Slice:
/// `process_callback(R, Slice)` (R by value, const R& or R&&), or `process_callback(Slice)`
/// when R is void.
template <class W, class R>
concept process_callback_takes_slice =
    (std::is_void_v<R> && requires(W & w, const Slice& slice) { w.process_callback(slice); }) ||
    (!std::is_void_v<R> && requires(W & w, std::decay_t<R>&& value, const Slice& slice) {
      w.process_callback(std::move(value), slice);
    });
}  // namespace detail

/// A worker object taking part in a run: any type derived from corun::Worker and registered
/// with CORUN_REGISTER_WORKER. Converts implicitly from a pointer, so `{&add, &concat}` works.
///
/// Its `process_callback`, if it declares one, takes the result R of `process` as R, const R&
/// or R&&, optionally followed by the task's corun::Slice: `process_callback(R)`,
/// `process_callback(R, corun::Slice)`; when `process` returns void, `process_callback()` or
/// `process_callback(corun::Slice)`. Any other signature is a compile error naming these forms.
class WorkerRef {
 public:
  /// Refers to `worker`, which must outlive every run it takes part in. The worker's type,
  /// iterator and params are read now: params changed afterwards are not seen.
  template <class W>
  requires detail::worker_type<W> WorkerRef(W* worker)  // NOLINT: implicit by design
      : object_(worker),
        spec_(detail::make_task_spec(detail::worker_name_of<W>(), worker->data_iterator(),
                                     worker->output(), detail::encoded_params_of(*worker))),
        deliver_(&deliver<W>) {}

  /// The name the worker type is registered under.
  const std::string& name() const noexcept { return spec_->worker_name; }
  /// The slices the worker's `process` runs on.
  const DataIterator& data_iterator() const noexcept { return spec_->iterator; }

 private:
  friend struct detail::RunAccess;

  // The checks are static_asserts of their own (not a silently skipped `if constexpr`), each
  // followed by code that is only instantiated when it passed, so the message is the only error.
  template <class W>
  static void deliver(void* object, const std::string& payload, const Slice& slice) {
    using R = detail::worker_result_t<W>;
    constexpr bool with_slice = detail::process_callback_takes_slice<W, R>;
    constexpr bool accepts = with_slice || detail::process_callback_accepts<W, R>;
    static_assert(accepts || !detail::declares_process_callback<W>,
                  "corun: the worker's process_callback cannot take the result R of its process: "
                  "declare process_callback(R), process_callback(const R&) or "
                  "process_callback(R&&), each optionally followed by corun::Slice, e.g. "
                  "process_callback(R, corun::Slice); or process_callback() or "
                  "process_callback(corun::Slice) when process returns void "
                  "(see the instantiation of WorkerRef::deliver<W> for W)");
    W& w = *static_cast<W*>(object);
    if constexpr (std::is_void_v<R>) {
      if constexpr (with_slice)
        w.process_callback(slice);
      else if constexpr (accepts)
        w.process_callback();
    } else {
      using V = std::decay_t<R>;
      static_assert(std::is_default_constructible_v<V>,
                    "corun: the result type R of a worker's process must be default "
                    "constructible (results are decoded into a value, and async_execute "
                    "completes with R{} beside an error)");
      if constexpr (std::is_default_constructible_v<V>) {
        auto value = codec<V>::decode(payload);
        if constexpr (with_slice)
          w.process_callback(std::move(value), slice);
        else if constexpr (accepts)
          w.process_callback(std::move(value));
      }
    }
  }

  void* object_;
  std::shared_ptr<const detail::TaskSpec> spec_;
  void (*deliver_)(void*, const std::string&, const Slice&);
};

namespace detail {
/// What the orchestrator's run uses of a WorkerRef, and nothing else does.
struct RunAccess {
  static const std::shared_ptr<const TaskSpec>& spec(const WorkerRef& w) { return w.spec_; }
  static void deliver(const WorkerRef& w, const std::string& payload, const Slice& slice) {
    w.deliver_(w.object_, payload, slice);
  }
};
}  // namespace detail

}  // namespace corun
