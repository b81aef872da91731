#pragma once
/// \file
/// ProcessSlot: a worker slot backed by a worker process: launch, handshake, tasks over its
/// ParentChannel, its captured output, timeouts, and why it ended.
/// Side: parent.

#include "pool/child_process.hpp"
#include "pool/launcher.hpp"
#include "pool/output_reader.hpp"
#include "pool/parent_channel.hpp"
#include "pool/spec_book.hpp"
#include "pool/worker_slot.hpp"
#include "seam/worker_timeline.hpp"

#include <corun/worker_output.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace corun::detail {

/// What every process slot of a pool shares.
struct ProcessSlotConfig {
  LaunchMethod method = LaunchMethod::spawn;
  std::vector<std::string> argv;  ///< for spawn
  std::chrono::milliseconds handshake_timeout{1000};
  std::chrono::milliseconds task_timeout{0};
  std::uint64_t max_result_bytes = 0;
  proto::FunctionRef worker_init, worker_exit;
  std::vector<std::string> cpu_binding;  ///< per slot index (modulo), empty: no pinning
  bool cpu_binding_required = false;     ///< PoolOptions::cpu_sets: a binding that fails is fatal
  std::uint64_t memory_limit = 0;        ///< PoolOptions::worker_memory_limit
  std::uint64_t max_rss = 0;             ///< PoolOptions::worker_max_rss
  std::chrono::milliseconds init_timeout{0};  ///< PoolOptions::worker_init_timeout, 0: none
  std::chrono::milliseconds exit_timeout{0};  ///< PoolOptions::worker_exit_timeout, 0: none
  std::chrono::nanoseconds spin{0};           ///< PoolOptions::wait's budget; 0: no rings, blocking
  bool spin_yields = false;                   ///< fewer cores than spinners: yield at each look
  ChildRegistry* children = nullptr;
  WorkerTimeline* timeline = nullptr;  ///< told when a worker is launched and says hello
  /// PoolOptions::worker_output; null: workers inherit the parent's stdout and stderr.
  std::shared_ptr<const WorkerOutputHandler> output;
};

/// Launches a worker and adds it to config.children; throws std::system_error naming the step
/// that failed, or std::runtime_error once the pool was terminated.
LaunchedWorker launch_and_register(const ProcessSlotConfig& config);

class ProcessSlot final : public WorkerSlot,
                          public ParentChannel::Listener,
                          public OutputReader::Listener,
                          public std::enable_shared_from_this<ProcessSlot> {
 public:
  ProcessSlot(int index, SlotEvents& events, const asio::any_io_executor& strand,
              const ProcessSlotConfig& config);
  ~ProcessSlot() override;

  /// Starts with a process launched beforehand (by the pool's constructor), instead of
  /// launching one.
  void adopt(LaunchedWorker launched) { prelaunched_ = std::move(launched); }
  void start() override;
  void run(SlotTask task) override;
  bool kill_running(std::uint64_t id) override;
  void stop() override;
  void detach() noexcept override;

 private:
  void on_frame(proto::Kind kind, std::string_view body) override;
  void on_channel_closed(bool violation, const std::string& why) override;
  void on_output_closed() override;

  void on_result(std::string_view body);
  /// Kills the process for `reason` (the first reason given is the one reported).
  void kill_for(EndReason reason, std::string detail = {});
  /// Starts the running task's clock (the worker said it began).
  void arm_task_timeout();
  /// Kills the worker if it is still in `state` after `timeout` (0: never), for `reason`.
  void arm_deadline(SlotState state, std::chrono::milliseconds timeout, EndReason reason,
                    std::string detail);
  void on_process_exit();
  /// The process has ended: finish once the channel and the output streams have delivered
  /// what it wrote; after handshake_timeout, once the pipes hold no byte from before its end
  /// (a process it started may hold them open).
  void finish_when_drained();
  /// Whether the output readers have yet to read bytes that were in the pipes at the exit.
  bool output_behind() const noexcept;
  /// Reaps the process and tells the pool how the slot ended.
  void finish();

  asio::any_io_executor strand_;
  const ProcessSlotConfig& config_;
  std::optional<LaunchedWorker> prelaunched_;
  std::shared_ptr<ChildProcess> process_;
  std::shared_ptr<ParentChannel> channel_;
  std::array<std::shared_ptr<OutputReader>, 2> outputs_;  // stdout, stderr: when captured
  std::size_t outputs_open_ = 0;
  std::array<std::uint64_t, 2> output_at_exit_{};  // bytes read + waiting when it ended
  asio::posix::stream_descriptor pidfd_;
  // The handshake deadline, worker_init's, the running task's timeout, the exit deadline.
  asio::steady_timer timer_;
  SpecBook specs_;  // what the worker process holds
  std::optional<EndReason> reason_;
  std::string detail_;
  bool had_started_ = false;
  bool channel_closed_ = false;
  bool process_exited_ = false;
};

}  // namespace corun::detail
