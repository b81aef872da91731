/// \file
/// Names of slot states and end reasons, for messages and logs.
#include "worker_slot.hpp"

namespace corun::detail {

const char* to_string(SlotState state) noexcept {
  switch (state) {
    case SlotState::starting:
      return "starting";
    case SlotState::initializing:
      return "initializing";
    case SlotState::ready:
      return "ready";
    case SlotState::busy:
      return "busy";
    case SlotState::stopping:
      return "stopping";
    case SlotState::ended:
      return "ended";
  }
  return "unknown";
}

const char* to_string(EndReason reason) noexcept {
  switch (reason) {
    case EndReason::exited:
      return "exited";
    case EndReason::crashed:
      return "crashed";
    case EndReason::killed:
      return "killed";
    case EndReason::timed_out:
      return "timed out";
    case EndReason::handshake_timeout:
      return "handshake timeout";
    case EndReason::init_failed:
      return "worker_init failed";
    case EndReason::protocol_violation:
      return "protocol violation";
    case EndReason::launch_failed:
      return "launch failed";
  }
  return "unknown";
}

}  // namespace corun::detail
