/// \file
/// The worker's side of a map function (child side, though every process registers the names at
/// start-up): its invoker's registration under a readable name, and how an input's failure is
/// named in the chunk's reply.
/// Side: worker.
#include <corun/detail/map_registry.hpp>

#include "base/demangle.hpp"

#include <exception>
#include <string>
#include <typeinfo>
#include <utility>

namespace corun::detail {

void describe_current_exception(std::string& type, std::string& message) {
  try {
    throw;
  } catch (const std::exception& e) {
    type = demangle(typeid(e).name());
    message = e.what();
  } catch (...) {
    type = "unknown";
    message = "a non-std::exception was thrown";
  }
}

ItemFailure::ItemFailure(std::size_t index, std::string type_name, const std::string& what)
    : std::runtime_error(what), index_(index), type_name_(std::move(type_name)) {}

const char* register_function(const std::type_info& type, TaskInvoker invoker) {
  const std::string name = demangle(type.name());
  register_worker(name.c_str(), type, invoker);
  return registered_name(type);
}

}  // namespace corun::detail
