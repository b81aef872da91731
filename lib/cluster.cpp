/// \file
/// Cluster, distributed arrays, spec translation, and the server loop of ranks other than 0.
#include "cluster_state.hpp"

#include "wire.hpp"

#include <corun/error.hpp>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/strand.hpp>

#include <unistd.h>
#include <atomic>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <utility>

namespace corun {

namespace detail {

namespace {
using Clock = std::chrono::steady_clock;

std::atomic<bool> g_cluster_made{false};

std::int64_t ns_since(Clock::time_point t, Clock::time_point origin) {
  if (t == Clock::time_point{}) return INT64_MIN;
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t - origin).count();
}
Clock::time_point after(Clock::time_point origin, std::int64_t ns) {
  if (ns == INT64_MIN) return {};
  return origin + std::chrono::nanoseconds(ns);
}

void put_error(ByteWriter& w, const TaskError& e) {
  w.put(static_cast<std::uint8_t>(e.kind));
  w.put(static_cast<std::int32_t>(e.pid));
  w.str(e.exception_type);
  w.str(e.message);
  w.put(static_cast<std::int32_t>(e.signal));
  w.put(static_cast<std::int32_t>(e.exit_code));
  w.put(static_cast<std::int32_t>(e.attempts));
}

TaskError get_error(ByteReader& r) {
  TaskError e;
  const auto kind = r.get<std::uint8_t>("error.kind");
  if (kind > static_cast<std::uint8_t>(TaskErrorKind::protocol))
    r.fail("error.kind", std::to_string(kind));
  e.kind = static_cast<TaskErrorKind>(kind);
  e.pid = r.get<std::int32_t>("error.pid");
  e.exception_type = std::string(r.str("error.exception_type", 1u << 16));
  e.message = std::string(r.str("error.message", 1u << 24));
  e.signal = r.get<std::int32_t>("error.signal");
  e.exit_code = r.get<std::int32_t>("error.exit_code");
  e.attempts = r.get<std::int32_t>("error.attempts");
  return e;
}
}  // namespace

// ---- frames ----

std::string encode_global_spec(const TaskSpec& spec) {
  std::string out;
  ByteWriter w(out);
  w.str(spec.worker_name);
  w.str(spec.iterator.encode());
  w.put<std::uint8_t>(spec.output.has_value());
  if (spec.output) w.str(DataIterator::over(*spec.output, 1).encode());
  w.str(spec.params);
  return out;
}

GlobalSpec decode_global_spec(std::string_view bytes) {
  ByteReader r(bytes, "corun cluster spec");
  GlobalSpec g;
  g.worker = std::string(r.str("worker", 1024));
  g.iterator = DataIterator::decode(r.str("iterator", 1u << 16));
  const auto has_output = r.get<std::uint8_t>("has_output");
  if (has_output > 1) r.fail("has_output", std::to_string(has_output));
  if (has_output) g.output = DataIterator::decode(r.str("output", 1u << 16)).info();
  g.params = std::string(r.str("params", std::size_t{64} << 20));
  r.expect_end();
  return g;
}

std::string encode_result(std::uint64_t id, const TaskResult& result) {
  std::string out;
  ByteWriter w(out);
  w.put(id);
  const TaskRecord& t = result.record;
  ResultStatus status = ResultStatus::ok;
  std::string error_message;
  std::int32_t error_code = static_cast<std::int32_t>(errc::pool_closed);
  if (result.error) {
    if (result.task_error) {
      status = ResultStatus::task_error;
    } else if (is_aborted(result.error)) {
      status = ResultStatus::aborted;
    } else {
      status = ResultStatus::error;
      try {
        std::rethrow_exception(result.error);
      } catch (const Error& e) {
        error_code = e.code().value();
        error_message = e.what();
      } catch (const std::exception& e) {
        error_message = e.what();
      } catch (...) {
        error_message = "unknown exception";
      }
    }
  }
  w.put(static_cast<std::uint8_t>(status));
  w.put(static_cast<std::int32_t>(t.worker_id));
  w.put(static_cast<std::int32_t>(t.pid));
  w.put(static_cast<std::int32_t>(t.cpu_start));
  w.put(static_cast<std::int32_t>(t.cpu_end));
  w.put(ns_since(t.started, t.submitted));
  w.put(ns_since(t.finished, t.submitted));
  w.put(static_cast<std::int64_t>(t.cpu_time.count()));
  w.put(static_cast<std::uint8_t>(t.outcome));
  w.put(static_cast<std::int32_t>(t.attempts));
  if (status == ResultStatus::task_error) put_error(w, *result.task_error);
  if (status == ResultStatus::error) {
    w.put(error_code);
    w.str(error_message);
  }
  w.str(status == ResultStatus::ok ? std::string_view(result.payload) : std::string_view());
  return out;
}

TaskResult decode_result(std::string_view bytes, std::uint64_t& id, int rank,
                         const std::string& worker, Slice slice, Clock::time_point submitted) {
  ByteReader r(bytes, "corun cluster result");
  id = r.get<std::uint64_t>("id");
  const auto status = r.get<std::uint8_t>("status");
  if (status > static_cast<std::uint8_t>(ResultStatus::error))
    r.fail("status", std::to_string(status));
  TaskResult out;
  TaskRecord& t = out.record;
  t.worker = worker;
  t.slice = slice;
  t.rank = rank;
  t.submitted = submitted;
  t.worker_id = r.get<std::int32_t>("worker_id");
  t.pid = r.get<std::int32_t>("pid");
  t.cpu_start = r.get<std::int32_t>("cpu_start");
  t.cpu_end = r.get<std::int32_t>("cpu_end");
  t.started = after(submitted, r.get<std::int64_t>("started"));
  t.finished = after(submitted, r.get<std::int64_t>("finished"));
  t.cpu_time = std::chrono::nanoseconds(r.get<std::int64_t>("cpu_time"));
  const auto outcome = r.get<std::uint8_t>("outcome");
  if (outcome > static_cast<std::uint8_t>(TaskOutcome::cancelled))
    r.fail("outcome", std::to_string(outcome));
  t.outcome = static_cast<TaskOutcome>(outcome);
  t.attempts = r.get<std::int32_t>("attempts");
  switch (static_cast<ResultStatus>(status)) {
    case ResultStatus::ok:
      break;
    case ResultStatus::task_error: {
      TaskError e = get_error(r);
      e.worker = worker;
      e.slice = slice;
      e.rank = rank;
      out.error = std::make_exception_ptr(TaskFailed(e));
      out.task_error = std::move(e);
      break;
    }
    case ResultStatus::aborted:
      out.error = aborted_error();
      break;
    case ResultStatus::error: {
      const auto code = r.get<std::int32_t>("error.code");
      const std::string message(r.str("error.message", 1u << 24));
      out.error = std::make_exception_ptr(
          Error(static_cast<errc>(code), "corun: rank " + std::to_string(rank) + ": " + message));
      break;
    }
  }
  out.payload = std::string(r.str("payload", std::size_t{1} << 31));
  r.expect_end();
  return out;
}

void globalize(TaskResult& result, int rank, Slice slice) {
  result.record.rank = rank;
  result.record.slice = slice;
  if (result.task_error) {
    result.task_error->rank = rank;
    result.task_error->slice = slice;
    result.error = std::make_exception_ptr(TaskFailed(*result.task_error));
  }
}

// ---- the state of one rank ----

ClusterState::ClusterState(int& argc, char**& argv, ClusterOptions options)
    : link_(argc, argv, options.max_poll_interval), options_(std::move(options)) {}

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

LocalSpec ClusterState::translate(const GlobalSpec& global) const {
  LocalSpec out;
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
      if (!input ||
          found->blocks->blocks().slice_count() != input->blocks->blocks().slice_count() ||
          found->blocks->global().rows() != input->blocks->global().rows() ||
          found->blocks->layout().partitions != input->blocks->layout().partitions ||
          found->blocks->layout().chunk_size != input->blocks->layout().chunk_size) {
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
    out.spec = make_task_spec(global.worker, std::move(iterator), std::move(output), global.params);
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  return out;
}

void ClusterState::set_sink(std::weak_ptr<BatchSink> sink) {
  std::lock_guard lock(sink_mutex_);
  sink_ = std::move(sink);
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
  const char flag = kill ? 1 : 0;
  for (int r = 1; r < size(); ++r) link_.send(r, FrameKind::stop, std::string_view(&flag, 1));
}

void ClusterState::note_bye(int) {
  {
    std::lock_guard lock(mutex_);
    ++byes_;
  }
  byes_changed_.notify_all();
}

void ClusterState::wait_byes() {
  std::unique_lock lock(mutex_);
  byes_changed_.wait(lock, [&] { return !stop_sent_ || byes_ >= size() - 1; });
}

// ---- distributed arrays ----

DistributedBlocks::DistributedBlocks(ArrayInfo global, BlockLayout layout, int rank, int ranks)
    : global_(std::move(global)), layout_(layout), ranks_(ranks) {
  if ((layout.partitions == 0) == (layout.chunk_size == 0))
    throw std::invalid_argument(
        "corun::BlockLayout: set exactly one of partitions and chunk_size (partitions = " +
        std::to_string(layout.partitions) + ", chunk_size = " + std::to_string(layout.chunk_size) +
        ")");
  blocks_ = layout.partitions != 0 ? DataIterator::partitioned(global_, layout.partitions)
                                   : DataIterator::over(global_, layout.chunk_size);
  const std::size_t count = blocks_.slice_count();
  for (std::size_t b = static_cast<std::size_t>(rank); b < count;
       b += static_cast<std::size_t>(ranks)) {
    const Slice rows = blocks_.slice(b);
    local_blocks_.push_back({rows, local_rows_});
    local_rows_ += rows.size();
  }
}

std::size_t DistributedBlocks::block_of(std::size_t row) const noexcept {
  if (blocks_.partitions == 0) return row / blocks_.chunk_size;
  const std::size_t rows = blocks_.size_of_data;
  const std::size_t base = rows / blocks_.partitions, extra = rows % blocks_.partitions;
  const std::size_t big = extra * (base + 1);
  return row < big ? row / (base + 1) : extra + (row - big) / base;
}

int DistributedBlocks::owner(Slice slice) const noexcept {
  const std::size_t rows = global_.rows();
  if (slice.start > slice.end || slice.end > rows) return -1;
  if (rows == 0) return 0;
  const std::size_t first = block_of(std::min(slice.start, rows - 1));
  if (!slice.empty() && block_of(slice.end - 1) != first) return -1;
  return static_cast<int>(first % static_cast<std::size_t>(ranks_));
}

Slice DistributedBlocks::to_local(Slice slice) const {
  if (global_.rows() == 0) return {0, 0};
  const std::size_t b = block_of(std::min(slice.start, global_.rows() - 1));
  const LocalBlock& block = local_blocks_.at(b / static_cast<std::size_t>(ranks_));
  const std::size_t start = block.local_start + (slice.start - block.rows.start);
  return {start, start + slice.size()};
}

std::shared_ptr<DistributedBlocks> create_distributed(Cluster& cluster,
                                                      std::vector<std::size_t> shape, DType dtype,
                                                      BlockLayout layout) {
  ClusterState& state = ClusterAccess::state(cluster);
  if (state.serving)
    throw std::logic_error(
        "corun::DistributedArray::create: every rank creates its arrays before "
        "Cluster::serve()");
  // Rank 0 names the array; every rank checks it was given the same shape, type and layout, and
  // all throw if one differs (a rank throwing alone would leave the others waiting).
  std::string descriptor;
  ByteWriter w(descriptor);
  w.put<std::uint64_t>(shape.size());
  for (std::size_t d : shape) w.put<std::uint64_t>(d);
  w.str(dtype.str());
  w.put<std::uint64_t>(layout.partitions);
  w.put<std::uint64_t>(layout.chunk_size);
  const std::size_t number = state.next_array();
  std::string name = state.rank() == 0 ? "corun-dist-" + unique_segment_name().substr(6) + "-" +
                                             std::to_string(number)
                                       : std::string();
  std::string root_descriptor = descriptor;
  bool all_agree = false;
  state.link().call([&] {
    MPI_Comm comm = state.link().collective_comm();
    std::uint64_t sizes[2] = {name.size(), root_descriptor.size()};
    MPI_Bcast(sizes, 2, MPI_UINT64_T, 0, comm);
    name.resize(sizes[0]);
    root_descriptor.resize(sizes[1]);
    MPI_Bcast(name.data(), static_cast<int>(sizes[0]), MPI_CHAR, 0, comm);
    MPI_Bcast(root_descriptor.data(), static_cast<int>(sizes[1]), MPI_CHAR, 0, comm);
    int agree = root_descriptor == descriptor ? 1 : 0, all = 0;
    MPI_Allreduce(&agree, &all, 1, MPI_INT, MPI_MIN, comm);
    all_agree = all == 1;
  });
  if (!all_agree)
    throw std::invalid_argument(
        "corun::DistributedArray::create: the ranks disagree on the shape, element type or "
        "BlockLayout of array number " +
        std::to_string(number) + " (every rank must pass the same ones)");
  return std::make_shared<DistributedBlocks>(ArrayInfo{name, std::move(shape), dtype}, layout,
                                             state.rank(), state.size());
}

void register_distributed(Cluster& cluster, std::shared_ptr<DistributedBlocks> blocks,
                          ArrayInfo local) {
  ClusterAccess::state(cluster).add(std::move(blocks), std::move(local));
}

void unregister_distributed(Cluster& cluster, const std::string& global_name) noexcept {
  ClusterAccess::state(cluster).remove(global_name);
}

// ---- a rank other than 0: runs rank 0's tasks on its local pool ----

namespace {

class RankServer : public std::enable_shared_from_this<RankServer> {
 public:
  RankServer(ClusterState& state, asio::io_context& io, ProcessPool& pool)
      : state_(state),
        pool_(pool),
        service_(PoolAccess::service(pool)),
        work_(asio::make_work_guard(io)) {}

  void on_batch(std::string batch) {
    for_each_frame(batch, [&](FrameKind kind, std::string_view bytes) {
      ByteReader r(bytes, "corun cluster frame");
      switch (kind) {
        case FrameKind::spec: {
          const auto id = r.get<std::uint64_t>("spec_id");
          LocalSpec local;
          try {
            local = state_.translate(decode_global_spec(r.rest()));
          } catch (const std::exception& e) {
            local.error = e.what();
          }
          specs_[id] = std::move(local);
          break;
        }
        case FrameKind::task: {
          const auto id = r.get<std::uint64_t>("task_id");
          const auto spec = r.get<std::uint64_t>("spec_id");
          const auto start = r.get<std::uint64_t>("start");
          const auto end = r.get<std::uint64_t>("end");
          run(id, spec, Slice{start, end});
          break;
        }
        case FrameKind::cancel: {
          const auto id = r.get<std::uint64_t>("task_id");
          const auto mode = r.get<std::uint8_t>("mode");
          const auto it = running_.find(id);
          if (it != running_.end())
            service_->cancel(it->second, mode != 0 ? CancelMode::kill : CancelMode::drain);
          break;
        }
        case FrameKind::ready:
          pool_.async_wait_ready([self = shared_from_this()](std::exception_ptr e) {
            std::string reply(1, e ? '\0' : '\1');
            if (e) try {
                std::rethrow_exception(e);
              } catch (const std::exception& x) {
                reply += x.what();
              }
            self->state_.link().send(0, FrameKind::ready, reply);
          });
          break;
        case FrameKind::stop:
          if (r.get<std::uint8_t>("kill") != 0) pool_.terminate();
          pool_.async_shutdown([self = shared_from_this()](std::exception_ptr) {
            self->state_.link().send(0, FrameKind::bye, {});
            self->work_.reset();
          });
          break;
        default:
          r.fail("kind", std::to_string(static_cast<int>(kind)) + " is not for a serving rank");
      }
    });
  }

 private:
  class Done final : public TaskCompletion {
   public:
    Done(std::shared_ptr<RankServer> server, std::uint64_t id)
        : server_(std::move(server)), id_(id) {}
    void complete(TaskResult&& result) override {
      server_->running_.erase(id_);
      server_->state_.link().send(0, FrameKind::result, encode_result(id_, result));
    }

   private:
    std::shared_ptr<RankServer> server_;
    std::uint64_t id_;
  };

  void run(std::uint64_t id, std::uint64_t spec_id, Slice slice) {
    const auto it = specs_.find(spec_id);
    std::string error;
    if (it == specs_.end())
      error = "spec " + std::to_string(spec_id) + " never reached this rank";
    else if (!it->second.spec)
      error = it->second.error;
    else if (it->second.blocks->owner(slice) != state_.rank())
      error = "slice [" + std::to_string(slice.start) + ", " + std::to_string(slice.end) +
              ") is not held by this rank";
    if (!error.empty()) {
      TaskResult failed;
      TaskError e;
      e.kind = TaskErrorKind::protocol;
      e.message = std::move(error);
      failed.error = std::make_exception_ptr(TaskFailed(e));
      failed.task_error = std::move(e);
      failed.record.outcome = TaskOutcome::protocol;
      state_.link().send(0, FrameKind::result, encode_result(id, failed));
      return;
    }
    const Slice local = it->second.blocks->to_local(slice);
    const std::uint64_t local_id = service_->submit(it->second.spec, local, {},
                                                    std::make_unique<Done>(shared_from_this(), id));
    if (local_id != 0) running_[id] = local_id;
  }

  ClusterState& state_;
  ProcessPool& pool_;
  std::shared_ptr<TaskService> service_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::unordered_map<std::uint64_t, LocalSpec> specs_;
  std::unordered_map<std::uint64_t, std::uint64_t> running_;
};

}  // namespace

}  // namespace detail

// ---- Cluster ----

Cluster::Cluster(int& argc, char**& argv, ClusterOptions options) {
  if (detail::g_cluster_made.exchange(true))
    throw Error(errc::protocol_error,
                "corun::Cluster: one per process (MPI is initialised and finalised once)");
  // A job that mpirun killed left its ranks' segments on this node: remove them now.
  sweep_stale_segments();
  state_ = std::make_shared<detail::ClusterState>(argc, argv, std::move(options));
  state_->uncaught_at_start = std::uncaught_exceptions();
}

Cluster::~Cluster() {
  if (std::uncaught_exceptions() > state_->uncaught_at_start && state_->size() > 1) {
    // Unwinding on an error: the other ranks wait for this one in a collective or in serve(),
    // and MPI (without fault tolerance in Open MPI 4.1) has no other way to release them.
    std::fprintf(stderr, "corun: rank %d is unwinding on an exception: aborting the MPI job\n",
                 state_->rank());
    std::fflush(stderr);
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
  state.link().call([&] { MPI_Barrier(state.link().collective_comm()); });
  state.serving = true;
  if (state.rank() == 0) {
    state.link().set_inbox(
        [&state](int peer, std::string batch) { state.deliver(peer, std::move(batch)); });
    return true;
  }
  asio::io_context io;
  auto strand = asio::make_strand(io);
  {
    ProcessPool pool{strand, state.options().pool};
    auto server = std::make_shared<detail::RankServer>(state, io, pool);
    state.link().set_inbox([server, strand](int, std::string batch) {
      asio::post(strand, [server, batch = std::move(batch)]() mutable {
        server->on_batch(std::move(batch));
      });
    });
    io.run();
    // Rank 0 sends nothing after `bye`; anything else is dropped, not posted to a dead loop.
    state.link().set_inbox([](int, std::string) {});
  }
  return false;
}

}  // namespace corun
