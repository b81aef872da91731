/// \file
/// Starting the local pool's worker slots, in the parent process: the processes launched
/// ahead, a fresh slot per start, and the backoff after a failed start.
/// Side: parent.
#include "pool/slot_starter.hpp"

#include "machine/cpu_topology.hpp"
#include "pool/serial_slot.hpp"

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>
#include <utility>

namespace corun::detail {

namespace {
using Clock = std::chrono::steady_clock;

std::vector<std::string> cpu_bindings(const PoolOptions& options) {
  std::vector<std::string> lists;
  // Validated by the ProcessPool: one set for all, or one per worker (a slot takes its index
  // modulo the count).
  for (const auto& set : options.cpu_sets) {
    std::string list;
    for (const unsigned pu : set) {
      // Appended piecewise: `"," + std::to_string(pu)` trips GCC 12's -Wrestrict at -O3.
      if (!list.empty()) list += ',';
      list += std::to_string(pu);
    }
    lists.push_back(std::move(list));
  }
  if (!options.cpu_pinning) return lists;
  for (const auto& core : core_pus()) {
    std::string list;
    for (int pu : core) {
      if (!list.empty()) list += ',';
      list += std::to_string(pu);
    }
    lists.push_back(std::move(list));
  }
  return lists;
}
}  // namespace

SlotStarter::SlotStarter(const asio::any_io_executor& strand, const PoolOptions& options,
                         SlotEvents& events, ChildRegistry& children, WorkerTimeline& timeline)
    : strand_(strand), options_(options), events_(events), timeline_(timeline) {
  if (options_.start_method != StartMethod::serial) {
    slot_config_.method =
        options_.start_method == StartMethod::fork ? LaunchMethod::fork : LaunchMethod::spawn;
    if (slot_config_.method == LaunchMethod::spawn) slot_config_.argv = program_arguments();
    slot_config_.handshake_timeout = options_.handshake_timeout;
    slot_config_.task_timeout = options_.task_timeout;
    slot_config_.max_result_bytes = options_.max_result_bytes;
    slot_config_.worker_init =
        proto::function_ref(reinterpret_cast<const void*>(options_.worker_init));
    slot_config_.worker_exit =
        proto::function_ref(reinterpret_cast<const void*>(options_.worker_exit));
    slot_config_.cpu_binding = cpu_bindings(options_);
    slot_config_.cpu_binding_required = !options_.cpu_sets.empty();
    slot_config_.memory_limit = options_.worker_memory_limit;
    slot_config_.max_rss = options_.worker_max_rss;
    slot_config_.init_timeout = options_.worker_init_timeout;
    slot_config_.exit_timeout = options_.worker_exit_timeout;
    slot_config_.spin = options_.wait.spin_for;
    // Workers and the parent all spin while tasks flow: with fewer cores than that, each look
    // must give the core away rather than keep it from a process with work.
    slot_config_.spin_yields = std::thread::hardware_concurrency() < options_.workers + 1;
    slot_config_.children = &children;
    slot_config_.timeline = &timeline_;
    // One handler for every worker, shared by their readers (a copy each would split its state).
    if (options_.worker_output)
      slot_config_.output = std::make_shared<const WorkerOutputHandler>(options_.worker_output);
  }
  prelaunched_.resize(options_.workers);
  for (std::size_t i = 0; i < options_.workers; ++i) {
    restart_timers_.push_back(std::make_unique<asio::steady_timer>(strand_));
    // A worker that cannot be launched now is launched again when its slot starts, which
    // reports why.
    if (options_.start_method != StartMethod::serial) try {
        prelaunched_[i] = launch_and_register(slot_config_);
      } catch (const std::exception&) {
      }
  }
}

std::shared_ptr<WorkerSlot> SlotStarter::make(int index) {
  if (options_.start_method == StartMethod::serial)
    return std::make_shared<SerialSlot>(index, events_, strand_, options_);
  auto slot = std::make_shared<ProcessSlot>(index, events_, strand_, slot_config_);
  if (auto& launched = prelaunched_[static_cast<std::size_t>(index)]) {
    slot->adopt(std::move(*launched));
    launched.reset();
  }
  return slot;
}

void SlotStarter::start(WorkerSlot& slot) {
  const auto began = Clock::now();
  slot.start();
  // A serial slot is this process: it starts (and says hello) at once.
  if (options_.start_method == StartMethod::serial) {
    timeline_.launched(slot.pid(), began);
    timeline_.hello(slot.pid(), slot.index(), began);
  }
}

bool SlotStarter::failed() noexcept {
  ++failed_starts_;
  return failed_starts_ < options_.start_attempts;
}

std::string SlotStarter::give_up_message(const std::string& why) const {
  return why + " (" + std::to_string(failed_starts_) +
         " consecutive worker starts failed; the pool gives up)";
}

std::string SlotStarter::start_failure(const WorkerSlot& slot, const SlotEnd& end) const {
  std::string m = "corun: worker process " + std::to_string(slot.pid()) + " (slot " +
                  std::to_string(slot.index()) + ") ";
  m += end.detail.empty() ? describe_wait_status(end.wait_status) : end.detail;
  if (end.was == SlotState::starting && options_.start_method == StartMethod::spawn &&
      end.reason != EndReason::launch_failed)
    m += " before reporting to the pool: does main() call "
         "corun::enter_worker_if_spawned(argc, argv) before anything else?";
  return m;
}

void SlotStarter::restart_later(int index, std::function<void()> restart) {
  const auto backoff =
      std::chrono::milliseconds(std::min(10 << std::min(failed_starts_ - 1, 7u), 1000));
  auto& timer = *restart_timers_[static_cast<std::size_t>(index)];
  timer.expires_after(backoff);
  timer.async_wait([restart = std::move(restart)](std::error_code ec) {
    if (!ec) restart();
  });
}

void SlotStarter::cancel_restarts() {
  for (auto& timer : restart_timers_) timer->cancel();
}

}  // namespace corun::detail
