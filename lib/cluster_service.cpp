/// \file
/// ClusterPool and the TaskService behind it on rank 0: routes each task to the rank holding its
/// rows (async_map's chunks to the least busy rank), rank 0's own through its local pool and the
/// others' over the MPI link.
#include "cluster_state.hpp"

#include "wire.hpp"

#include <corun/cluster.hpp>
#include <corun/error.hpp>

#include <asio/dispatch.hpp>
#include <asio/execution/outstanding_work.hpp>
#include <asio/post.hpp>
#include <asio/prefer.hpp>
#include <asio/strand.hpp>

#include <deque>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace corun {

namespace detail {

namespace {
using Clock = std::chrono::steady_clock;

TaskResult failed_result(TaskErrorKind kind, const TaskSpec& spec, Slice slice, int rank,
                         std::string message) {
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
  out.record.outcome = TaskOutcome::protocol;
  out.error = std::make_exception_ptr(TaskFailed(e));
  out.task_error = std::move(e);
  return out;
}
}  // namespace

class ClusterService final : public TaskService,
                             public BatchSink,
                             public std::enable_shared_from_this<ClusterService> {
 public:
  ClusterService(std::shared_ptr<ClusterState> cluster, asio::any_io_executor executor)
      : cluster_(std::move(cluster)),
        strand_(asio::make_strand(executor)),
        // Rank 0's pool runs on a strand inside this one, so its handlers never run
        // concurrently with ours and we may call it directly.
        local_pool_(strand_, cluster_->options().pool),
        local_(PoolAccess::service(local_pool_)),
        busy_(static_cast<std::size_t>(cluster_->size())),
        sent_(static_cast<std::size_t>(cluster_->size())),
        ready_rounds_(static_cast<std::size_t>(cluster_->size())) {}

  ~ClusterService() override { local_pool_.terminate(); }

  int ranks() const noexcept { return cluster_->size(); }

  // ---- TaskService ----

  asio::any_io_executor executor() const override { return strand_; }

  std::size_t max_tasks_active() const override {
    return local_pool_.options().max_tasks_active * static_cast<std::size_t>(ranks());
  }

  std::size_t concurrency() const override {
    return local_pool_.size() * static_cast<std::size_t>(ranks());
  }

  std::uint64_t submit(std::shared_ptr<const TaskSpec> spec, Slice slice, std::string argument,
                       std::unique_ptr<TaskCompletion> done) override {
    if (state_ != State::running) {
      complete_later(std::move(done), closed_error());
      return 0;
    }
    const std::uint64_t id = next_id_++;
    Entry& entry = entry_of(*spec);
    Pending p{std::move(done), 0, 0, spec, slice, Clock::now(), {}};
    if (!spec->reads_array) {
      // An async_map function reads only its inputs, which travel with the task: the rank with
      // the fewest tasks runs it (rank 0 on a tie, which needs no network).
      p.rank = least_busy_rank();
    } else if (entry.blocks) {
      p.rank = entry.blocks->owner(slice);  // owner computes
      if (p.rank < 0) {
        p.rank = 0;
        fail_later(std::move(p),
                   failed_result(TaskErrorKind::protocol, *spec, slice, 0,
                                 "the slice crosses blocks of distributed array '" +
                                     spec->iterator.shm_name +
                                     "', which may live on different ranks: cut it with the "
                                     "array's iterator(), or into slices inside its blocks"));
        return id;
      }
    }
    const int rank = p.rank;
    if (rank == 0) {
      const LocalSpec& local = local_spec(entry);
      if (!local.spec) {
        fail_later(std::move(p), failed_result(TaskErrorKind::protocol, *spec, slice, 0,
                                               "cannot run on rank 0: " + local.error));
        return id;
      }
      const Slice rows = entry.blocks ? entry.blocks->to_local(slice) : slice;
      track(id, std::move(p));
      const std::uint64_t local_id =
          local_->submit(local.spec, rows, std::move(argument),
                         std::make_unique<LocalDone>(shared_from_this(), id));
      // 0: the local pool refused and completes the task itself.
      if (local_id != 0) {
        const auto it = tasks_.find(id);
        if (it != tasks_.end()) it->second.local_id = local_id;
      }
      return id;
    }
    if (argument.size() > kMaxFrameBytes - 64) {  // 64: the rest of the task frame
      fail_later(std::move(p),
                 failed_result(TaskErrorKind::protocol, *spec, slice, rank,
                               "the task's inputs of " + std::to_string(argument.size()) +
                                   " bytes exceed what one MPI message of the cluster carries"));
      return id;
    }
    auto& sent = sent_[static_cast<std::size_t>(rank)];
    if (sent.insert(entry.id).second) {
      std::string frame;
      ByteWriter w(frame);
      w.put(entry.id);
      w.bytes(entry.global);
      cluster_->link().send(rank, FrameKind::spec, frame);
    }
    std::string frame;
    ByteWriter w(frame);
    w.put(id);
    w.put(entry.id);
    w.put<std::uint64_t>(slice.start);
    w.put<std::uint64_t>(slice.end);
    w.bytes(argument);  // the rest of the frame
    cluster_->link().send(rank, FrameKind::task, frame);
    p.work = tracked();
    track(id, std::move(p));
    return id;
  }

  void cancel(std::uint64_t id, CancelMode mode) override {
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

  // ---- BatchSink (the link's thread) ----

  void deliver(int peer, std::string batch) override {
    asio::post(strand_, [self = shared_from_this(), peer, batch = std::move(batch)]() mutable {
      self->on_batch(peer, batch);
    });
  }

  // ---- lifecycle, on the strand ----

  void wait_ready(std::unique_ptr<TaskCompletion> done) {
    if (state_ == State::terminated || state_ == State::closed)
      return complete_later(std::move(done), closed_error());
    auto round = std::make_shared<ReadyRound>();
    round->done = std::move(done);
    round->remaining = ranks();
    round->work = tracked();
    for (int r = 1; r < ranks(); ++r) {
      ready_rounds_[static_cast<std::size_t>(r)].push_back(round);
      cluster_->link().send(r, FrameKind::ready, {});
    }
    local_pool_.async_wait_ready(
        [self = shared_from_this(), round](std::exception_ptr e) { self->ready_reply(*round, e); });
  }

  void shutdown(std::unique_ptr<TaskCompletion> done) {
    if (state_ == State::closed || state_ == State::terminated)
      return complete_later(std::move(done), nullptr);
    shutdown_waiters_.push_back(std::move(done));
    if (state_ == State::running) state_ = State::closing;
    check_shutdown();
  }

  /// Any thread: kills rank 0's workers and tells the other ranks to kill theirs.
  void terminate() noexcept {
    local_pool_.terminate();
    cluster_->stop_all(true);
    asio::post(strand_, [self = shared_from_this()] { self->terminate_on_strand(); });
  }

 private:
  enum class State { running, closing, stopping, closed, terminated };

  struct Pending {
    std::unique_ptr<TaskCompletion> done;
    int rank = 0;
    std::uint64_t local_id = 0;
    std::shared_ptr<const TaskSpec> spec;
    Slice slice;
    Clock::time_point submitted;
    /// While another rank runs the task the executor has work: its io_context::run() must not
    /// return for lack of it (rank 0's own tasks keep its pool's reads pending instead).
    asio::any_io_executor work;
  };
  /// What rank 0 knows about one distinct spec (by its encoding).
  struct Entry {
    std::uint64_t id = 0;
    std::string global;                               // the encoding other ranks get
    std::shared_ptr<const DistributedBlocks> blocks;  // null for a plain array
    std::optional<LocalSpec> local;                   // translated for rank 0, when needed
    DecodedSpec decoded;
  };
  struct ReadyRound {
    std::unique_ptr<TaskCompletion> done;
    asio::any_io_executor work;
    int remaining = 0;
    std::exception_ptr error;
  };

  class LocalDone final : public TaskCompletion {
   public:
    LocalDone(std::shared_ptr<ClusterService> service, std::uint64_t id)
        : service_(std::move(service)), id_(id) {}
    void complete(TaskResult&& result) override { service_->on_local(id_, std::move(result)); }

   private:
    std::shared_ptr<ClusterService> service_;
    std::uint64_t id_;
  };

  Entry& entry_of(const TaskSpec& spec) {
    const auto it = entries_.find(spec.encoded);
    if (it != entries_.end()) return it->second;
    Entry e;
    e.id = next_spec_id_++;
    e.global = spec.encoded;
    e.decoded = decoded_copy(spec);
    if (const auto found = cluster_->find(spec.iterator.shm_name)) e.blocks = found->blocks;
    return entries_.emplace(spec.encoded, std::move(e)).first->second;
  }

  const LocalSpec& local_spec(Entry& entry) {
    if (!entry.local) entry.local = cluster_->translate(entry.decoded);
    return *entry.local;
  }

  void track(std::uint64_t id, Pending p) {
    ++busy_[static_cast<std::size_t>(p.rank)];
    tasks_.emplace(id, std::move(p));
  }

  /// The pending task `id` (empty when it completed already), no longer counted as busy.
  auto untrack(std::uint64_t id) {
    auto node = tasks_.extract(id);
    if (!node.empty()) --busy_[static_cast<std::size_t>(node.mapped().rank)];
    return node;
  }

  int least_busy_rank() const noexcept {
    std::size_t best = 0;
    for (std::size_t r = 1; r < busy_.size(); ++r)
      if (busy_[r] < busy_[best]) best = r;
    return static_cast<int>(best);
  }

  void on_local(std::uint64_t id, TaskResult&& result) {
    auto node = untrack(id);
    if (node.empty()) return;
    Pending& p = node.mapped();
    globalize(result, 0, p.slice);
    finish(std::move(p), std::move(result));
  }

  void on_batch(int peer, const std::string& batch) {
    for_each_frame(batch, [&](FrameKind kind, std::string_view bytes) {
      switch (kind) {
        case FrameKind::result:
          on_remote_result(peer, bytes);
          break;
        case FrameKind::ready: {
          auto& rounds = ready_rounds_[static_cast<std::size_t>(peer)];
          if (rounds.empty()) break;
          auto round = std::move(rounds.front());
          rounds.pop_front();
          std::exception_ptr e;
          if (bytes.empty() || bytes[0] == '\0')
            e = std::make_exception_ptr(
                Error(errc::worker_start_failed,
                      "corun: rank " + std::to_string(peer) + ": " +
                          std::string(bytes.empty() ? std::string_view() : bytes.substr(1))));
          ready_reply(*round, e);
          break;
        }
        case FrameKind::bye:
          ++byes_;
          check_shutdown();
          break;
        default:
          throw std::invalid_argument("corun: rank " + std::to_string(peer) + " sent frame kind " +
                                      std::to_string(static_cast<int>(kind)) + " to rank 0");
      }
    });
  }

  void on_remote_result(int peer, std::string_view bytes) {
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

  void finish(Pending p, TaskResult result) {
    if (result.record.submitted == Clock::time_point{}) result.record.submitted = p.submitted;
    p.done->complete(std::move(result));
    check_shutdown();
  }

  void fail_later(Pending p, TaskResult result) {
    asio::post(strand_,
               [self = shared_from_this(), p = std::move(p), result = std::move(result)]() mutable {
                 self->finish(std::move(p), std::move(result));
               });
  }

  void complete_later(std::unique_ptr<TaskCompletion> done, std::exception_ptr error) {
    TaskResult result;
    result.error = std::move(error);
    asio::post(strand_, [done = std::move(done), result = std::move(result)]() mutable {
      done->complete(std::move(result));
    });
  }

  void ready_reply(ReadyRound& round, std::exception_ptr e) {
    if (e && !round.error) round.error = e;
    if (--round.remaining != 0 || !round.done) return;
    complete_later(std::move(round.done), round.error);
    round.work = {};
  }

  asio::any_io_executor tracked() const {
    return asio::prefer(asio::any_io_executor(strand_), asio::execution::outstanding_work.tracked);
  }

  static std::exception_ptr closed_error() {
    return std::make_exception_ptr(
        Error(errc::pool_closed, "corun: the cluster pool is shut down"));
  }

  void check_shutdown() {
    if (state_ == State::closing && tasks_.empty()) {
      state_ = State::stopping;
      stopping_work_ = tracked();  // until every rank said bye
      cluster_->stop_all(false);
      local_pool_.async_shutdown([self = shared_from_this()](std::exception_ptr) {
        self->local_stopped_ = true;
        self->check_shutdown();
      });
    }
    if (state_ == State::stopping && local_stopped_ && byes_ >= ranks() - 1) {
      state_ = State::closed;
      for (auto& w : shutdown_waiters_) complete_later(std::move(w), nullptr);
      shutdown_waiters_.clear();
      stopping_work_ = {};
    }
  }

  void terminate_on_strand() {
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

  std::shared_ptr<ClusterState> cluster_;
  asio::strand<asio::any_io_executor> strand_;
  ProcessPool local_pool_;
  std::shared_ptr<TaskService> local_;
  State state_ = State::running;
  std::uint64_t next_id_ = 1;
  std::uint64_t next_spec_id_ = 1;
  std::unordered_map<std::uint64_t, Pending> tasks_;
  std::vector<std::size_t> busy_;  // tasks_ per rank
  std::unordered_map<std::string, Entry> entries_;
  std::vector<std::unordered_set<std::uint64_t>> sent_;  // spec ids each rank has
  std::vector<std::deque<std::shared_ptr<ReadyRound>>> ready_rounds_;
  std::vector<std::unique_ptr<TaskCompletion>> shutdown_waiters_;
  bool local_stopped_ = false;
  asio::any_io_executor stopping_work_;
  int byes_ = 0;
};

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
