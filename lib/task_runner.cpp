/// \file
/// The worker registry, and running one task in this process.
#include "task_runner.hpp"

#include "demangle.hpp"

#include <corun/detail/map_engine.hpp>
#include <corun/error.hpp>
#include <corun/worker.hpp>

#include <sched.h>
#include <time.h>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <typeinfo>
#include <unordered_map>

namespace corun {

const ArrayInfo& TaskContext::require_output() const {
  if (!output_info)
    throw std::logic_error(
        "corun::TaskContext::output: this worker was constructed without an output array");
  return *output_info;
}

namespace detail {

// ---- registry ----

namespace {
struct Registry {
  std::unordered_map<std::string, TaskInvoker> by_name;
  std::unordered_map<const std::type_info*, std::string> names;  // type_info of the registrar
};
Registry& registry() {
  static Registry* r = new Registry;  // used from static initialisers of other objects
  return *r;
}

/// Sets the length field of the frame starting at `frame_start` to the bytes after its header.
void patch_frame_length(std::string& out, std::size_t frame_start) {
  const auto length = static_cast<std::uint32_t>(out.size() - frame_start - proto::kHeaderSize);
  std::memcpy(out.data() + frame_start + offsetof(proto::Header, length), &length, sizeof length);
}

std::int64_t monotonic_ns(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}
}  // namespace

bool register_worker(const char* name, const std::type_info& type, TaskInvoker invoker) {
  Registry& r = registry();
  auto [it, inserted] = r.by_name.emplace(name, invoker);
  if (!inserted && it->second != invoker) {
    std::fprintf(stderr, "corun: CORUN_REGISTER_WORKER(%s) names two different types\n", name);
    std::abort();
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

// ---- running ----

void run_task(std::uint64_t task_id, Slice slice, std::string_view argument,
              const DecodedSpec& spec, int worker_id, std::size_t max_result_bytes,
              std::string& out) {
  const std::size_t frame_start = out.size();
  proto::append_header(out, proto::Kind::result, 0);  // length patched below
  proto::ResultHead head;
  head.task_id = task_id;
  const std::size_t head_at = out.size();
  proto::append_result_head(out, head);
  const std::size_t payload_at = out.size();

  std::string exception_type, message;
  const TaskInvoker invoker = find_invoker(spec.worker_name);
  const std::int64_t cpu0 = monotonic_ns(CLOCK_THREAD_CPUTIME_ID);
  head.cpu_start = sched_getcpu();
  head.started_ns = monotonic_ns(CLOCK_MONOTONIC);
  if (invoker == nullptr) {
    head.status = proto::Status::protocol;
    exception_type = "corun::Error";
    message = "worker type '" + spec.worker_name +
              "' is not registered in the worker process (CORUN_REGISTER_WORKER missing there?)";
  } else if (slice.start > slice.end ||
             (spec.reads_array && slice.end > spec.iterator.size_of_data)) {
    head.status = proto::Status::protocol;
    exception_type = "std::invalid_argument";
    message = "slice [" + std::to_string(slice.start) + ", " + std::to_string(slice.end) +
              ") is outside the array of " + std::to_string(spec.iterator.size_of_data) + " rows";
  } else {
    try {
      const TaskContext ctx{worker_id,        slice,           spec.iterator,
                            spec.output,      spec.input_inode, spec.output_inode,
                            argument,         spec.params};
      invoker(ctx, out);
    } catch (const ItemFailure& e) {
      head.status = proto::Status::exception;
      exception_type = e.type_name();
      message = "input " + std::to_string(e.index()) + ": " + e.what();
    } catch (const std::exception& e) {
      head.status = proto::Status::exception;
      exception_type = demangle(typeid(e).name());
      message = e.what();
    } catch (...) {
      head.status = proto::Status::exception;
      exception_type = "unknown";
      message = "a non-std::exception was thrown";
    }
  }
  head.finished_ns = monotonic_ns(CLOCK_MONOTONIC);
  head.cpu_end = sched_getcpu();
  head.cpu_time_ns = monotonic_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;

  if (head.status == proto::Status::ok && out.size() - payload_at > max_result_bytes) {
    head.status = proto::Status::protocol;
    exception_type = "corun::Error";
    message = "result of " + std::to_string(out.size() - payload_at) +
              " bytes exceeds PoolOptions::max_result_bytes (" + std::to_string(max_result_bytes) +
              ")";
  }
  if (head.status != proto::Status::ok) {
    out.resize(payload_at);
    ByteWriter w(out);
    w.str(exception_type);
    w.str(message.size() > 65536 ? message.substr(0, 65536) : message);
  }
  std::string patched_head;
  proto::append_result_head(patched_head, head);
  out.replace(head_at, patched_head.size(), patched_head);
  patch_frame_length(out, frame_start);
}

void TaskRunner::run(std::string_view body, std::string& out) {
  ByteReader r(body, "corun task message");
  const auto task_id = r.get<std::uint64_t>("task_id");
  const Slice slice{r.get<std::uint64_t>("slice_start"), r.get<std::uint64_t>("slice_end")};
  const std::string_view argument = r.str("argument", proto::kMaxRequestBody);
  const std::string_view spec_bytes = r.rest();
  if (!last_spec_ || spec_bytes != last_spec_bytes_) {
    last_spec_.reset();
    try {
      last_spec_ = decode_spec(spec_bytes);
      last_spec_bytes_.assign(spec_bytes);
    } catch (const std::exception& e) {
      // A malformed spec fails this task only: report it as a protocol result.
      const std::size_t frame_start = out.size();
      proto::append_header(out, proto::Kind::result, 0);
      proto::append_result_head(out, {task_id, proto::Status::protocol});
      ByteWriter w(out);
      w.str("std::invalid_argument");
      w.str(e.what());
      patch_frame_length(out, frame_start);
      return;
    }
  }
  run_task(task_id, slice, argument, *last_spec_, worker_id_, max_result_bytes_, out);
}

}  // namespace detail
}  // namespace corun
