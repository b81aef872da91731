#pragma once
/// \file
/// StateShelf: the States of corun::map_function a process (or a serial pool's slot) keeps,
/// keyed by (function, encoded params), so that they outlive the specs of the maps that built
/// them; a bounded number of idle ones, the least recently used dropped first, its exit hook
/// run. And running a cache's exit hook, reporting what it throws.
/// Side: worker.

#include <corun/task_context.hpp>
#include <corun/worker_info.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

namespace corun::detail {

/// Runs `cache.finish` (if set) once, reporting an exception through corun/diagnostics.hpp as
/// "corun worker <pid>: <what> threw: ...", `what` naming the hook.
void run_finish(SpecCache& cache, const WorkerInfo& info, std::string_view what) noexcept;

class StateShelf {
 public:
  /// Keeps at most `idle_capacity` entries whose State no spec uses.
  explicit StateShelf(std::size_t idle_capacity);
  StateShelf(const StateShelf&) = delete;
  StateShelf& operator=(const StateShelf&) = delete;

  /// The entry of (function, params), made empty when there is none; making one first drops
  /// the least recently used idle entries beyond the capacity (running their exit hooks). The
  /// reference stays valid until the entry is dropped, which it is not while a spec shares its
  /// State.
  /// `params` owns the params' value (kept in the new entry's cache), compared with `equal`
  /// when it is set, else by the bytes `encoded`.
  SpecCache& entry(const std::type_info& function, std::string_view encoded,
                   const std::shared_ptr<void>& params, bool (*equal)(const void*, const void*),
                   const WorkerInfo& info);
  /// Runs every entry's exit hook, oldest first, and drops them all (before the process exits).
  void finish_all(const WorkerInfo& info) noexcept;
  std::size_t size() const noexcept { return entries_.size(); }

 private:
  struct Entry {
    const std::type_info* function;
    std::string encoded;                      // the key when `equal` is null
    bool (*equal)(const void*, const void*);  // compares cache.params with other params
    SpecCache cache;
    std::uint64_t last_use = 0;
  };
  static bool idle(const Entry& e) noexcept { return e.cache.state.use_count() <= 1; }

  std::size_t idle_capacity_;
  std::uint64_t clock_ = 0;
  std::vector<std::unique_ptr<Entry>> entries_;  // oldest first
};

}  // namespace corun::detail
