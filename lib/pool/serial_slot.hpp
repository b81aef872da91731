#pragma once
/// \file
/// SerialSlot: the worker slot of a serial pool, running tasks one per handler in this process.
/// Side: parent.

#include "pool/spec_book.hpp"
#include "pool/worker_slot.hpp"
#include "worker/task_runner.hpp"

#include <corun/pool.hpp>

#include <asio/any_io_executor.hpp>

#include <cstddef>
#include <memory>
#include <string>

namespace corun::detail {

class SerialSlot final : public WorkerSlot, public std::enable_shared_from_this<SerialSlot> {
 public:
  SerialSlot(int index, SlotEvents& events, const asio::any_io_executor& strand,
             const PoolOptions& options);

  void start() override;
  void run(SlotTask task) override;
  /// A task in this process cannot be killed: it is drained.
  bool kill_running(std::uint64_t) override { return false; }
  void stop() override;
  void detach() noexcept override { forget_events(); }

 private:
  void schedule();
  void run_front();
  /// Ends the slot from a fresh handler.
  void end_later(EndReason reason, std::string detail);

  asio::any_io_executor strand_;
  const PoolOptions& options_;
  bool scheduled_ = false;
  std::string frame_;
  SpecBook specs_;
  TaskRunner runner_;
};

}  // namespace corun::detail
