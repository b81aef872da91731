/// \file
/// The map States a process keeps across maps, and running exit hooks.
/// Side: worker.
#include "worker/state_shelf.hpp"

#include "base/demangle.hpp"

#include <corun/detail/map_state.hpp>
#include <corun/diagnostics.hpp>

#include <algorithm>
#include <exception>
#include <stdexcept>
#include <string>

namespace corun::detail {

void run_finish(SpecCache& cache, const WorkerInfo& info, std::string_view what) noexcept {
  const auto finish = cache.finish;
  if (finish == nullptr) return;
  cache.finish = nullptr;
  const std::string who = "corun worker " + std::to_string(info.pid) + ": ";
  try {
    finish(cache, info);
  } catch (const std::exception& e) {
    diagnose(who + std::string(what) + " threw: " + e.what());
  } catch (...) {
    diagnose(who + std::string(what) + " threw a non-std::exception");
  }
}

StateShelf::StateShelf(std::size_t idle_capacity) : idle_capacity_(idle_capacity) {}

SpecCache& StateShelf::entry(const std::type_info& function, std::string_view encoded,
                             const std::shared_ptr<void>& params,
                             bool (*equal)(const void*, const void*), const WorkerInfo& info) {
  ++clock_;
  for (auto& e : entries_) {
    if (*e->function != function) continue;
    if (equal != nullptr ? equal(e->cache.params.get(), params.get()) : e->encoded == encoded) {
      e->last_use = clock_;
      return e->cache;
    }
  }
  // A new entry is once per (function, params) and process: the time to bound the idle ones.
  for (;;) {
    auto oldest = entries_.end();
    std::size_t idle_count = 0;
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (!idle(**it)) continue;
      ++idle_count;
      if (oldest == entries_.end() || (*it)->last_use < (*oldest)->last_use) oldest = it;
    }
    if (idle_count < idle_capacity_ || oldest == entries_.end()) break;
    run_finish((*oldest)->cache, info, "the exit hook of " + demangle((*oldest)->function->name()));
    entries_.erase(oldest);
  }
  auto made = std::make_unique<Entry>(
      Entry{&function, equal != nullptr ? std::string() : std::string(encoded), equal, {}, clock_});
  made->cache.params = params;
  entries_.push_back(std::move(made));
  return entries_.back()->cache;
}

void StateShelf::finish_all(const WorkerInfo& info) noexcept {
  for (auto& e : entries_)
    run_finish(e->cache, info, "the exit hook of " + demangle(e->function->name()));
  entries_.clear();
}

SpecCache& map_state_entry(const TaskContext& ctx, const std::type_info& function,
                           std::string_view encoded, const std::shared_ptr<void>& params,
                           ParamsEqual equal) {
  if (ctx.cache == nullptr || ctx.cache->shelf == nullptr)
    throw std::logic_error(
        "corun::map_function: the task runs outside a worker's task runner, "
        "which keeps the map states");
  return ctx.cache->shelf->entry(function, encoded, params, equal, ctx.worker_info());
}

}  // namespace corun::detail
