/// \file
/// Which specs a worker holds.
/// Side: parent.
#include "pool/spec_book.hpp"

#include <algorithm>
#include <stdexcept>

namespace corun::detail {

SpecBook::SpecBook(std::size_t capacity) : capacity_(capacity) {
  if (capacity_ == 0) throw std::invalid_argument("corun::SpecBook: capacity 0");
}

SpecBook::Plan SpecBook::use(const std::shared_ptr<const TaskSpec>& spec) {
  Plan plan;
  ++clock_;
  if (auto it = held_.find(spec->id); it != held_.end()) {
    it->second.last_use = clock_;
    if (it->second.raw == spec.get()) return plan;
    // Another spec under the same id (one made by hand, not numbered by make_task_spec): the
    // worker replaces what it holds under that id.
    it->second.spec = spec;
    it->second.raw = spec.get();
    plan.send = true;
    return plan;
  }
  // A new spec is rare (once per worker object and worker): the time to drop what the parent
  // no longer has, so the worker runs its exit hooks and frees its state.
  for (auto it = held_.begin(); it != held_.end();) {
    if (it->second.spec.expired()) {
      plan.forget.push_back(it->first);
      it = held_.erase(it);
    } else {
      ++it;
    }
  }
  std::sort(plan.forget.begin(), plan.forget.end());
  if (held_.size() >= capacity_) {
    auto oldest = held_.begin();
    for (auto it = held_.begin(); it != held_.end(); ++it)
      if (it->second.last_use < oldest->second.last_use) oldest = it;
    plan.forget.push_back(oldest->first);
    held_.erase(oldest);
  }
  held_.emplace(spec->id, Held{spec, spec.get(), clock_});
  plan.send = true;
  return plan;
}

}  // namespace corun::detail
