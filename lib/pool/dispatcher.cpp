/// \file
/// The pool's scheduling decisions.
/// Side: parent.
#include "pool/dispatcher.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace corun::detail {

Dispatcher::Dispatcher(std::size_t workers, Depth depth) : depth_(depth), workers_(workers) {
  if (depth_.min == 0 || depth_.max < depth_.min)
    throw std::invalid_argument("corun::Dispatcher: depth [" + std::to_string(depth_.min) + ", " +
                                std::to_string(depth_.max) + "] is empty");
  if (depth_.max_bypass == 0)
    throw std::invalid_argument("corun::Dispatcher: max_bypass = 0: must be at least 1");
  levels_.reserve(4);
  levels_.push_back(Level{});  // the default priority
}

Dispatcher::Level& Dispatcher::level(int priority) {
  auto it = std::find_if(levels_.begin(), levels_.end(),
                         [priority](const Level& l) { return l.priority <= priority; });
  if (it != levels_.end() && it->priority == priority) return *it;
  // A new priority. Drop the empty levels first once there are many, so a program that uses
  // ever new priorities does not grow the scan of next() for ever.
  if (levels_.size() >= 16) {
    std::erase_if(levels_, [](const Level& l) { return l.queue.empty(); });
    it = std::find_if(levels_.begin(), levels_.end(),
                      [priority](const Level& l) { return l.priority <= priority; });
  }
  Level made;
  made.priority = priority;
  return *levels_.insert(it, std::move(made));
}

void Dispatcher::enqueue(std::uint64_t task, int priority) {
  level(priority).queue.push_back(task);
  ++waiting_;
}

void Dispatcher::requeue(std::uint64_t task, int priority) {
  level(priority).queue.push_front(task);
  ++waiting_;
}

bool Dispatcher::remove(std::uint64_t task) {
  for (Level& l : levels_) {
    const auto it = std::find(l.queue.begin(), l.queue.end(), task);
    if (it == l.queue.end()) continue;
    l.queue.erase(it);
    if (l.queue.empty()) l.bypassed = 0;
    --waiting_;
    return true;
  }
  return false;
}

void Dispatcher::clear_waiting() noexcept {
  for (Level& l : levels_) {
    l.queue.clear();
    l.bypassed = 0;
  }
  waiting_ = 0;
}

std::size_t Dispatcher::due_level() const noexcept {
  std::size_t chosen = levels_.size();
  for (std::size_t i = 0; i < levels_.size(); ++i) {
    const Level& l = levels_[i];
    if (l.queue.empty()) continue;
    if (chosen == levels_.size()) {
      chosen = i;  // the highest priority waiting
    } else if (l.bypassed >= depth_.max_bypass && l.bypassed > levels_[chosen].bypassed) {
      chosen = i;  // starved: passed over more often than the one chosen so far
    }
  }
  return chosen;
}

void Dispatcher::set_accepting(std::size_t w, bool accepting) {
  workers_.at(w).accepting = accepting;
}

std::optional<Dispatcher::Assignment> Dispatcher::next() {
  if (waiting_ == 0) return std::nullopt;
  std::optional<std::size_t> best;
  for (std::size_t w = 0; w < workers_.size(); ++w) {
    const Load& load = workers_[w];
    if (!load.accepting || load.tasks >= depth(w)) continue;
    if (!best || load.tasks < workers_[*best].tasks) best = w;
  }
  if (!best) return std::nullopt;
  const std::size_t chosen = levels_.size() == 1 ? 0 : due_level();
  Level& from = levels_[chosen];
  const std::uint64_t task = from.queue.front();
  from.queue.pop_front();
  from.bypassed = 0;
  --waiting_;
  if (levels_.size() > 1)
    for (Level& l : levels_)
      if (&l != &from && !l.queue.empty()) ++l.bypassed;
  ++workers_[*best].tasks;
  return Assignment{task, *best};
}

void Dispatcher::finished(std::size_t w, std::chrono::nanoseconds took) {
  Load& load = workers_.at(w);
  if (load.tasks > 0) --load.tasks;
  load.mean_task_time =
      load.mean_task_time.count() == 0 ? took : (load.mean_task_time * 7 + took) / 8;
}

void Dispatcher::reset(std::size_t w) {
  workers_.at(w) = Load{};
}

std::size_t Dispatcher::depth(std::size_t w) const {
  const Load& load = workers_.at(w);
  if (load.mean_task_time.count() == 0) return depth_.min;
  const auto wanted = static_cast<std::size_t>(
      depth_.queued_work / std::max(load.mean_task_time, std::chrono::nanoseconds(1000)));
  return std::clamp(wanted, depth_.min, depth_.max);
}

}  // namespace corun::detail
