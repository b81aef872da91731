#pragma once
/// \file
/// TaskContext: what `process` may know about the task it runs (its rows, the arrays' metadata,
/// the run's parameters, the per-process state), and views of rows beyond its slice.
/// Side: worker.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/data_iterator.hpp>
#include <corun/dtype.hpp>
#include <corun/slice.hpp>
#include <corun/slice_view.hpp>
#include <corun/worker_info.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <type_traits>
#include <typeinfo>

namespace corun {

namespace detail {
class StateShelf;

/// What a worker process keeps for one spec (one worker object) while it holds the spec: the
/// decoded Params, the worker type's State, and whether its worker_init ran. The states of map
/// functions (corun/map_with_state.hpp) outlive specs: they are kept in the process's
/// StateShelf, in entries of this same type, and a map spec's cache shares its entry's state.
struct SpecCache {
  std::shared_ptr<void> params;  ///< a decoded Params, once the first task decoded it
  std::shared_ptr<void> state;   ///< the worker type's (or map function's) State, after init
  const std::type_info* state_type = nullptr;
  /// Runs the worker type's worker_exit (or the map function's exit hook); set once its init
  /// ran. Never set in a map spec's cache: its state's exit hook is its shelf entry's.
  void (*finish)(SpecCache& cache, const WorkerInfo& info) = nullptr;
  /// The map states of this process (lib/worker/state_shelf.hpp); set by whatever runs tasks.
  StateShelf* shelf = nullptr;
};
}  // namespace detail

/// What `process` may know about the task it runs.
struct CORUN_API TaskContext {
  int worker_id = 0;  ///< the worker process's slot in the pool, stable for a process
  /// Rows of this task in the array the worker was given: on a cluster, rows of the whole
  /// DistributedArray, as RunReport and process_callback count them.
  Slice slice;
  /// The same rows in the segment this process maps (`iterator`'s): `slice` itself, except on
  /// a cluster rank, whose segment holds only that rank's blocks of the array.
  Slice segment_rows;
  const DataIterator& iterator;                 ///< the metadata of the segment `process` reads
  const std::optional<ArrayInfo>& output_info;  ///< the output array, when the worker has one
  /// Which segments (inodes) the parent meant by the two names, 0 if unknown: lets a worker
  /// reuse its mappings without asking the file system on every task.
  std::uint64_t input_inode = 0;
  /// The output segment's inode, as input_inode.
  std::uint64_t output_inode = 0;
  /// The task's own encoded input (a chunk of async_map's inputs); empty for array workers.
  std::string_view argument{};
  /// The encoded parameters of the run (Worker's Params, MapOptions' params).
  std::string_view params{};
  /// What this process keeps for the task's spec (the decoded params, the state).
  detail::SpecCache* cache = nullptr;
  /// The largest encoded result the task may return (PoolOptions::max_result_bytes).
  std::size_t max_result_bytes = std::size_t{64} << 20;

  /// The per-process State of the worker type (see Worker) or of the map function (see
  /// corun::map_function): throws std::logic_error naming both types when S is not it, or
  /// saying so when there is none.
  template <class S>
  S& state() const {
    if (cache == nullptr || cache->state_type == nullptr || *cache->state_type != typeid(S))
      no_state(typeid(S));
    return *static_cast<S*>(cache->state.get());
  }
  /// This worker process, as hooks see it.
  WorkerInfo worker_info() const;

  /// The whole input segment, for stencil-style reads beyond the slice: the input array on one
  /// machine, this rank's blocks on a cluster.
  template <class T>
  SliceView<const T> array() const {
    return input_rows<const T>(Slice{0, iterator.size_of_data});
  }
  /// Rows `rows` of the input segment (what `process` receives is input_rows(segment_rows)).
  template <class T>
  SliceView<T> input_rows(Slice rows) const {
    return detail::adapt_rows<T>(
        detail::map_rows(iterator.shm_name, iterator.shm_shape, iterator.data_type,
                         DType::of<std::remove_const_t<T>>(), rows, input_inode));
  }
  /// This task's rows of the output array (the worker was constructed with one); tasks write
  /// disjoint rows, so no copy and no lock is needed.
  template <class T>
  SliceView<T> output() const {
    return output_rows<T>(segment_rows);
  }
  /// The whole output segment (on a cluster, this rank's blocks).
  template <class T>
  SliceView<T> output_array() const {
    return output_rows<T>(Slice{0, require_output().rows()});
  }

 private:
  template <class T>
  SliceView<T> output_rows(Slice rows) const {
    return detail::adapt_rows<T>(detail::map_rows(
        require_output(), DType::of<std::remove_const_t<T>>(), rows, output_inode));
  }
  const ArrayInfo& require_output() const;
  [[noreturn]] void no_state(const std::type_info& asked) const;
};

}  // namespace corun
