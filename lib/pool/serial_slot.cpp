/// \file
/// The serial pool's in-process worker slot.
/// Side: parent.
#include "pool/serial_slot.hpp"

#include "worker/task_runner.hpp"

#include <asio/post.hpp>

#include <unistd.h>
#include <exception>
#include <utility>

namespace corun::detail {

SerialSlot::SerialSlot(int index, SlotEvents& events, const asio::any_io_executor& strand,
                       const PoolOptions& options)
    : WorkerSlot(index, events),
      strand_(strand),
      options_(options),
      specs_(proto::kMaxSpecsAtWorker),
      runner_(index, options.max_result_bytes) {}

void SerialSlot::start() {
  pid_ = ::getpid();
  try {
    if (options_.worker_init) options_.worker_init(WorkerInfo{index_, pid_});
  } catch (const std::exception& e) {
    return end_later(EndReason::init_failed, std::string("worker_init threw: ") + e.what());
  } catch (...) {
    return end_later(EndReason::init_failed, "worker_init threw a non-std::exception");
  }
  set_state(SlotState::ready);
  asio::post(strand_, [self = shared_from_this()] {
    if (self->events() && self->state() == SlotState::ready) self->events()->on_slot_ready(*self);
  });
}

void SerialSlot::run(SlotTask task) {
  tasks_.push_back(std::move(task));
  set_state(SlotState::busy);
  schedule();
}

void SerialSlot::stop() {
  set_state(SlotState::stopping);
  runner_.forget_all();
  try {
    if (options_.worker_exit) options_.worker_exit(WorkerInfo{index_, pid_});
  } catch (const std::exception&) {  // as in a worker process: the exit goes on
  }
  end_later(EndReason::exited, {});
}

void SerialSlot::schedule() {
  if (scheduled_ || tasks_.empty()) return;
  scheduled_ = true;
  // One task per handler, so the event loop stays responsive between tasks.
  asio::post(strand_, [self = shared_from_this()] {
    self->scheduled_ = false;
    self->run_front();
    self->schedule();
  });
}

void SerialSlot::run_front() {
  if (tasks_.empty() || !events()) return;
  const SlotTask& task = tasks_.front();
  // The same bookkeeping as a worker process's, so params are decoded and state made once.
  const SpecBook::Plan plan = specs_.use(task.spec);
  for (const std::uint64_t id : plan.forget) runner_.forget(id);
  if (plan.send) runner_.define(task.spec->id, decoded_copy(*task.spec));
  frame_.clear();
  runner_.run(proto::Task{task.id, task.slice, task.spec->id,
                          task.argument ? std::string_view(*task.argument) : std::string_view()},
              frame_);
  const proto::Result result =
      proto::decode_result(std::string_view(frame_).substr(proto::kHeaderSize));
  SlotTask done = std::move(tasks_.front());
  tasks_.pop_front();
  if (tasks_.empty()) set_state(SlotState::ready);
  events()->on_task_result(*this, std::move(done), result);
}

void SerialSlot::end_later(EndReason reason, std::string detail) {
  SlotEnd end;
  end.reason = reason;
  end.detail = std::move(detail);
  end.had_started = state() != SlotState::starting;
  end.was = state();
  set_state(SlotState::ended);
  end.unfinished = std::move(tasks_);
  tasks_.clear();
  asio::post(strand_, [self = shared_from_this(), end = std::move(end)]() mutable {
    if (self->events()) self->events()->on_slot_ended(*self, std::move(end));
  });
}

}  // namespace corun::detail
