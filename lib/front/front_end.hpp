#pragma once
/// \file
/// What the front-ends of a TaskService (an orchestrator's run, an async_map) share: the tasks
/// they have at the service, cancelled together, how a run stops and with which error, what a
/// failure of the service itself means for them, and how a handler's cancellation reaches them.
/// Side: parent.

#include <corun/cancellation.hpp>
#include <corun/detail/task_service.hpp>
#include <corun/error.hpp>

#include <asio/dispatch.hpp>

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace corun::detail {

/// The ids of the tasks a front-end submitted and has not heard back from.
class OutstandingTasks {
 public:
  /// Id 0 (the service refused the task and completes it itself) is not kept.
  void add(std::uint64_t id) {
    if (id != 0) ids_.insert(id);
  }
  void remove(std::uint64_t id) { ids_.erase(id); }
  /// Cancels every one of them; the service completes each (maybe at once, which may remove it).
  void cancel_all(TaskService& service, CancelMode mode) const {
    const std::vector<std::uint64_t> ids(ids_.begin(), ids_.end());
    for (std::uint64_t id : ids) service.cancel(id, mode);
  }

 private:
  std::unordered_set<std::uint64_t> ids_;
};

/// How a front-end's run stops: on a cancellation (kill or drain) or on its first fatal error (a
/// drain). Once stopping it sends no more tasks, and cancels those it has at the service.
class RunStop {
 public:
  bool stopping() const noexcept { return stopping_; }
  /// Starts stopping with `mode`: false when a drain was under way already and `mode` is a drain
  /// too (a kill still escalates it); when true, the caller cancels its outstanding tasks.
  bool begin(CancelMode mode) noexcept {
    if (stopping_ && mode == CancelMode::drain) return false;
    stopping_ = true;
    return true;
  }
  void note_cancelled() noexcept { cancelled_ = true; }
  /// Keeps the first fatal error; the caller then stops with a drain.
  void note_fatal(std::exception_ptr e) noexcept {
    if (!fatal_) fatal_ = std::move(e);
  }
  /// What the run completes with before its tasks' own failures count: aborted when it was
  /// cancelled, else its fatal error, else null.
  std::exception_ptr error() const { return cancelled_ ? aborted_error() : fatal_; }

 private:
  bool stopping_ = false;
  bool cancelled_ = false;
  std::exception_ptr fatal_;
};

/// The error that ends a front-end's `operation` ("run", "map") when one of its tasks failed
/// with `error` and no TaskError, i.e. the service failed, closed or was terminated under it;
/// null when the task was only aborted because the front-end is stopping.
inline std::exception_ptr service_failure(const RunStop& stop, const std::exception_ptr& error,
                                          std::string_view operation) {
  if (!is_aborted(error)) return error;
  if (stop.stopping()) return nullptr;
  return std::make_exception_ptr(
      Error(errc::pool_closed,
            "corun: the process pool was terminated during the " + std::string(operation)));
}

/// A handler's cancellation, forwarded to `front_end->cancel(mode)` on `executor` while the
/// front-end lives: `terminal` (CancelMode::kill) always kills, other types use `configured`.
/// Bound at initiation, so a cancellation emitted before the front-end reaches the strand is
/// not lost.
template <class FrontEnd>
std::function<void(CancelMode)> forward_cancellation(std::weak_ptr<FrontEnd> front_end,
                                                     asio::any_io_executor executor,
                                                     CancelMode configured) {
  return [front_end = std::move(front_end), executor = std::move(executor),
          configured](CancelMode requested) {
    const CancelMode mode = requested == CancelMode::kill ? CancelMode::kill : configured;
    asio::dispatch(executor, [front_end, mode] {
      if (auto self = front_end.lock()) self->cancel(mode);
    });
  };
}

}  // namespace corun::detail
