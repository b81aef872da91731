/// \file
/// The registry of worker types and map functions, in every process: the parent names a worker
/// type by the name it registered under, a worker finds the invoker by that name. Both are the
/// same program, so both registered the same names before main().
/// Side: both.
#include <corun/worker.hpp>

#include "base/demangle.hpp"

#include <corun/diagnostics.hpp>
#include <corun/error.hpp>

#include <cstdlib>
#include <string>
#include <typeinfo>
#include <unordered_map>

namespace corun::detail {

namespace {
struct Registry {
  std::unordered_map<std::string, TaskInvoker> by_name;
  std::unordered_map<const std::type_info*, std::string> names;  // type_info of the registrar
};
Registry& registry() {
  static Registry* r = new Registry;  // used from static initialisers of other objects
  return *r;
}
}  // namespace

bool register_worker(const char* name, const std::type_info& type, TaskInvoker invoker) {
  Registry& r = registry();
  auto [it, inserted] = r.by_name.emplace(name, invoker);
  if (!inserted && it->second != invoker) {
    diagnose(std::string("corun: CORUN_REGISTER_WORKER(") + name + ") names two different types");
    std::abort();
  }
  // The macro's name is the one the parent uses, whichever registration ran first.
  r.names.insert_or_assign(&type, name);
  return true;
}

bool register_worker_automatically(const std::type_info& type, TaskInvoker invoker) {
  Registry& r = registry();
  const std::string base = demangle(type.name());
  std::string name = base;
  for (int n = 2;; ++n) {
    auto [it, inserted] = r.by_name.emplace(name, invoker);
    if (inserted || it->second == invoker) break;
    name = base + "#" + std::to_string(n);
  }
  r.names.emplace(&type, name);
  return true;
}

const char* registered_name(const std::type_info& type) noexcept {
  const Registry& r = registry();
  if (auto it = r.names.find(&type); it != r.names.end()) return it->second.c_str();
  for (const auto& [info, name] : r.names)  // type_info objects may be duplicated across DSOs
    if (*info == type) return name.c_str();
  return nullptr;
}

const char* require_registered(const std::type_info& type) {
  if (const char* name = registered_name(type)) return name;
  const std::string t = demangle(type.name());
  throw Error(errc::worker_not_registered, "corun: worker type " + t +
                                               " is not registered: add CORUN_REGISTER_WORKER(" +
                                               t + ") at namespace scope in a source file");
}

TaskInvoker find_invoker(std::string_view name) noexcept {
  const Registry& r = registry();
  auto it = r.by_name.find(std::string(name));
  return it == r.by_name.end() ? nullptr : it->second;
}

}  // namespace corun::detail
