#pragma once
/// \file
/// The type-erased engine behind async_map, async_imap and async_map_reduce: chunking, the
/// window of chunks in flight, order, failures and cancellation live in lib/map_engine.cpp;
/// the templates in corun/map.hpp only encode inputs and decode results.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/cancellation.hpp>
#include <corun/detail/task_service.hpp>
#include <corun/error_policy.hpp>
#include <corun/progress.hpp>
#include <corun/worker.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <typeinfo>

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

/// Why a map chunk's reply holds fewer results than the chunk had inputs.
enum class ChunkStop : std::uint8_t {
  complete,       ///< every input was mapped
  input_failed,   ///< the input after the last mapped one threw; the reply says what
  result_budget,  ///< the next result would have made the reply larger than max_result_bytes
};

/// How a map chunk's reply ends, after its results: a worker maps a chunk's inputs up to the
/// first one that fails or whose result would not fit, and the parent sends the rest again, so
/// no input is lost with its chunk.
struct ChunkEnd {
  std::size_t done = 0;      ///< inputs mapped, from the chunk's first
  std::size_t consumed = 0;  ///< argument bytes of the inputs accounted for (mapped or failed)
  ChunkStop stop = ChunkStop::complete;
  std::string failure_type;     ///< input_failed: the exception's type...
  std::string failure_message;  ///< ...and its what()
};
/// Appends `end` to a reply whose results start at `results_at` in `out`.
CORUN_API void append_chunk_end(std::string& out, std::size_t results_at, const ChunkEnd& end);
/// The results of `reply`, with its end in `end`; throws std::invalid_argument when malformed.
CORUN_API std::string_view split_chunk_reply(std::string_view reply, ChunkEnd& end);
/// The bytes a reply's end takes besides the failure's texts.
inline constexpr std::size_t kChunkEndBytes = 3 * sizeof(std::uint64_t) + 1;

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

/// The type and what() of the exception being handled (call it in a catch block): "unknown"
/// and a sentence saying so when it is not a std::exception.
CORUN_API void describe_current_exception(std::string& type, std::string& message);

/// Thrown by a reduction's invoker when the reduction itself throws while folding one input's
/// result (the chunk's partial is gone with it): the task fails with the original exception's
/// type and a message that names the input's index.
class CORUN_API ItemFailure : public std::runtime_error {
 public:
  ItemFailure(std::size_t index, std::string type_name, const std::string& what);
  std::size_t index() const noexcept { return index_; }
  const std::string& type_name() const noexcept { return type_name_; }

 private:
  std::size_t index_;
  std::string type_name_;
};

/// Registers a map function's invoker under the readable name of `type` (the class template
/// specialisation that holds it), in this process; returns that name.
CORUN_API const char* register_function(const std::type_info& type, TaskInvoker invoker);

}  // namespace corun::detail
