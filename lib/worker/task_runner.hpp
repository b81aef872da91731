#pragma once
/// \file
/// Running one task in the current process: keeping the specs the parent sent, calling the
/// registered worker, and producing a complete result frame. Shared by worker processes and
/// the serial pool.
/// Side: worker.

#include "protocol/protocol.hpp"
#include "seam/spec_codec.hpp"
#include "worker/state_shelf.hpp"

#include <corun/data_iterator.hpp>
#include <corun/map_with_state.hpp>
#include <corun/worker.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace corun::detail {

/// Runs task `task_id` over `slice` and appends a whole result frame (header included) to
/// `out`. Never throws for task failures: they become exception or protocol results. `cache`
/// is what this process keeps for the spec (decoded params, state).
void run_task(std::uint64_t task_id, Slice slice, std::string_view argument,
              const DecodedSpec& spec, SpecCache& cache, int worker_id,
              std::size_t max_result_bytes, std::string& out);

/// The specs a worker holds (the parent sends each once, then names it by id), and running
/// task messages against them. Shared by worker processes and the serial pool.
class TaskRunner {
 public:
  TaskRunner(int worker_id, std::size_t max_result_bytes)
      : worker_id_(worker_id), max_result_bytes_(max_result_bytes), shelf_(kMapStatesPerWorker) {}
  TaskRunner(const TaskRunner&) = delete;
  TaskRunner& operator=(const TaskRunner&) = delete;

  /// A spec message body: keeps the spec under its id, replacing (and forgetting) one it had.
  /// A malformed spec is kept as its error, which each of its tasks reports. Throws
  /// std::invalid_argument for a malformed message, or beyond proto::kMaxSpecsAtWorker specs.
  void define(std::string_view spec_body);
  /// The serial pool's path: a spec made in this process, not encoded.
  void define(std::uint64_t spec_id, DecodedSpec spec);
  /// Runs the spec's worker_exit (if its init ran) and drops it; unknown ids are ignored.
  void forget(std::uint64_t spec_id);
  /// Forgets every spec, oldest first, then the map states (before the process exits): their
  /// exit hooks run.
  void forget_all();
  std::size_t specs() const noexcept { return specs_.size(); }

  /// Runs a task message body (task id, slice, spec id, argument) as run_task does; a task of
  /// a spec it does not hold fails as a protocol error. Throws std::invalid_argument for a
  /// malformed body.
  void run(std::string_view task_body, std::string& out);
  void run(const proto::Task& task, std::string& out);

 private:
  struct Entry {
    std::optional<DecodedSpec> spec;
    std::string error;  // why the spec could not be decoded
    SpecCache cache;
  };
  void store(std::uint64_t spec_id, Entry entry);

  int worker_id_;
  std::size_t max_result_bytes_;
  std::map<std::uint64_t, Entry> specs_;  // ids grow: oldest first
  StateShelf shelf_;                      // the map states, which outlive their specs
};

}  // namespace corun::detail
