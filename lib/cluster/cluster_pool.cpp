/// \file
/// ClusterPool, and its service's life across ranks: a ready round asks every rank's pool, an
/// orderly shutdown waits for the tasks, then for rank 0's pool and every other rank's bye, and
/// terminate kills every rank's workers at once.
/// Side: rank 0.
#include "base/run_or_release.hpp"
#include "cluster/cluster_service.hpp"

#include <corun/cluster.hpp>
#include <corun/error.hpp>

#include <asio/dispatch.hpp>
#include <asio/post.hpp>

#include <utility>

namespace corun {

namespace detail {

void ClusterService::wait_ready(std::unique_ptr<TaskCompletion> done) {
  if (state_ == State::terminated || state_ == State::closed)
    return complete_later(std::move(done), closed_error());
  auto round = std::make_shared<ReadyRound>();
  round->done = std::move(done);
  round->remaining = 1;  // rank 0's, plus each rank not lost
  round->work = tracked();
  for (int r = 1; r < ranks(); ++r) {
    if (lost_[static_cast<std::size_t>(r)]) continue;
    ++round->remaining;
    ready_rounds_[static_cast<std::size_t>(r)].push_back(round);
    cluster_->link().send(r, FrameKind::ready, {});
  }
  local_pool_.async_wait_ready(
      [self = shared_from_this(), round](std::exception_ptr e) { self->ready_reply(*round, e); });
}

void ClusterService::on_ready(int peer, std::string_view bytes) {
  auto& rounds = ready_rounds_[static_cast<std::size_t>(peer)];
  if (rounds.empty()) return;
  auto round = std::move(rounds.front());
  rounds.pop_front();
  std::exception_ptr e;
  // The reply is '\1' when the rank's pool is ready, else '\0' and why not.
  if (bytes.empty() || bytes[0] == '\0')
    e = std::make_exception_ptr(
        Error(errc::worker_start_failed,
              "corun: rank " + std::to_string(peer) + ": " +
                  std::string(bytes.empty() ? std::string_view() : bytes.substr(1))));
  ready_reply(*round, e);
}

void ClusterService::ready_reply(ReadyRound& round, std::exception_ptr e) {
  if (e && !round.error) round.error = e;
  if (--round.remaining != 0 || !round.done) return;
  complete_later(std::move(round.done), round.error);
  round.work = {};
}

void ClusterService::shutdown(std::unique_ptr<TaskCompletion> done) {
  if (state_ == State::closed || state_ == State::terminated)
    return complete_later(std::move(done), nullptr);
  shutdown_waiters_.push_back(std::move(done));
  if (state_ == State::running) state_ = State::closing;
  check_shutdown();
}

void ClusterService::on_bye(int peer) {
  said_bye_[static_cast<std::size_t>(peer)] = true;
  check_shutdown();
}

void ClusterService::check_shutdown() {
  if (state_ == State::closing && tasks_.empty()) {
    state_ = State::stopping;
    stopping_work_ = tracked();  // until every rank said bye
    cluster_->stop_all(false);
    local_pool_.async_shutdown([self = shared_from_this()](std::exception_ptr) {
      self->local_stopped_ = true;
      self->check_shutdown();
    });
  }
  bool ranks_left = true;  // every other rank said bye or was lost
  for (std::size_t r = 1; r < lost_.size(); ++r)
    ranks_left = ranks_left && (lost_[r] || said_bye_[r]);
  if (state_ == State::stopping && local_stopped_ && ranks_left) {
    state_ = State::closed;
    for (auto& w : shutdown_waiters_) complete_later(std::move(w), nullptr);
    shutdown_waiters_.clear();
    stopping_work_ = {};
  }
}

void ClusterService::terminate() noexcept {
  local_pool_.terminate();
  cluster_->stop_all(true);
  asio::post(strand_,
             RunOrRelease<ClusterService>(shared_from_this(), &ClusterService::terminate_on_strand,
                                          &ClusterService::release_completions));
}

void ClusterService::release_completions() {
  // No handler of the cluster runs any more. Moved out first: a completion's destructor may
  // reach back into this service.
  state_ = State::terminated;
  auto tasks = std::move(tasks_);
  auto waiters = std::move(shutdown_waiters_);
  decltype(ready_rounds_) rounds(ready_rounds_.size());
  rounds.swap(ready_rounds_);
  tasks_.clear();
  shutdown_waiters_.clear();
  stopping_work_ = {};
}

void ClusterService::terminate_on_strand() {
  if (state_ == State::terminated || state_ == State::closed) return;
  state_ = State::terminated;
  // Rank 0's tasks complete through its pool; the other ranks' results no longer matter.
  std::vector<std::uint64_t> remote;
  for (const auto& [id, p] : tasks_)
    if (p.rank != 0) remote.push_back(id);
  for (std::uint64_t id : remote) {
    auto node = untrack(id);
    complete_later(std::move(node.mapped().done), aborted_error());
  }
  for (auto& w : shutdown_waiters_) complete_later(std::move(w), nullptr);
  shutdown_waiters_.clear();
  stopping_work_ = {};
}

std::exception_ptr ClusterService::closed_error() {
  return std::make_exception_ptr(Error(errc::pool_closed, "corun: the cluster pool is shut down"));
}

}  // namespace detail

ClusterPool::ClusterPool(Cluster& cluster, executor_type executor) : executor_(executor) {
  detail::ClusterState& state = detail::ClusterAccess::state(cluster);
  if (state.rank() != 0 || !state.serving)
    throw Error(errc::pool_closed,
                "corun::ClusterPool: made on rank 0 after Cluster::serve() returned true (this "
                "is rank " +
                    std::to_string(state.rank()) + (state.serving ? ")" : ", before serve())"));
  if (state.pool_made)
    throw Error(errc::pool_closed,
                "corun::ClusterPool: one per cluster (the other ranks serve one pool)");
  state.pool_made = true;
  service_ =
      std::make_shared<detail::ClusterService>(detail::ClusterAccess::shared(cluster), executor_);
  state.set_sink(service_);
  cluster_ = detail::ClusterAccess::shared(cluster);
}

ClusterPool::~ClusterPool() {
  // After this the link's thread holds no reference to the service: the last one is dropped on
  // the application's side (the executor's queue or here), never on the link's thread.
  cluster_->set_sink({});
  service_->terminate();
}

int ClusterPool::ranks() const noexcept {
  return service_->ranks();
}

std::vector<std::size_t> ClusterPool::workers() const {
  std::vector<std::size_t> out;
  for (const auto& pool : service_->pools()) out.push_back(pool.workers);
  return out;
}

ClusterHealth ClusterPool::health() const {
  ClusterHealth out;
  out.ranks = cluster_->size();
  out.lost = service_->losses();
  out.recovery_enabled = cluster_->recovery_enabled();
  return out;
}

std::shared_ptr<detail::TaskService> ClusterPool::task_service() const {
  return service_;
}

void ClusterPool::lifecycle(const std::shared_ptr<detail::ClusterService>& service, bool shutdown,
                            std::unique_ptr<detail::TaskCompletion> done) {
  asio::dispatch(service->executor(), [service, shutdown, done = std::move(done)]() mutable {
    if (shutdown)
      service->shutdown(std::move(done));
    else
      service->wait_ready(std::move(done));
  });
}

}  // namespace corun
