#pragma once
/// \file
/// Adapters from Asio completion handlers to the TaskService seam: keep the handler's executor
/// busy until it runs, connect its cancellation slot, invoke it on its associated executor.
/// Side: parent.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/cancellation.hpp>
#include <corun/codec.hpp>
#include <corun/detail/task_service.hpp>

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/dispatch.hpp>
#include <asio/executor_work_guard.hpp>

#include <cstdint>
#include <exception>
#include <memory>
#include <type_traits>
#include <utility>

namespace corun::detail {

/// Owns a completion handler until it runs: keeps its executor busy meanwhile, connects its
/// cancellation slot, and invokes it on its associated executor.
template <class Handler>
class HandlerHolder {
 public:
  HandlerHolder(Handler handler, const asio::any_io_executor& fallback)
      : handler_(std::move(handler)), work_(asio::get_associated_executor(handler_, fallback)) {}

  /// Calls `on_cancel(CancelMode)` when the handler's cancellation slot is emitted.
  template <class OnCancel>
  void on_cancellation(OnCancel on_cancel) {
    auto slot = asio::get_associated_cancellation_slot(handler_);
    if (!slot.is_connected()) return;
    slot.assign([on_cancel = std::move(on_cancel)](asio::cancellation_type type) mutable {
      on_cancel(cancel_mode_of(type));
    });
  }

  template <class... Args>
  void invoke(Args... args) {
    auto slot = asio::get_associated_cancellation_slot(handler_);
    if (slot.is_connected()) slot.clear();
    asio::dispatch(work_.get_executor(),
                   [h = std::move(handler_), ... a = std::move(args)]() mutable {
                     std::move(h)(std::move(a)...);
                   });
    work_.reset();
  }

 private:
  Handler handler_;
  asio::executor_work_guard<asio::associated_executor_t<Handler, asio::any_io_executor>> work_;
};

/// The completion signature of an operation whose value is R.
template <class R>
struct value_signature {
  using type = void(std::exception_ptr, R);
};
template <>
struct value_signature<void> {
  using type = void(std::exception_ptr);
};

/// Adapts a handler of signature void(std::exception_ptr[, R]) to TaskCompletion, decoding the
/// payload as R.
template <class R, class Handler>
class HandlerCompletion final : public TaskCompletion {
 public:
  HandlerCompletion(Handler handler, std::shared_ptr<TaskService> service)
      : holder_(std::move(handler), service->executor()), service_(std::move(service)) {}

  /// Cancels task `task_id` when the handler's cancellation slot is emitted.
  void bind_cancellation(std::uint64_t task_id) {
    holder_.on_cancellation([service = service_, task_id](CancelMode mode) {
      asio::dispatch(service->executor(),
                     [service, task_id, mode] { service->cancel(task_id, mode); });
    });
  }

  void complete(TaskResult&& result) override {
    std::exception_ptr error = std::move(result.error);
    if constexpr (std::is_void_v<R>) {
      holder_.invoke(error);
    } else {
      R value{};
      if (!error) {
        try {
          value = codec<R>::decode(result.payload);
        } catch (...) {
          error = std::current_exception();
        }
      }
      holder_.invoke(error, std::move(value));
    }
  }

 private:
  HandlerHolder<Handler> holder_;
  std::shared_ptr<TaskService> service_;
};

/// Submits one task on the service's strand and completes `handler` with its decoded result.
template <class R, class Handler>
void start_task(std::shared_ptr<TaskService> service, std::shared_ptr<const TaskSpec> spec,
                Slice slice, Handler&& handler) {
  auto done = std::make_unique<HandlerCompletion<R, std::decay_t<Handler>>>(
      std::forward<Handler>(handler), service);
  auto* raw = done.get();
  auto executor = service->executor();
  asio::dispatch(executor, [service = std::move(service), spec = std::move(spec), slice,
                            done = std::move(done), raw]() mutable {
    const std::uint64_t id =
        service->submit(std::move(spec), slice, {}, TaskOptions{}, std::move(done));
    if (id != 0) raw->bind_cancellation(id);
  });
}

}  // namespace corun::detail
