/// \file
/// ProcessPool: validates its options, builds the PoolCore, and forwards to it.
/// Side: parent.
#include <corun/pool.hpp>

#include <corun/cpu_topology.hpp>
#include <corun/diagnostics.hpp>

#include "machine/cpu_topology.hpp"
#include "pool/pool_core.hpp"
#include "protocol/protocol.hpp"
#include "worker/worker_process.hpp"

#include <asio/dispatch.hpp>

#include <unistd.h>
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace corun {

namespace {
std::string pu_numbers(const std::vector<int>& pus) {
  std::string text;
  for (const int pu : pus) {
    if (!text.empty()) text += ", ";
    text += std::to_string(pu);
  }
  return text;
}

std::string set_text(const std::vector<unsigned>& set) {
  std::string text = "{";
  for (const unsigned pu : set) text += (text.size() > 1 ? ", " : "") + std::to_string(pu);
  return text + "}";
}

void validate_cpu_sets(const PoolOptions& options) {
  const auto& sets = options.cpu_sets;
  if (sets.empty()) return;
  if (options.cpu_pinning)
    throw std::invalid_argument(
        "corun::PoolOptions::cpu_sets and cpu_pinning = true: give one or the other (cpu_sets "
        "binds each worker to the PUs it names, cpu_pinning worker i to core i)");
  if (sets.size() != 1 && sets.size() != options.workers)
    throw std::invalid_argument("corun::PoolOptions::cpu_sets has " + std::to_string(sets.size()) +
                                " entries for " + std::to_string(options.workers) +
                                " workers: give one entry (for every worker) or one per worker");
  const std::vector<int>& pus = CpuTopology::local().pu_os_index;
  for (std::size_t i = 0; i < sets.size(); ++i) {
    if (sets[i].empty())
      throw std::invalid_argument("corun::PoolOptions::cpu_sets[" + std::to_string(i) +
                                  "] is empty: name at least one PU");
    for (const unsigned pu : sets[i])
      if (std::find(pus.begin(), pus.end(), static_cast<int>(pu)) == pus.end())
        throw std::invalid_argument(
            "corun::PoolOptions::cpu_sets[" + std::to_string(i) + "] = " + set_text(sets[i]) +
            " names PU " + std::to_string(pu) + ", which this machine does not have: it has " +
            std::to_string(pus.size()) + " PUs (hwloc), numbered " + pu_numbers(pus));
  }
}

PoolOptions validated(PoolOptions options) {
  if (options.workers == 0) options.workers = detail::physical_core_count();
  if (options.start_method == StartMethod::serial) options.workers = 1;
  if (options.pipeline_depth == 0)
    throw std::invalid_argument("corun::PoolOptions::pipeline_depth = 0: must be at least 1");
  if (options.max_pipeline_depth < options.pipeline_depth)
    throw std::invalid_argument(
        "corun::PoolOptions::max_pipeline_depth = " + std::to_string(options.max_pipeline_depth) +
        ": must be at least pipeline_depth (" + std::to_string(options.pipeline_depth) + ")");
  if (options.max_tasks_active == 0)
    options.max_tasks_active = 2 * options.workers * options.max_pipeline_depth;
  if (options.task_timeout.count() < 0)
    throw std::invalid_argument(
        "corun::PoolOptions::task_timeout = " + std::to_string(options.task_timeout.count()) +
        " ms: must not be negative");
  // SIZE_MAX asks for no limit: the largest result a frame carries.
  if (options.max_result_bytes == SIZE_MAX)
    options.max_result_bytes = detail::proto::kMaxResultBytes;
  if (options.max_result_bytes > detail::proto::kMaxResultBytes)
    throw std::invalid_argument(
        "corun::PoolOptions::max_result_bytes = " + std::to_string(options.max_result_bytes) +
        ": a result frame carries at most " + std::to_string(detail::proto::kMaxResultBytes) +
        " bytes; give that or less (or SIZE_MAX, which means that largest "
        "size)");
  if (options.start_attempts == 0)
    throw std::invalid_argument("corun::PoolOptions::start_attempts = 0: must be at least 1");
  for (const auto& [name, timeout] :
       {std::pair{"worker_init_timeout", options.worker_init_timeout},
        std::pair{"worker_exit_timeout", options.worker_exit_timeout}})
    if (timeout.count() < 0)
      throw std::invalid_argument(std::string("corun::PoolOptions::") + name + " = " +
                                  std::to_string(timeout.count()) +
                                  " ms: must not be negative (0 means no limit)");
  validate_cpu_sets(options);
  if (options.wait.spin_for.count() < 0)
    throw std::invalid_argument("corun::PoolOptions::wait = WaitMode::spin(" +
                                std::to_string(options.wait.spin_for.count()) +
                                " ns): the budget must not be negative (0 means blocking)");
  return options;
}
/// A spawned worker whose main() never called enter_worker_if_spawned reaches here: it must
/// not start a pool of its own (and so on, recursively).
void refuse_in_spawned_worker() {
  const char* fd = std::getenv(detail::kWorkerFdEnv);
  if (fd == nullptr) return;
  detail::diagnose("corun: process " + std::to_string(::getpid()) +
                   " was started as a pool worker (" + detail::kWorkerFdEnv + "=" + fd +
                   ") but main() did not call corun::enter_worker_if_spawned(argc, argv) before "
                   "creating a ProcessPool");
  ::_exit(3);
}
}  // namespace

ProcessPool::ProcessPool(executor_type executor, PoolOptions options)
    : executor_(executor), options_(validated(std::move(options))) {
  refuse_in_spawned_worker();
  core_ = std::make_shared<detail::PoolCore>(executor_, options_);
  service_ = core_;
  // Workers start from the strand, so that no handler of the pool can run before they exist.
  asio::dispatch(core_->executor(), [core = core_] { core->start(); });
}

ProcessPool::~ProcessPool() {
  terminate();
}

std::vector<pid_t> ProcessPool::worker_pids() const {
  return core_->worker_pids();
}

PoolHealth ProcessPool::health() const {
  return core_->health();
}

void ProcessPool::terminate() noexcept {
  core_->terminate();
}

void ProcessPool::wait_ready(const std::shared_ptr<detail::PoolCore>& core,
                             std::unique_ptr<detail::TaskCompletion> done) {
  asio::dispatch(core->executor(),
                 [core, done = std::move(done)]() mutable { core->wait_ready(std::move(done)); });
}

void ProcessPool::shutdown(const std::shared_ptr<detail::PoolCore>& core,
                           std::unique_ptr<detail::TaskCompletion> done) {
  asio::dispatch(core->executor(),
                 [core, done = std::move(done)]() mutable { core->shutdown(std::move(done)); });
}

}  // namespace corun
