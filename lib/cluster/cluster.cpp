/// \file
/// Cluster (MPI's life in this process, serve()) and the state every rank shares.
/// Side: every rank.
#include "cluster/cluster_state.hpp"

#include "cluster/rank_server.hpp"

#include <corun/diagnostics.hpp>
#include <corun/error.hpp>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>

#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace corun {

namespace detail {

namespace {
std::atomic<bool> g_cluster_made{false};

/// What `mpirun --enable-recovery` tells its ranks (Open MPI 4.1); a job launched without it
/// ends when one rank dies, whatever the survivors do.
bool launched_with_recovery() {
  const char* recovery = std::getenv("OMPI_MCA_orte_enable_recovery");
  return recovery != nullptr &&
         (std::string_view(recovery) == "1" || std::string_view(recovery) == "true");
}
}  // namespace

// ---- the state of one rank ----

ClusterState::ClusterState(int& argc, char**& argv, ClusterOptions options)
    : link_(argc, argv,
            {options.max_poll_interval, options.heartbeat_interval, options.failure_timeout}),
      options_(std::move(options)),
      peers_(static_cast<std::size_t>(link_.size()), PeerState::serving) {
  recovery_enabled_ = launched_with_recovery();
}

void ClusterState::add(std::shared_ptr<const DistributedBlocks> blocks, ArrayInfo local) {
  std::lock_guard lock(mutex_);
  const std::string name = blocks->global().name;
  arrays_[name] = Registered{std::move(blocks), std::move(local)};
}

void ClusterState::remove(const std::string& global_name) noexcept {
  std::lock_guard lock(mutex_);
  arrays_.erase(global_name);
}

std::optional<ClusterState::Registered> ClusterState::find(const std::string& name) const {
  std::lock_guard lock(mutex_);
  const auto it = arrays_.find(name);
  if (it == arrays_.end()) return std::nullopt;
  return it->second;
}

LocalSpec ClusterState::translate(const DecodedSpec& global) const {
  LocalSpec out;
  if (!global.reads_array) {  // an async_map function: its inputs travel with each task
    try {
      out.spec = make_function_spec(global.worker_name, global.params);
    } catch (const std::exception& e) {
      out.error = e.what();
    }
    return out;
  }
  const auto input = find(global.iterator.shm_name);
  if (!input && rank() != 0) {
    out.error = "array '" + global.iterator.shm_name + "' is not a DistributedArray of this " +
                "cluster, and a plain SharedArray exists on rank 0 only";
    return out;
  }
  DataIterator iterator = global.iterator;
  if (input) {
    iterator = DataIterator::over(input->local, 1);
    out.blocks = input->blocks;
  }
  std::optional<ArrayInfo> output = global.output;
  if (output) {
    const auto found = find(output->name);
    if (found) {
      if (!input || found->blocks->map() != input->blocks->map()) {
        out.error = "output array '" + output->name +
                    "' is distributed differently from the input array '" +
                    global.iterator.shm_name + "': give both the same rows and BlockLayout";
        return out;
      }
      output = found->local;
    } else if (input) {
      out.error = "output array '" + output->name +
                  "' is a plain SharedArray (it exists on rank 0 only) but the input is " +
                  "distributed: make the output a DistributedArray of the same layout";
      return out;
    }
  }
  try {
    std::optional<BlockMap> rows_in_array;  // lets TaskContext::slice count rows of the array
    if (input) rows_in_array = input->blocks->map();
    out.spec = make_task_spec(global.worker_name, std::move(iterator), std::move(output),
                              global.params, rows_in_array);
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  return out;
}

void ClusterState::gather_pool_shapes(PoolShape mine) {
  std::vector<PoolShape> all(static_cast<std::size_t>(size()));
  static_assert(sizeof(PoolShape) == 2 * sizeof(std::uint64_t));
  link_.call([&] {
    MPI_Request request;
    MPI_Iallgather(&mine, 2, MPI_UINT64_T, all.data(), 2, MPI_UINT64_T, link_.collective_comm(),
                   &request);
    link_.wait(request);
  });
  // Ranks other than 0 give 0 workers when their pool could not be made; that rank throws its
  // own error.
  for (std::size_t r = 1; r < all.size(); ++r)
    if (all[r].workers == 0 && static_cast<int>(r) != rank())
      throw Error(errc::worker_start_failed,
                  "corun::Cluster::serve: rank " + std::to_string(r) +
                      " could not make its ProcessPool (its own error says why), so no rank "
                      "serves");
  pool_shapes_ = std::move(all);
}

void ClusterState::set_sink(std::weak_ptr<BatchSink> sink) {
  std::lock_guard lock(sink_mutex_);
  sink_ = std::move(sink);
}

void ClusterState::deliver_lost(int peer) {
  std::lock_guard lock(sink_mutex_);
  if (const auto sink = sink_.lock()) sink->lost(peer);
}

void ClusterState::deliver(int peer, std::string batch) {
  bool bye = false;
  for_each_frame(batch, [&](FrameKind kind, std::string_view) { bye |= kind == FrameKind::bye; });
  if (bye) note_bye(peer);
  // Under the lock, so that set_sink({}) returns only once this thread let go of the sink (its
  // deliver() only posts).
  std::lock_guard lock(sink_mutex_);
  if (const auto sink = sink_.lock()) sink->deliver(peer, std::move(batch));
}

void ClusterState::stop_all(bool kill) {
  {
    std::lock_guard lock(mutex_);
    if (stop_sent_) return;
    stop_sent_ = true;
  }
  // Once a rank is lost no survivor finalises MPI (MpiLink::skip_finalize): they learn it here,
  // since only rank 0 watches the others. The link drops what is queued for a lost rank.
  const bool lost = any_lost();
  if (lost) link_.skip_finalize();
  const char flags[2] = {kill ? char{1} : char{0}, lost ? char{1} : char{0}};
  for (int r = 1; r < size(); ++r) link_.send(r, FrameKind::stop, std::string_view(flags, 2));
}

void ClusterState::note_bye(int peer) {
  {
    std::lock_guard lock(mutex_);
    auto& state = peers_.at(static_cast<std::size_t>(peer));
    if (state == PeerState::serving) state = PeerState::said_bye;
  }
  link_.unwatch(peer);  // it finalises MPI next: its silence is no loss
  byes_changed_.notify_all();
}

void ClusterState::wait_byes() {
  // Bounded: a rank that never answers is declared lost after ClusterOptions::failure_timeout.
  std::unique_lock lock(mutex_);
  byes_changed_.wait(lock, [&] {
    return !stop_sent_ || std::count(peers_.begin() + 1, peers_.end(), PeerState::serving) == 0;
  });
}

void ClusterState::watch_peers(std::function<void(int peer)> lost) {
  std::vector<int> peers;
  if (rank() == 0)
    for (int r = 1; r < size(); ++r) peers.push_back(r);
  else
    peers.push_back(0);
  link_.watch(std::move(peers), [this, lost = std::move(lost)](int peer) {
    {
      std::lock_guard lock(mutex_);
      peers_.at(static_cast<std::size_t>(peer)) = PeerState::lost;
    }
    // Rank 0 tells the survivors in its `stop` frames; a serving rank lost rank 0, or was
    // dropped by it.
    link_.skip_finalize();
    byes_changed_.notify_all();
    lost(peer);
  });
}

bool ClusterState::any_lost() const {
  std::lock_guard lock(mutex_);
  return std::count(peers_.begin(), peers_.end(), PeerState::lost) != 0;
}

}  // namespace detail

// ---- Cluster ----

Cluster::Cluster(int& argc, char**& argv, ClusterOptions options) {
  // Before MPI starts: every rank throws alike, and none waits for another.
  if (options.heartbeat_interval.count() <= 0)
    throw std::invalid_argument("corun::ClusterOptions::heartbeat_interval is " +
                                std::to_string(options.heartbeat_interval.count()) +
                                " ms: give a positive interval (the default is 500 ms)");
  if (options.failure_timeout < 2 * options.heartbeat_interval)
    throw std::invalid_argument("corun::ClusterOptions::failure_timeout is " +
                                std::to_string(options.failure_timeout.count()) +
                                " ms, under twice heartbeat_interval (" +
                                std::to_string(options.heartbeat_interval.count()) +
                                " ms): a rank that lives would be declared lost; raise it");
  if (detail::g_cluster_made.exchange(true))
    throw Error(errc::protocol_error,
                "corun::Cluster: one per process (MPI is initialised and finalised once)");
  // Under `mpirun --enable-recovery` a dead peer makes Open MPI's TCP transport send help
  // messages to mpirun, synchronously, one per failed reconnection: one run's mpirun crashed
  // handling them, and once a survivor's MPI calls stalled past the failure timeout, so that a
  // living rank was declared lost. Ranks launched so stay quiet (the user's setting wins; the
  // transport's own lines on stderr remain).
  if (detail::launched_with_recovery()) ::setenv("OMPI_MCA_orte_execute_quiet", "1", 0);
  // A job that mpirun killed left its ranks' segments on this node: remove them now.
  sweep_stale_segments();
  state_ = std::make_shared<detail::ClusterState>(argc, argv, std::move(options));
  state_->uncaught_at_start = std::uncaught_exceptions();
}

Cluster::~Cluster() {
  if (std::uncaught_exceptions() > state_->uncaught_at_start && state_->size() > 1) {
    // Unwinding on an error: the other ranks wait for this one in a collective or in serve(),
    // and MPI (without fault tolerance in Open MPI 4.1) has no other way to release them.
    detail::diagnose("corun: rank " + std::to_string(state_->rank()) +
                     " is unwinding on an exception: aborting the MPI job");
    state_->link().abort(1);
  }
  if (state_->rank() == 0 && state_->serving) {
    state_->stop_all(true);
    state_->wait_byes();
  }
  state_->link().stop();  // MPI_Finalize, once, even if a ClusterService still holds the state
  state_.reset();
}

int Cluster::rank() const noexcept {
  return state_->rank();
}

int Cluster::size() const noexcept {
  return state_->size();
}

const ClusterOptions& Cluster::options() const noexcept {
  return state_->options();
}

bool Cluster::serve() {
  detail::ClusterState& state = *state_;
  if (state.serving) throw std::logic_error("corun::Cluster::serve: called twice");
  if (state.rank() == 0) {
    state.gather_pool_shapes({});  // rank 0's pool comes with the ClusterPool
    state.serving = true;
    state.link().set_inbox(
        [&state](int peer, std::string batch) { state.deliver(peer, std::move(batch)); });
    state.watch_peers([&state](int peer) { state.deliver_lost(peer); });
    return true;
  }
  asio::io_context io;
  auto strand = asio::make_strand(io);
  {
    std::optional<ProcessPool> pool;
    std::exception_ptr failed;
    try {
      pool.emplace(strand, state.options().pool);
    } catch (...) {
      failed = std::current_exception();
    }
    // Rank 0 weighs each rank by its pool: nodes may differ in cores. A rank without a pool
    // gives 0 workers, and every rank throws rather than wait for it.
    try {
      state.gather_pool_shapes(
          pool ? detail::ClusterState::PoolShape{pool->size(), pool->options().max_tasks_active}
               : detail::ClusterState::PoolShape{});
    } catch (...) {
      if (!failed) throw;  // another rank has no pool
    }
    if (failed) std::rethrow_exception(failed);  // this rank's own error first
    state.serving = true;
    auto server = std::make_shared<detail::RankServer>(state, io, *pool);
    state.link().set_inbox([server, strand](int, std::string batch) {
      asio::post(strand, [server, batch = std::move(batch)]() mutable {
        server->on_batch(std::move(batch));
      });
    });
    state.watch_peers(
        [server, strand](int) { asio::post(strand, [server] { server->on_root_lost(); }); });
    io.run();
    // Rank 0 sends nothing after `bye`; anything else is dropped, not posted to a dead loop.
    state.link().set_inbox([](int, std::string) {});
    // Leaving in good order (rank 0 stops watching this rank at its bye), and the callback
    // that posts to this loop's strand goes before the loop does.
    state.link().forget_peers();
  }
  return false;
}

}  // namespace corun
