#pragma once
/// \file
/// The worker's side of a map function: how its invoker is registered under a name the parent
/// sends (every process registers the same names at start-up), and how an input's failure is
/// named. Defined in lib/worker/map_registry.cpp; the parent's map engine never includes it.
/// Side: worker.

#include <corun/detail/config.hpp>
#include <corun/detail/export.hpp>

#include <corun/worker.hpp>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <typeinfo>

namespace corun::detail {

/// The type and what() of the exception being handled (call it in a catch block): "unknown"
/// and a sentence saying so when it is not a std::exception.
CORUN_API void describe_current_exception(std::string& type, std::string& message);

/// Thrown by a reduction's invoker when the reduction itself throws while folding one input's
/// result (the chunk's partial is gone with it): the task fails with the original exception's
/// type and a message that names the input's index.
class CORUN_API ItemFailure : public std::runtime_error {
 public:
  ItemFailure(std::size_t index, std::string type_name, const std::string& what);
  std::size_t index() const noexcept { return index_; }
  const std::string& type_name() const noexcept { return type_name_; }

 private:
  std::size_t index_;
  std::string type_name_;
};

/// Registers a map function's invoker under the readable name of `type` (the class template
/// specialisation that holds it), in this process; returns that name.
CORUN_API const char* register_function(const std::type_info& type, TaskInvoker invoker);

}  // namespace corun::detail
