/// \file
/// A rank other than 0: runs rank 0's tasks on its local pool.
/// Side: other ranks.
#include "cluster/rank_server.hpp"

#include "base/wire.hpp"

#include <corun/diagnostics.hpp>
#include <corun/error.hpp>

#include <exception>
#include <utility>

namespace corun::detail {

class RankServer::Done final : public TaskCompletion {
 public:
  Done(std::shared_ptr<RankServer> server, std::uint64_t id)
      : server_(std::move(server)), id_(id) {}
  void complete(TaskResult&& result) override {
    server_->running_.erase(id_);
    const std::string frame = encode_result(id_, result);
    if (frame.size() > kMaxFrameBytes)
      return server_->refuse(id_,
                             "the result of " + std::to_string(result.payload.size()) +
                                 " bytes exceeds what one MPI message of the cluster carries (" +
                                 std::to_string(kMaxFrameBytes) +
                                 " bytes): return less, or write it to an output array");
    server_->state_.link().send(0, FrameKind::result, frame);
  }

 private:
  std::shared_ptr<RankServer> server_;
  std::uint64_t id_;
};

RankServer::RankServer(ClusterState& state, asio::io_context& io, ProcessPool& pool)
    : state_(state),
      pool_(pool),
      service_(PoolAccess::service(pool)),
      work_(asio::make_work_guard(io)) {}

void RankServer::on_batch(std::string batch) {
  for_each_frame(batch, [&](FrameKind kind, std::string_view bytes) {
    ByteReader r(bytes, "corun cluster frame");
    switch (kind) {
      case FrameKind::spec: {
        const auto id = r.get<std::uint64_t>("spec_id");
        LocalSpec local;
        try {
          local = state_.translate(decode_spec(r.rest()));
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
        const TaskOptions options = get_task_options(r);
        std::string argument(r.rest());
        run(id, spec, Slice{start, end}, std::move(argument), options);
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
        if (r.get<std::uint8_t>("lost") != 0) state_.link().skip_finalize();
        if (leaving_) break;
        leaving_ = true;
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

void RankServer::on_root_lost() {
  diagnose("corun: rank " + std::to_string(state_.rank()) + " heard nothing from rank 0 for " +
           std::to_string(state_.options().failure_timeout.count()) +
           " ms (ClusterOptions::failure_timeout): killing its workers and leaving serve()");
  pool_.terminate();
  if (leaving_) return;  // its shutdown is under way and ends serve()
  leaving_ = true;
  pool_.async_shutdown([self = shared_from_this()](std::exception_ptr) { self->work_.reset(); });
}

void RankServer::run(std::uint64_t id, std::uint64_t spec_id, Slice slice, std::string argument,
                     const TaskOptions& options) {
  const auto it = specs_.find(spec_id);
  if (it == specs_.end())
    return refuse(id, "spec " + std::to_string(spec_id) + " never reached this rank");
  const LocalSpec& local = it->second;
  if (!local.spec) return refuse(id, local.error);
  Slice rows = slice;
  if (local.blocks) {  // a distributed array's rows, translated to this rank's segment
    if (local.blocks->owner(slice) != state_.rank())
      return refuse(id, "slice [" + std::to_string(slice.start) + ", " + std::to_string(slice.end) +
                            ") is not held by this rank");
    rows = local.blocks->to_local(slice);
  }
  const std::uint64_t local_id = service_->submit(local.spec, rows, std::move(argument), options,
                                                  std::make_unique<Done>(shared_from_this(), id));
  if (local_id != 0) running_[id] = local_id;
}

void RankServer::refuse(std::uint64_t id, std::string why) {
  TaskResult failed;
  TaskError e;
  e.kind = TaskErrorKind::protocol;
  e.message = std::move(why);
  mark_failed(failed, std::move(e));
  state_.link().send(0, FrameKind::result, encode_result(id, failed));
}

}  // namespace corun::detail
