/// \file
/// The local pool: its task table and cancellation, and when its workers start, end and are
/// replaced. How a slot starts is in lib/pool/slot_starter.cpp; the pool's lifecycle and
/// waiters are in lib/pool/pool_lifecycle.cpp.
/// Side: parent.
#include "pool/pool_core.hpp"

#include <asio/dispatch.hpp>
#include <asio/post.hpp>

#include <utility>

namespace corun::detail {

namespace {
using Clock = std::chrono::steady_clock;
}  // namespace

PoolCore::PoolCore(asio::any_io_executor executor, PoolOptions options)
    : strand_(asio::make_strand(executor)),
      options_(std::move(options)),
      dispatcher_(options_.workers, {options_.pipeline_depth, options_.max_pipeline_depth}),
      starter_(strand_, options_, *this, children_, timeline_) {
  slots_.resize(options_.workers);
  tasks_sent_.resize(options_.workers);
  asked_to_retire_.resize(options_.workers);
}

PoolCore::~PoolCore() {
  children_.close_and_kill_all();
  for (const auto& slot : slots_)
    if (slot) slot->detach();
}

void PoolCore::start() {
  for (std::size_t i = 0; i < slots_.size(); ++i) start_slot(static_cast<int>(i));
}

void PoolCore::start_slot(int index) {
  if (state_ != State::running && state_ != State::closing) return;
  auto slot = starter_.make(index);
  slots_[static_cast<std::size_t>(index)] = slot;
  dispatcher_.reset(static_cast<std::size_t>(index));
  tasks_sent_[static_cast<std::size_t>(index)] = 0;
  asked_to_retire_[static_cast<std::size_t>(index)] = false;
  starter_.start(*slot);
}

// ---- tasks ----

std::uint64_t PoolCore::submit(std::shared_ptr<const TaskSpec> spec, Slice slice,
                               std::string argument, const TaskOptions& options,
                               std::unique_ptr<TaskCompletion> done) {
  if (state_ != State::running) {
    complete_later(std::move(done), closed_error());
    return 0;
  }
  const std::uint64_t id = next_id_++;
  auto shared_argument =
      argument.empty() ? nullptr : std::make_shared<const std::string>(std::move(argument));
  Task& task =
      tasks_
          .emplace(id, Task{std::move(spec), slice, std::move(shared_argument), std::move(done),
                            Clock::now(), 0, false, -1, options.priority, options.retry, nullptr})
          .first->second;
  if (options.delay.count() > 0) {
    requeue_after(id, task, options.delay);
    return id;
  }
  dispatcher_.enqueue(id, task.priority);
  pump();
  return id;
}

void PoolCore::requeue_after(std::uint64_t id, Task& task, std::chrono::milliseconds wait) {
  task.backoff = std::make_unique<asio::steady_timer>(strand_, wait);
  ++backing_off_;
  task.backoff->async_wait([self = shared_from_this(), id](const std::error_code& ec) {
    // Cancelled: whoever cancelled the timer (cancel, terminate) completed the task already.
    if (ec) return;
    const auto it = self->tasks_.find(id);
    if (it == self->tasks_.end() || !it->second.backoff) return;
    it->second.backoff.reset();
    --self->backing_off_;
    self->dispatcher_.requeue(id, it->second.priority);
    self->pump();
  });
}

void PoolCore::cancel(std::uint64_t id, CancelMode mode) {
  const auto it = tasks_.find(id);
  if (it == tasks_.end()) return;
  if (it->second.backoff) {  // waiting out a backoff: nothing runs, so it ends now
    it->second.backoff->cancel();
    --backing_off_;
    complete_later(std::move(it->second.done), aborted_error());
    tasks_.erase(it);
    check_shutdown();
    return;
  }
  if (dispatcher_.remove(id)) {
    complete_later(std::move(it->second.done), aborted_error());
    tasks_.erase(it);
    check_shutdown();
    return;
  }
  it->second.abandoned = true;
  const auto worker = static_cast<std::size_t>(it->second.worker);
  // A worker about to die gets no more tasks.
  if (mode == CancelMode::kill && it->second.worker >= 0 && slots_[worker]->kill_running(id))
    dispatcher_.set_accepting(worker, false);
}

void PoolCore::pump() {
  while (auto next = dispatcher_.next()) {
    Task& task = tasks_.at(next->task);
    ++task.attempts;
    task.worker = static_cast<int>(next->worker);
    slots_[next->worker]->run(SlotTask{next->task, task.spec, task.slice, task.argument});
    // A worker at the end of its lifespan gets no more: it retires once these are done.
    if (++tasks_sent_[next->worker] == options_.worker_lifespan)
      dispatcher_.set_accepting(next->worker, false);
  }
  check_shutdown();
}

PoolCore::Task PoolCore::take(std::uint64_t id) {
  auto node = tasks_.extract(id);
  return std::move(node.mapped());
}

void PoolCore::on_task_result(WorkerSlot& slot, SlotTask done, const proto::Result& result) {
  Task task = take(done.id);
  TaskResult out;
  out.record = record_of(task, slot, result.head);
  const auto index = static_cast<std::size_t>(slot.index());
  dispatcher_.finished(index, out.record.finished - out.record.started);
  // It runs the tasks it has, gets no more, and retires as a spent worker does.
  if ((result.head.flags & proto::kRetireFlag) != 0 && !asked_to_retire_[index]) {
    asked_to_retire_[index] = true;
    dispatcher_.set_accepting(index, false);
  }
  retire_if_spent(slot);
  if (result.head.status == proto::Status::ok) {
    out.payload.assign(result.payload);
    finish(std::move(task), std::move(out));
  } else {
    TaskError error =
        error_of(task, slot, result,
                 options_.start_method == StartMethod::serial ? 0 : options_.worker_memory_limit);
    fail_or_retry(done.id, std::move(task), std::move(error), std::move(out));
  }
  pump();
}

void PoolCore::finish(Task task, TaskResult result) {
  if (task.abandoned) {
    result.error = aborted_error();
    result.record.outcome = TaskOutcome::cancelled;
  }
  task.done->complete(std::move(result));
  check_shutdown();
}

bool PoolCore::wants_retry(const Task& task, const TaskError& error) const {
  if (task.retry) return task.retry->should_retry(error);
  return error.kind != TaskErrorKind::protocol &&
         static_cast<unsigned>(task.attempts) <= options_.retries;
}

void PoolCore::fail_or_retry(std::uint64_t id, Task task, TaskError error, TaskResult result) {
  // Also while closing: a shutdown lets queued work finish, retries included.
  if (!task.abandoned && (state_ == State::running || state_ == State::closing) &&
      wants_retry(task, error)) {
    task.worker = -1;
    const std::chrono::milliseconds wait =
        task.retry ? task.retry->backoff.delay(task.attempts) : std::chrono::milliseconds{0};
    Task& placed = tasks_.emplace(id, std::move(task)).first->second;
    if (wait.count() > 0)
      requeue_after(id, placed, wait);
    else
      dispatcher_.requeue(id, placed.priority);
    return;
  }
  mark_failed(result, std::move(error));
  finish(std::move(task), std::move(result));
}

// ---- workers ----

bool PoolCore::spent(std::size_t index) const noexcept {
  return asked_to_retire_[index] ||
         (options_.worker_lifespan != 0 && tasks_sent_[index] >= options_.worker_lifespan);
}

void PoolCore::retire_if_spent(WorkerSlot& slot) {
  // Before the task's completion runs, so check_shutdown sees it stopping, to be replaced.
  if (spent(static_cast<std::size_t>(slot.index())) && slot.state() == SlotState::ready &&
      slot.tasks().empty())
    slot.stop();
}

PoolHealth PoolCore::health() const {
  return {options_.workers, ready_workers_.load(), published_failed_starts_.load(),
          published_failed_.load()};
}

void PoolCore::publish_health() {
  std::size_t ready = 0;
  for (const auto& slot : slots_)
    if (slot && slot->accepting() && state_ != State::failed && state_ != State::terminated)
      ++ready;
  ready_workers_ = ready;
  published_failed_starts_ = starter_.failed_starts();
  published_failed_ = state_ == State::failed;
}

void PoolCore::on_slot_ready(WorkerSlot& slot) {
  timeline_.ready(slot.pid(), slot.index());
  starter_.started();
  dispatcher_.set_accepting(static_cast<std::size_t>(slot.index()), true);
  publish_health();
  notify_ready();
  pump();
}

void PoolCore::on_slot_ended(WorkerSlot& slot, SlotEnd end) {
  // terminate() on another thread killed it: its tasks were aborted, not crashed.
  timeline_.ended(slot.pid());
  if (children_.closed() && state_ != State::failed) return terminate_on_strand();
  const int index = slot.index();
  auto keep = slots_[static_cast<std::size_t>(index)];  // the slot outlives this call
  dispatcher_.reset(static_cast<std::size_t>(index));
  handle_unfinished(slot, end);
  publish_health();
  const bool start_failed = !end.had_started && end.reason != EndReason::killed;
  // During a graceful shutdown a worker is replaced while work is left for it: one that retired
  // at the end of its lifespan, or one that crashed under a task that is to run again.
  const bool work_left = dispatcher_.waiting() != 0 || backing_off_ != 0;
  if (state_ == State::running || (state_ == State::closing && work_left)) {
    if (start_failed)
      retry_start(index, starter_.start_failure(slot, end));
    else
      start_slot(index);
  }
  pump();
}

void PoolCore::handle_unfinished(WorkerSlot& slot, SlotEnd& end) {
  if (end.unfinished.empty()) return;
  // Only the first task was running; the ones behind it never started, so they keep their
  // place at the front of the queue. So does the running one when the pool killed the worker
  // for a cancelled task that had just finished: it is not to blame.
  const Task& front = tasks_.at(end.unfinished.front().id);
  const bool innocent = end.reason == EndReason::killed && !front.abandoned;
  const auto last = innocent ? end.unfinished.rend() : end.unfinished.rend() - 1;
  for (auto it = end.unfinished.rbegin(); it != last; ++it) {
    Task& task = tasks_.at(it->id);
    --task.attempts;
    task.worker = -1;
    if (task.abandoned) {
      complete_later(std::move(task.done), aborted_error());
      tasks_.erase(it->id);
    } else {
      dispatcher_.requeue(it->id, task.priority);
    }
  }
  if (innocent) return;
  const std::uint64_t id = end.unfinished.front().id;
  Task running = take(id);
  TaskResult result;
  result.record = record_of(running, slot);
  if (running.abandoned) return finish(std::move(running), std::move(result));
  TaskError error = error_of(running, slot, end, options_.task_timeout);
  fail_or_retry(id, std::move(running), std::move(error), std::move(result));
}

void PoolCore::retry_start(int index, const std::string& why) {
  const bool again = starter_.failed();
  publish_health();
  if (!again) return fail_pool(starter_.give_up_message(why));
  starter_.restart_later(index, [self = shared_from_this(), index] {
    if (self->state_ == State::running) self->start_slot(index);
  });
}

}  // namespace corun::detail
