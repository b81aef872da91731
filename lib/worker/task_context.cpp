/// \file
/// What a task sees of its worker (worker side): its output array, its WorkerInfo and the
/// per-process State, with errors that say what the worker type declared instead.
/// Side: worker.
#include <corun/task_context.hpp>

#include "base/demangle.hpp"

#include <unistd.h>
#include <stdexcept>
#include <string>
#include <typeinfo>

namespace corun {

const ArrayInfo& TaskContext::require_output() const {
  if (!output_info)
    throw std::logic_error(
        "corun::TaskContext::output: this worker was constructed without an output array");
  return *output_info;
}

WorkerInfo TaskContext::worker_info() const {
  return WorkerInfo{worker_id, ::getpid()};
}

void TaskContext::no_state(const std::type_info& asked) const {
  std::string why = "corun::TaskContext::state<" + detail::demangle(asked.name()) + ">: ";
  // A map chunk always carries its inputs; an array worker's task carries none.
  const bool map = !argument.empty();
  if (cache == nullptr || cache->state_type == nullptr)
    why += map ? "the map function has no State: give async_map corun::map_function<&f, "
                 "&init_state> to build one"
               : "the worker type declares no State";
  else
    why += std::string(map ? "the map function's" : "the worker's") + " State is " +
           detail::demangle(cache->state_type->name());
  throw std::logic_error(why);
}

}  // namespace corun
