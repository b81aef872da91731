/// \file
/// The local pool's lifecycle: waiting until it is ready, an orderly shutdown, failing for good,
/// terminate; each completes its waiters.
/// Side: parent.
#include "pool/pool_core.hpp"

#include "base/run_or_release.hpp"

#include <corun/error.hpp>

#include <asio/post.hpp>

#include <memory>
#include <utility>

namespace corun::detail {

void PoolCore::complete_later(std::unique_ptr<TaskCompletion> done, std::exception_ptr error) {
  TaskResult result;
  result.error = std::move(error);
  asio::post(strand_, [done = std::move(done), result = std::move(result)]() mutable {
    done->complete(std::move(result));
  });
}

std::exception_ptr PoolCore::closed_error() const {
  if (state_ == State::failed && failure_) return failure_;
  return std::make_exception_ptr(Error(errc::pool_closed, "corun: the process pool is shut down"));
}

void PoolCore::wait_ready(std::unique_ptr<TaskCompletion> done) {
  if (state_ == State::failed || state_ == State::terminated)
    return complete_later(std::move(done), closed_error());
  ready_waiters_.push_back(std::move(done));
  notify_ready();
}

void PoolCore::notify_ready() {
  for (const auto& slot : slots_)
    if (!slot || !slot->accepting()) return;
  for (auto& w : ready_waiters_) complete_later(std::move(w), nullptr);
  ready_waiters_.clear();
}

void PoolCore::shutdown(std::unique_ptr<TaskCompletion> done) {
  if (state_ == State::running) state_ = State::closing;
  if (state_ != State::closing) return complete_later(std::move(done), nullptr);
  shutdown_waiters_.push_back(std::move(done));
  check_shutdown();
}

void PoolCore::check_shutdown() {
  if (state_ != State::closing) return;
  for (const auto& slot : slots_)
    if (slot && !slot->tasks().empty()) return;
  if (dispatcher_.waiting() != 0 || backing_off_ != 0) {
    // Queued work (and work waiting out a retry's backoff) still runs on workers that are ready or
    // about to be.
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      const auto& slot = slots_[i];
      if (slot && slot->state() != SlotState::ended &&
          (slot->state() != SlotState::stopping || spent(i)))  // a retiring one is replaced
        return;
    }
    fail_everything(closed_error());
  }
  bool all_ended = true;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const auto& slot = slots_[i];
    if (!slot) continue;
    if (slot->state() == SlotState::ready) {
      dispatcher_.set_accepting(i, false);
      slot->stop();
    }
    // A worker still starting is stopped once it is ready, so its hooks run in pairs.
    all_ended &= slot->state() == SlotState::ended;
  }
  publish_health();
  if (!all_ended) return;
  state_ = State::closed;
  starter_.cancel_restarts();
  for (auto& w : shutdown_waiters_) complete_later(std::move(w), nullptr);
  shutdown_waiters_.clear();
}

void PoolCore::fail_pool(const std::string& message) {
  failure_ = std::make_exception_ptr(Error(errc::worker_start_failed, message));
  children_.close_and_kill_all();
  end_for_good(State::failed, failure_, failure_);
}

void PoolCore::end_for_good(State final_state, const std::exception_ptr& task_error,
                            const std::exception_ptr& shutdown_result) {
  state_ = final_state;
  for (const auto& slot : slots_)
    if (slot) slot->detach();
  starter_.cancel_restarts();
  fail_everything(task_error);
  publish_health();
  for (auto& w : shutdown_waiters_) complete_later(std::move(w), shutdown_result);
  shutdown_waiters_.clear();
}

void PoolCore::fail_everything(const std::exception_ptr& error) {
  for (auto& [id, task] : tasks_) complete_later(std::move(task.done), error);
  tasks_.clear();  // destroying the backoff timers cancels them
  backing_off_ = 0;
  dispatcher_.clear_waiting();
  for (auto& w : ready_waiters_) complete_later(std::move(w), error);
  ready_waiters_.clear();
}

void PoolCore::terminate() noexcept {
  children_.close_and_kill_all();
  if (strand_.running_in_this_thread()) return terminate_on_strand();
  asio::post(strand_, RunOrRelease<PoolCore>(shared_from_this(), &PoolCore::terminate_on_strand,
                                             &PoolCore::release_completions));
}

void PoolCore::release_completions() noexcept {
  // No handler of the pool runs any more, so its state may be touched from here. The workers
  // are dead already (terminate() killed them); the slots' and timers' pending handlers are
  // being destroyed with the io_context, so only the plain data is cleared.
  state_ = State::terminated;
  dispatcher_.clear_waiting();
  backing_off_ = 0;
  // Moved out first: a completion's destructor may reach back into the pool.
  auto tasks = std::move(tasks_);
  auto ready = std::move(ready_waiters_);
  auto shutdown = std::move(shutdown_waiters_);
  tasks_.clear();
  ready_waiters_.clear();
  shutdown_waiters_.clear();
}

void PoolCore::terminate_on_strand() noexcept {
  if (state_ == State::terminated || state_ == State::closed) return;
  // A failed pool's shutdown waiters hear why it failed; the others that it ended.
  const std::exception_ptr shutdown_result = state_ == State::failed ? failure_ : nullptr;
  end_for_good(State::terminated, aborted_error(), shutdown_result);
}

}  // namespace corun::detail
