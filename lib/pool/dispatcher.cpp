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
}

void Dispatcher::enqueue(std::uint64_t task) {
  queue_.push_back(task);
}

void Dispatcher::requeue(std::uint64_t task) {
  queue_.push_front(task);
}

bool Dispatcher::remove(std::uint64_t task) {
  const auto it = std::find(queue_.begin(), queue_.end(), task);
  if (it == queue_.end()) return false;
  queue_.erase(it);
  return true;
}

void Dispatcher::set_accepting(std::size_t w, bool accepting) {
  workers_.at(w).accepting = accepting;
}

std::optional<Dispatcher::Assignment> Dispatcher::next() {
  if (queue_.empty()) return std::nullopt;
  std::optional<std::size_t> best;
  for (std::size_t w = 0; w < workers_.size(); ++w) {
    const Load& load = workers_[w];
    if (!load.accepting || load.tasks >= depth(w)) continue;
    if (!best || load.tasks < workers_[*best].tasks) best = w;
  }
  if (!best) return std::nullopt;
  const std::uint64_t task = queue_.front();
  queue_.pop_front();
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
