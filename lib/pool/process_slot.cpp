/// \file
/// A worker slot backed by a worker process.
/// Side: parent.
#include "pool/process_slot.hpp"

#include <corun/diagnostics.hpp>

#include <asio/post.hpp>

#include <sys/wait.h>
#include <algorithm>
#include <csignal>
#include <exception>
#include <utility>

namespace corun::detail {

namespace {
/// The largest frame body a worker may send: its largest result, with room for the rest of the
/// frame (saturated: PoolOptions validation keeps the limit at most proto::kMaxResultBytes).
std::uint32_t max_incoming_body(std::uint64_t max_result_bytes) {
  return static_cast<std::uint32_t>(std::min(max_result_bytes, proto::kMaxResultBytes) +
                                    proto::kResultFrameOverhead);
}
}  // namespace

LaunchedWorker launch_and_register(const ProcessSlotConfig& config) {
  const auto began = std::chrono::steady_clock::now();
  auto launched = config.children->start(
      [&config] { return launch_worker(config.method, config.argv, config.output != nullptr); });
  if (config.timeline) config.timeline->launched(launched.process->pid(), began);
  return launched;
}

ProcessSlot::ProcessSlot(int index, SlotEvents& events, const asio::any_io_executor& strand,
                         const ProcessSlotConfig& config)
    : WorkerSlot(index, events),
      strand_(strand),
      config_(config),
      pidfd_(strand),
      timer_(strand),
      specs_(proto::kMaxSpecsAtWorker) {}

ProcessSlot::~ProcessSlot() {
  detach();
}

void ProcessSlot::start() {
  LaunchedWorker launched;
  try {
    launched = prelaunched_ ? std::move(*prelaunched_) : launch_and_register(config_);
    prelaunched_.reset();
  } catch (const std::exception& e) {
    reason_ = EndReason::launch_failed;
    detail_ = e.what();
    asio::post(strand_, [self = shared_from_this()] { self->finish(); });
    return;
  }
  process_ = std::move(launched.process);
  pid_ = process_->pid();
  channel_ = std::make_shared<ParentChannel>(strand_, std::move(launched.socket),
                                             max_incoming_body(config_.max_result_bytes));
  channel_->start(this);
  if (launched.out && launched.err) {
    outputs_[0] = std::make_shared<OutputReader>(strand_, std::move(launched.out), config_.output,
                                                 index_, pid_, OutputStream::out);
    outputs_[1] = std::make_shared<OutputReader>(strand_, std::move(launched.err), config_.output,
                                                 index_, pid_, OutputStream::err);
    outputs_open_ = 2;
    for (const auto& output : outputs_) output->start(this);
  }
  if (launched.pidfd) {
    pidfd_.assign(launched.pidfd.release());
    pidfd_.async_wait(asio::posix::stream_descriptor::wait_read,
                      [self = shared_from_this()](std::error_code ec) {
                        if (!ec) self->on_process_exit();
                      });
  }
  timer_.expires_after(config_.handshake_timeout);
  timer_.async_wait([self = shared_from_this()](std::error_code ec) {
    if (ec || self->state() != SlotState::starting) return;
    self->kill_for(
        EndReason::handshake_timeout,
        "did not report within " + std::to_string(self->config_.handshake_timeout.count()) + " ms");
  });
}

void ProcessSlot::run(SlotTask task) {
  std::string& out = channel_->outbox();
  const SpecBook::Plan plan = specs_.use(task.spec);
  for (const std::uint64_t id : plan.forget) proto::append_forget(out, id);
  if (plan.send) proto::append_spec(out, task.spec->id, task.spec->encoded);
  proto::append_task(out, task.id, task.slice, task.spec->id,
                     task.argument ? std::string_view(*task.argument) : std::string_view());
  tasks_.push_back(std::move(task));
  set_state(SlotState::busy);
  channel_->flush();
}

bool ProcessSlot::kill_running(std::uint64_t id) {
  if (tasks_.empty() || tasks_.front().id != id) return false;
  kill_for(EndReason::killed);
  return true;
}

void ProcessSlot::stop() {
  channel_->send(proto::Kind::shutdown, {});
  set_state(SlotState::stopping);
  // A hung exit hook must not hang async_shutdown: the pool says so, and kills the worker.
  arm_deadline(SlotState::stopping, config_.exit_timeout, EndReason::exit_timeout,
               "its exit hooks did not return within " +
                   std::to_string(config_.exit_timeout.count()) +
                   " ms (PoolOptions::worker_exit_timeout); killed");
}

void ProcessSlot::arm_deadline(SlotState state, std::chrono::milliseconds timeout, EndReason reason,
                               std::string detail) {
  if (timeout.count() == 0 || process_exited_) return;
  timer_.expires_after(timeout);
  timer_.async_wait([self = shared_from_this(), state, reason,
                     detail = std::move(detail)](std::error_code ec) mutable {
    if (ec || self->state() != state || self->process_exited_) return;
    if (reason == EndReason::exit_timeout)
      diagnose("corun: worker process " + std::to_string(self->pid_) + " (slot " +
               std::to_string(self->index_) + "): " + detail);
    self->kill_for(reason, std::move(detail));
  });
}

void ProcessSlot::detach() noexcept {
  forget_events();
  if (channel_) channel_->close();
  for (const auto& output : outputs_)
    if (output) output->close();
  std::error_code ignored;
  pidfd_.close(ignored);
  timer_.cancel();
}

void ProcessSlot::on_frame(proto::Kind kind, std::string_view body) {
  switch (kind) {
    case proto::Kind::hello: {
      if (state() != SlotState::starting)
        return kill_for(EndReason::protocol_violation, "unexpected hello");
      set_state(SlotState::initializing);
      if (config_.timeline) config_.timeline->hello(pid_, index_);
      timer_.cancel();
      proto::Init init;
      init.worker_id = index_;
      init.max_result_bytes = config_.max_result_bytes;
      if (!config_.cpu_binding.empty())
        init.cpu_binding =
            config_.cpu_binding[static_cast<std::size_t>(index_) % config_.cpu_binding.size()];
      init.worker_init = config_.worker_init;
      init.worker_exit = config_.worker_exit;
      init.cpu_binding_required = config_.cpu_binding_required;
      init.memory_limit = config_.memory_limit;
      init.max_rss = config_.max_rss;
      init.report_starts = config_.task_timeout.count() > 0;
      init.line_buffered_stdout = config_.output != nullptr;
      if (config_.spin.count() > 0) {
        try {
          channel_->make_rings(kPoolRingCapacity, config_.spin, config_.spin_yields);
        } catch (const std::exception& e) {
          return kill_for(
              EndReason::init_failed,
              std::string("cannot make the frame rings (PoolOptions::wait): ") + e.what());
        }
        init.ring_segment = channel_->ring_segment();
        init.ring_capacity = kPoolRingCapacity;
        init.spin_ns = static_cast<std::uint64_t>(config_.spin.count());
        init.spin_yields = config_.spin_yields;
      }
      channel_->send(proto::Kind::init, proto::encode_init(init));
      arm_deadline(SlotState::initializing, config_.init_timeout, EndReason::init_timeout,
                   "worker_init did not return within " +
                       std::to_string(config_.init_timeout.count()) +
                       " ms (PoolOptions::worker_init_timeout); killed");
      return;
    }
    case proto::Kind::ready:
      if (state() != SlotState::initializing)
        return kill_for(EndReason::protocol_violation, "unexpected ready");
      set_state(SlotState::ready);
      timer_.cancel();  // worker_init's deadline
      channel_->switch_to_rings();
      had_started_ = true;
      if (events()) events()->on_slot_ready(*this);
      return;
    case proto::Kind::init_failed: {
      // The worker exits next; that is when the slot ends.
      proto::InitFailure failure;
      try {
        failure = proto::decode_init_failure(body);
      } catch (const std::exception& e) {
        return kill_for(EndReason::protocol_violation, e.what());
      }
      if (!reason_) reason_ = EndReason::init_failed;
      detail_ = failure.cause == proto::InitFailure::Cause::hook
                    ? "worker_init threw: " + std::string(failure.message)
                    : std::string(failure.message);
      return;
    }
    case proto::Kind::result:
      return on_result(body);
    case proto::Kind::started: {
      ByteReader r(body, "corun started message");
      std::uint64_t id = 0;
      try {
        id = r.get<std::uint64_t>("task_id");
        r.expect_end();
      } catch (const std::exception& e) {
        return kill_for(EndReason::protocol_violation, e.what());
      }
      if (tasks_.empty() || tasks_.front().id != id)
        return kill_for(EndReason::protocol_violation,
                        "task " + std::to_string(id) + " started out of order");
      return arm_task_timeout();
    }
    default:
      return kill_for(EndReason::protocol_violation,
                      "unexpected message kind " + std::to_string(static_cast<int>(kind)));
  }
}

void ProcessSlot::on_result(std::string_view body) {
  proto::Result result;
  try {
    result = proto::decode_result(body);
  } catch (const std::exception& e) {
    return kill_for(EndReason::protocol_violation, e.what());
  }
  if (tasks_.empty() || tasks_.front().id != result.head.task_id)
    return kill_for(
        EndReason::protocol_violation,
        "result for task " + std::to_string(result.head.task_id) + " which is not the one running");
  SlotTask task = std::move(tasks_.front());
  tasks_.pop_front();
  if (tasks_.empty() && state() == SlotState::busy) set_state(SlotState::ready);
  // The next task's clock starts with its `started` message.
  if (config_.task_timeout.count() > 0 && !process_exited_) timer_.cancel();
  if (events()) events()->on_task_result(*this, std::move(task), result);
}

void ProcessSlot::on_channel_closed(bool violation, const std::string& why) {
  channel_closed_ = true;
  if (violation) {
    kill_for(EndReason::protocol_violation, why);
  } else if (state() != SlotState::stopping) {
    // The worker closed its end: it is dying or dead. Make sure it is.
    process_->kill(SIGKILL);
  }
  // Without a pidfd (a kernel before 5.3) nothing else says it ended: finish() reaps it, which
  // does not block for long, as it is killed or exiting.
  if (!pidfd_.is_open() && !process_exited_) return on_process_exit();
  if (process_exited_ && outputs_open_ == 0) finish();
}

void ProcessSlot::on_output_closed() {
  if (outputs_open_ > 0) --outputs_open_;
  if (process_exited_ && channel_closed_ && outputs_open_ == 0) finish();
}

void ProcessSlot::on_process_exit() {
  process_exited_ = true;
  // Whatever is in the pipes now was written before the end (by the worker, or by a process it
  // started): that much is delivered however slowly the handler takes it.
  for (std::size_t i = 0; i < outputs_.size(); ++i)
    if (outputs_[i]) output_at_exit_[i] = outputs_[i]->bytes_read() + outputs_[i]->bytes_waiting();
  finish_when_drained();
}

bool ProcessSlot::output_behind() const noexcept {
  for (std::size_t i = 0; i < outputs_.size(); ++i)
    if (outputs_[i] && outputs_[i]->open() && outputs_[i]->bytes_read() < output_at_exit_[i])
      return true;
  return false;
}

void ProcessSlot::finish_when_drained() {
  // What the worker wrote before it died (a result, the reason worker_init failed, its last
  // lines of output) is still in the socket and the pipes: end once they have delivered it and
  // reached end-of-file.
  if (channel_closed_ && outputs_open_ == 0) return finish();
  // A process the worker started may hold its end of the socket or of a pipe open: don't wait
  // for ever (the output it writes after that is not delivered).
  timer_.expires_after(config_.handshake_timeout);
  timer_.async_wait([self = shared_from_this()](std::error_code ec) {
    if (ec || self->state() == SlotState::ended) return;
    // A slow handler, not a held pipe: the bytes from before the end are still being read.
    if (self->output_behind()) return self->finish_when_drained();
    self->channel_closed_ = true;
    self->finish();
  });
}

void ProcessSlot::kill_for(EndReason reason, std::string detail) {
  if (!reason_) {
    reason_ = reason;
    detail_ = std::move(detail);
  }
  if (process_) process_->kill(SIGKILL);
}

void ProcessSlot::arm_task_timeout() {
  if (config_.task_timeout.count() == 0 || process_exited_) return;
  timer_.expires_after(config_.task_timeout);
  timer_.async_wait([self = shared_from_this(), id = tasks_.front().id](std::error_code ec) {
    if (ec || self->state() == SlotState::ended || self->tasks_.empty() ||
        self->tasks_.front().id != id)
      return;
    self->kill_for(EndReason::timed_out);
  });
}

void ProcessSlot::finish() {
  if (state() == SlotState::ended) return;
  const SlotState was = state();
  set_state(SlotState::ended);
  int status = 0;
  if (process_) {
    status = process_->reap();
    config_.children->remove(process_.get());
  }
  SlotEnd end;
  if (reason_) {
    end.reason = *reason_;
  } else {
    const bool clean_exit =
        was == SlotState::stopping && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    end.reason = clean_exit ? EndReason::exited : EndReason::crashed;
  }
  end.wait_status = status;
  end.detail = std::move(detail_);
  end.had_started = had_started_;
  end.was = was;
  end.unfinished = std::move(tasks_);
  tasks_.clear();
  SlotEvents* listener = events();
  detach();
  if (listener) listener->on_slot_ended(*this, std::move(end));
}

}  // namespace corun::detail
