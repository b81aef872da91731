#pragma once
/// \file
/// The type-erased engine behind async_map, async_imap and async_map_reduce: chunking, the
/// window of chunks in flight, order, failures and cancellation live in lib/front/map_engine.cpp;
/// the templates in corun/map.hpp only encode inputs and decode results.
/// Side: parent.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/cancellation.hpp>
#include <corun/detail/task_service.hpp>
#include <corun/error_policy.hpp>
#include <corun/progress.hpp>
#include <corun/worker.hpp>

#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace corun::detail {

/// What the engine needs of MapOptions, without its Params.
struct MapSettings {
  std::size_t chunk_size = 0;  ///< 0: automatic
  bool ordered = true;
  std::size_t max_tasks_active = 0;
  std::size_t max_bytes_in_flight = std::size_t{64} << 20;
  ErrorPolicy on_error = ErrorPolicy::fail_fast;
  CancelMode on_cancel = CancelMode::drain;
  ProgressBar progress_bar = ProgressBar::off;
  int priority = 0;
  std::shared_ptr<const RetryPolicy> retry;  ///< null: PoolOptions::retries, for chunks only
};

/// The inputs, consumed on the service's strand.
class CORUN_API MapSource {
 public:
  virtual ~MapSource() = default;
  /// Encodes up to `max_items` next inputs into `out`, stopping early once `out` holds
  /// `max_bytes`; returns how many it encoded (0: no inputs are left).
  virtual std::size_t encode_next(std::size_t max_items, std::size_t max_bytes,
                                  std::string& out) = 0;
  /// How many inputs there are in all, when the range knows.
  virtual std::optional<std::size_t> size() const = 0;
};

/// Where results go, on the service's strand.
class CORUN_API MapSink {
 public:
  virtual ~MapSink() = default;
  /// The encoded results of inputs [first, first + count); exceptions end the operation.
  virtual void deliver(std::size_t first, std::size_t count, std::string_view payload) = 0;
  /// Connects the handler's cancellation slot.
  virtual void bind_cancellation(std::function<void(CancelMode)> cancel) = 0;
  /// Completes the operation (exactly once).
  virtual void complete(std::exception_ptr error) = 0;
};

/// Starts one map operation over `service`; `sink` is completed exactly once.
CORUN_API void start_map(const std::shared_ptr<TaskService>& service,
                         std::shared_ptr<const TaskSpec> spec, MapSettings settings,
                         std::unique_ptr<MapSource> source, std::unique_ptr<MapSink> sink);

}  // namespace corun::detail
