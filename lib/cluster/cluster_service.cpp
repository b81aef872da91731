/// \file
/// How rank 0 routes a cluster's tasks: each to the rank holding its rows (async_map's chunks to
/// the least busy rank), rank 0's own through its local pool and the others' over the MPI link,
/// and how their results come back.
/// Side: rank 0.
#include "cluster/cluster_service.hpp"

#include "base/wire.hpp"

#include <corun/error.hpp>

#include <asio/execution/outstanding_work.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace corun::detail {

namespace {
TaskResult failed_result(const TaskSpec& spec, Slice slice, int rank, std::string message,
                         TaskErrorKind kind = TaskErrorKind::protocol) {
  TaskResult out;
  TaskError e;
  e.kind = kind;
  e.worker = spec.worker_name;
  e.slice = slice;
  e.rank = rank;
  e.message = std::move(message);
  out.record.worker = spec.worker_name;
  out.record.slice = slice;
  out.record.rank = rank;
  mark_failed(out, std::move(e));
  return out;
}

}  // namespace

class ClusterService::LocalDone final : public TaskCompletion {
 public:
  LocalDone(std::shared_ptr<ClusterService> service, std::uint64_t id)
      : service_(std::move(service)), id_(id) {}
  void complete(TaskResult&& result) override { service_->on_local(id_, std::move(result)); }

 private:
  std::shared_ptr<ClusterService> service_;
  std::uint64_t id_;
};

ClusterService::ClusterService(std::shared_ptr<ClusterState> cluster,
                               asio::any_io_executor executor)
    : cluster_(std::move(cluster)),
      strand_(asio::make_strand(executor)),
      // Rank 0's pool runs on a strand inside this one, so its handlers never run concurrently
      // with ours and we may call it directly.
      local_pool_(strand_, cluster_->options().pool),
      local_(PoolAccess::service(local_pool_)),
      pools_(cluster_->pool_shapes()),
      busy_(static_cast<std::size_t>(cluster_->size())),
      lost_(static_cast<std::size_t>(cluster_->size())),
      said_bye_(static_cast<std::size_t>(cluster_->size())),
      specs_(*cluster_),
      ready_rounds_(static_cast<std::size_t>(cluster_->size())) {
  pools_.at(0) = {local_pool_.size(), local_pool_.options().max_tasks_active};
}

ClusterService::~ClusterService() {
  local_pool_.terminate();
}

std::size_t ClusterService::max_tasks_active() const {
  std::size_t sum = 0;
  for (const auto& pool : pools_) sum += pool.max_tasks_active;
  return sum;
}

std::size_t ClusterService::concurrency() const {
  std::size_t sum = 0;
  for (const auto& pool : pools_) sum += pool.workers;
  return sum;
}

std::uint64_t ClusterService::submit(std::shared_ptr<const TaskSpec> spec, Slice slice,
                                     std::string argument, const TaskOptions& options,
                                     std::unique_ptr<TaskCompletion> done) {
  if (state_ != State::running) {
    complete_later(std::move(done), closed_error());
    return 0;
  }
  const std::uint64_t id = next_id_++;
  Entry& entry = specs_.entry_of(*spec);
  Pending p{std::move(done), 0, 0, spec, slice, Clock::now(), {}, {}, {}, -1};
  if (!spec->reads_array) {
    // An async_map function reads only its inputs, which travel with the task: the rank with
    // the fewest tasks per worker runs it (rank 0 on a tie, which needs no network).
    p.rank = least_busy_rank();
  } else if (entry.blocks) {
    p.rank = entry.blocks->owner(slice);  // owner computes
    if (p.rank < 0) {
      p.rank = 0;
      fail_later(std::move(p), failed_result(*spec, slice, 0,
                                             "the slice crosses blocks of distributed array '" +
                                                 spec->iterator.shm_name +
                                                 "', which may live on different ranks: cut it "
                                                 "with the array's iterator(), or into slices "
                                                 "inside its blocks"));
      return id;
    }
    if (lost_[static_cast<std::size_t>(p.rank)]) {
      const int rank = p.rank;
      p.rank = 0;
      fail_later(std::move(p), rows_lost_with(rank, *spec, slice));
      return id;
    }
  }
  if (p.rank == 0)
    submit_local(id, std::move(p), entry, std::move(argument), options);
  else
    submit_remote(id, std::move(p), entry, std::move(argument), options);
  return id;
}

void ClusterService::submit_local(std::uint64_t id, Pending p, Entry& entry, std::string argument,
                                  const TaskOptions& options) {
  const LocalSpec& local = specs_.local_spec(entry);
  if (!local.spec)
    return fail_later(std::move(p),
                      failed_result(*p.spec, p.slice, 0, "cannot run on rank 0: " + local.error));
  const Slice rows = entry.blocks ? entry.blocks->to_local(p.slice) : p.slice;
  track(id, std::move(p));
  const std::uint64_t local_id =
      local_->submit(local.spec, rows, std::move(argument), options,
                     std::make_unique<LocalDone>(shared_from_this(), id));
  // 0: the local pool refused and completes the task itself.
  if (local_id != 0) {
    const auto it = tasks_.find(id);
    if (it != tasks_.end()) it->second.local_id = local_id;
  }
}

void ClusterService::submit_remote(std::uint64_t id, Pending p, Entry& entry, std::string argument,
                                   const TaskOptions& options) {
  const int rank = p.rank;
  if (argument.size() > kMaxFrameBytes - 64)  // 64: the rest of the task frame
    return fail_later(std::move(p),
                      failed_result(*p.spec, p.slice, rank,
                                    "the task's inputs of " + std::to_string(argument.size()) +
                                        " bytes exceed what one MPI message of "
                                        "the cluster carries"));
  specs_.send_once(rank, entry);
  std::string frame;
  ByteWriter w(frame);
  w.put(id);
  w.put(entry.id);
  w.put<std::uint64_t>(p.slice.start);
  w.put<std::uint64_t>(p.slice.end);
  put_task_options(frame, options);
  w.bytes(argument);  // the rest of the frame
  cluster_->link().send(rank, FrameKind::task, frame);
  p.work = tracked();
  if (!p.spec->reads_array) {  // kept to be sent again, should this rank be lost
    p.argument = std::move(argument);
    p.options = options;
  }
  track(id, std::move(p));
}

void ClusterService::resend(std::uint64_t id, Pending p) {
  p.resent_from = p.rank;
  {
    std::lock_guard lock(losses_mutex_);
    if (RankLoss* loss = loss_of(p.rank)) ++loss->chunks_resent;
  }
  p.rank = least_busy_rank();
  Entry& entry = specs_.entry_of(*p.spec);
  std::string argument = std::move(p.argument);
  const TaskOptions options = p.options;
  if (p.rank == 0) {
    p.work = {};  // rank 0's pool keeps the loop busy
    submit_local(id, std::move(p), entry, std::move(argument), options);
  } else {
    submit_remote(id, std::move(p), entry, std::move(argument), options);
  }
}

std::vector<RankLoss> ClusterService::losses() const {
  std::lock_guard lock(losses_mutex_);
  return losses_;
}

TaskResult ClusterService::rows_lost_with(int rank, const TaskSpec& spec, Slice slice) {
  {
    std::lock_guard lock(losses_mutex_);
    if (RankLoss* loss = loss_of(rank)) ++loss->tasks_failed;
  }
  return failed_result(spec, slice, rank,
                       "rank " + std::to_string(rank) + " was lost (nothing came from it for " +
                           std::to_string(cluster_->options().failure_timeout.count()) +
                           " ms, ClusterOptions::failure_timeout), and rows [" +
                           std::to_string(slice.start) + ", " + std::to_string(slice.end) +
                           ") of distributed array '" + spec.iterator.shm_name +
                           "' lived only there",
                       TaskErrorKind::rank_lost);
}

RankLoss* ClusterService::loss_of(int rank) {
  for (RankLoss& loss : losses_)
    if (loss.rank == rank) return &loss;
  return nullptr;
}

void ClusterService::lost(int peer) {
  {
    std::lock_guard lock(losses_mutex_);
    losses_.push_back({peer, Clock::now(), 0, {}, 0});
  }
  asio::post(strand_, [self = shared_from_this(), peer] { self->on_rank_lost(peer); });
}

void ClusterService::on_rank_lost(int peer) {
  const auto r = static_cast<std::size_t>(peer);
  if (lost_[r]) return;
  lost_[r] = true;
  // In the order they were submitted, so that re-sent chunks keep it.
  std::vector<std::uint64_t> ids;
  for (const auto& [id, p] : tasks_)
    if (p.rank == peer) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  for (const std::uint64_t id : ids) {
    auto node = untrack(id);
    Pending p = std::move(node.mapped());
    if (!p.spec->reads_array && state_ != State::terminated) {
      resend(id, std::move(p));
      continue;
    }
    TaskResult failed = rows_lost_with(peer, *p.spec, p.slice);
    finish(std::move(p), std::move(failed));
  }
  auto rounds = std::move(ready_rounds_[r]);
  ready_rounds_[r].clear();
  for (auto& round : rounds) ready_reply(*round, nullptr);  // the pool goes on without it
  check_shutdown();
}

void ClusterService::cancel(std::uint64_t id, CancelMode mode) {
  const auto it = tasks_.find(id);
  if (it == tasks_.end()) return;
  if (it->second.rank == 0) {
    if (it->second.local_id != 0) local_->cancel(it->second.local_id, mode);
    return;
  }
  std::string frame;
  ByteWriter w(frame);
  w.put(id);
  w.put<std::uint8_t>(mode == CancelMode::kill ? 1 : 0);
  cluster_->link().send(it->second.rank, FrameKind::cancel, frame);
}

void ClusterService::deliver(int peer, std::string batch) {
  asio::post(strand_, [self = shared_from_this(), peer, batch = std::move(batch)]() mutable {
    self->on_batch(peer, batch);
  });
}

void ClusterService::track(std::uint64_t id, Pending p) {
  ++busy_[static_cast<std::size_t>(p.rank)];
  tasks_.emplace(id, std::move(p));
}

std::unordered_map<std::uint64_t, ClusterService::Pending>::node_type ClusterService::untrack(
    std::uint64_t id) {
  auto node = tasks_.extract(id);
  if (!node.empty()) --busy_[static_cast<std::size_t>(node.mapped().rank)];
  return node;
}

int ClusterService::least_busy_rank() const noexcept {
  // busy[r] / workers[r] < busy[best] / workers[best], without division.
  std::size_t best = 0;  // rank 0 is never lost: it is this process
  for (std::size_t r = 1; r < busy_.size(); ++r)
    if (!lost_[r] && busy_[r] * pools_[best].workers < busy_[best] * pools_[r].workers) best = r;
  return static_cast<int>(best);
}

void ClusterService::on_batch(int peer, const std::string& batch) {
  for_each_frame(batch, [&](FrameKind kind, std::string_view bytes) {
    switch (kind) {
      case FrameKind::result:
        return on_remote_result(peer, bytes);
      case FrameKind::ready:
        return on_ready(peer, bytes);
      case FrameKind::bye:
        return on_bye(peer);
      default:
        throw std::invalid_argument("corun: rank " + std::to_string(peer) + " sent frame kind " +
                                    std::to_string(static_cast<int>(kind)) + " to rank 0");
    }
  });
}

void ClusterService::on_local(std::uint64_t id, TaskResult&& result) {
  auto node = untrack(id);
  if (node.empty()) return;
  Pending& p = node.mapped();
  globalize(result, 0, p.slice);
  finish(std::move(p), std::move(result));
}

void ClusterService::on_remote_result(int peer, std::string_view bytes) {
  ByteReader peek(bytes, "corun cluster result");
  const auto id = peek.get<std::uint64_t>("id");
  auto node = untrack(id);
  if (node.empty()) return;  // completed already (the pool was terminated)
  Pending& p = node.mapped();
  std::uint64_t decoded_id = 0;
  TaskResult result =
      decode_result(bytes, decoded_id, peer, p.spec->worker_name, p.slice, p.submitted);
  finish(std::move(p), std::move(result));
}

void ClusterService::finish(Pending p, TaskResult result) {
  if (p.resent_from >= 0) {
    std::lock_guard lock(losses_mutex_);
    RankLoss* loss = loss_of(p.resent_from);
    if (loss != nullptr && loss->first_resent_done == Clock::time_point{})
      loss->first_resent_done = Clock::now();
  }
  if (result.record.submitted == Clock::time_point{}) result.record.submitted = p.submitted;
  p.done->complete(std::move(result));
  check_shutdown();
}

void ClusterService::fail_later(Pending p, TaskResult result) {
  asio::post(strand_,
             [self = shared_from_this(), p = std::move(p), result = std::move(result)]() mutable {
               self->finish(std::move(p), std::move(result));
             });
}

void ClusterService::complete_later(std::unique_ptr<TaskCompletion> done,
                                    std::exception_ptr error) {
  TaskResult result;
  result.error = std::move(error);
  asio::post(strand_, [done = std::move(done), result = std::move(result)]() mutable {
    done->complete(std::move(result));
  });
}

asio::any_io_executor ClusterService::tracked() const {
  return asio::prefer(asio::any_io_executor(strand_), asio::execution::outstanding_work.tracked);
}

}  // namespace corun::detail
