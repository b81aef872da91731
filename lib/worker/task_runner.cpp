/// \file
/// Running one task in this process (the worker side, and the serial pool in the parent): the
/// specs the parent sent, the task's context, its work and cpu times, its reply frame.
/// Side: worker.
#include "worker/task_runner.hpp"

#include "base/demangle.hpp"

#include <corun/detail/map_registry.hpp>
#include <corun/diagnostics.hpp>
#include <corun/error.hpp>
#include <corun/worker.hpp>

#include <sched.h>
#include <time.h>
#include <unistd.h>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <typeinfo>

namespace corun::detail {

namespace {
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

void run_task(std::uint64_t task_id, Slice slice, std::string_view argument,
              const DecodedSpec& spec, SpecCache& cache, int worker_id,
              std::size_t max_result_bytes, std::string& out) {
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
      const Slice rows = spec.block_map ? spec.block_map->to_global(slice) : slice;
      const TaskContext ctx{worker_id,
                            rows,
                            slice,
                            spec.iterator,
                            spec.output,
                            spec.input_inode,
                            spec.output_inode,
                            argument,
                            spec.params,
                            &cache,
                            max_result_bytes};
      invoker(ctx, out);
    } catch (const ItemFailure& e) {
      head.status = proto::Status::exception;
      exception_type = e.type_name();
      message = "input " + std::to_string(e.index()) + ": " + e.what();
    } catch (const std::bad_array_new_length& e) {
      // A bad size, not a lack of memory.
      head.status = proto::Status::exception;
      exception_type = demangle(typeid(e).name());
      message = e.what();
    } catch (const std::bad_alloc& e) {
      // The parent knows whether a memory limit was set, and says so.
      head.status = proto::Status::out_of_memory;
      exception_type = demangle(typeid(e).name());
      message = e.what();
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

namespace {
/// A result frame saying the task could not run at all.
void append_protocol_failure(std::string& out, std::uint64_t task_id, std::string_view type,
                             std::string_view message) {
  const std::size_t frame_start = out.size();
  proto::append_header(out, proto::Kind::result, 0);
  proto::append_result_head(out, {task_id, proto::Status::protocol});
  ByteWriter w(out);
  w.str(type);
  w.str(message);
  patch_frame_length(out, frame_start);
}
}  // namespace

void TaskRunner::define(std::string_view body) {
  const proto::SpecDefinition definition = proto::decode_spec_message(body);
  Entry entry;
  try {
    entry.spec = decode_spec(definition.spec);
  } catch (const std::exception& e) {
    // A malformed spec fails its tasks only.
    entry.error = e.what();
  }
  store(definition.spec_id, std::move(entry));
}

void TaskRunner::define(std::uint64_t spec_id, DecodedSpec spec) {
  Entry entry;
  entry.spec = std::move(spec);
  store(spec_id, std::move(entry));
}

void TaskRunner::store(std::uint64_t spec_id, Entry entry) {
  forget(spec_id);
  if (specs_.size() >= proto::kMaxSpecsAtWorker)
    throw std::invalid_argument("corun spec message: spec " + std::to_string(spec_id) +
                                " is one more than the " +
                                std::to_string(proto::kMaxSpecsAtWorker) + " a worker holds");
  entry.cache.shelf = &shelf_;
  specs_.emplace(spec_id, std::move(entry));
}

void TaskRunner::forget(std::uint64_t spec_id) {
  auto node = specs_.extract(spec_id);
  if (node.empty()) return;
  SpecCache& cache = node.mapped().cache;
  if (cache.finish == nullptr) return;
  run_finish(cache, WorkerInfo{worker_id_, ::getpid()},
             "worker_exit of " + node.mapped().spec->worker_name);
}

void TaskRunner::forget_all() {
  while (!specs_.empty()) forget(specs_.begin()->first);
  shelf_.finish_all(WorkerInfo{worker_id_, ::getpid()});
}

void TaskRunner::run(std::string_view body, std::string& out) {
  run(proto::decode_task(body), out);
}

void TaskRunner::run(const proto::Task& task, std::string& out) {
  const auto it = specs_.find(task.spec_id);
  if (it == specs_.end())
    return append_protocol_failure(
        out, task.task_id, "corun::Error",
        "spec " + std::to_string(task.spec_id) + " was not sent to this worker before its task");
  Entry& entry = it->second;
  if (!entry.spec)
    return append_protocol_failure(out, task.task_id, "std::invalid_argument", entry.error);
  run_task(task.task_id, task.slice, task.argument, *entry.spec, entry.cache, worker_id_,
           max_result_bytes_, out);
}

}  // namespace corun::detail
