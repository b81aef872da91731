#pragma once
/// \file
/// CancelMode: what cancelling an operation does with the tasks already at a worker.
/// Side: parent.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <asio/cancellation_type.hpp>

namespace corun {

/// What happens to tasks already running when their operation is cancelled.
enum class CancelMode {
  drain,  ///< let them finish, discard their results
  kill,   ///< kill their worker processes (they are replaced)
};

namespace detail {
/// `cancellation_type::terminal` kills; the other types drain.
inline CancelMode cancel_mode_of(asio::cancellation_type type) noexcept {
  return (type & asio::cancellation_type::terminal) != asio::cancellation_type::none
             ? CancelMode::kill
             : CancelMode::drain;
}
}  // namespace detail

}  // namespace corun
