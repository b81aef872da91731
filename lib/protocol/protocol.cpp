/// \file
/// Encoding and decoding the parent <-> worker messages.
/// Side: both.
#include "protocol/protocol.hpp"

#include <dlfcn.h>
#include <link.h>
#include <stdexcept>

namespace corun::detail::proto {

namespace {
struct ModuleSearch {
  std::uintptr_t address = 0;
  std::uint32_t index = 0;
  std::optional<FunctionRef> found;
};

int find_module(dl_phdr_info* info, std::size_t, void* data) {
  auto* s = static_cast<ModuleSearch*>(data);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    const std::uintptr_t begin = info->dlpi_addr + ph.p_vaddr;
    if (s->address >= begin && s->address < begin + ph.p_memsz) {
      s->found = FunctionRef{s->index, s->address - info->dlpi_addr,
                             info->dlpi_name ? info->dlpi_name : ""};
      return 1;
    }
  }
  ++s->index;
  return 0;
}

struct ModuleLookup {
  const FunctionRef* ref;
  std::uint32_t index = 0;
  void* address = nullptr;
  std::string name_seen;
};

int lookup_module(dl_phdr_info* info, std::size_t, void* data) {
  auto* s = static_cast<ModuleLookup*>(data);
  if (s->index++ != s->ref->module) return 0;
  s->name_seen = info->dlpi_name ? info->dlpi_name : "";
  if (s->name_seen == s->ref->module_name)
    s->address = reinterpret_cast<void*>(info->dlpi_addr + s->ref->offset);
  return 1;
}

void put_ref(ByteWriter& w, const FunctionRef& ref) {
  w.put(ref.module);
  w.put(ref.offset);
  w.str(ref.module_name);
}

FunctionRef get_ref(ByteReader& r, const char* field) {
  FunctionRef ref;
  ref.module = r.get<std::uint32_t>(field);
  ref.offset = r.get<std::uint64_t>(field);
  ref.module_name = std::string(r.str(field, 4096));
  return ref;
}
}  // namespace

FunctionRef function_ref(const void* function) {
  if (function == nullptr) return {};
  ModuleSearch s;
  s.address = reinterpret_cast<std::uintptr_t>(function);
  dl_iterate_phdr(&find_module, &s);
  if (!s.found) throw std::invalid_argument("corun: hook function is not in any loaded object");
  return *s.found;
}

void* resolve_function(const FunctionRef& ref) {
  ModuleLookup s{&ref, 0, nullptr, {}};
  dl_iterate_phdr(&lookup_module, &s);
  if (s.address == nullptr)
    throw std::runtime_error("corun: cannot find hook function in module #" +
                             std::to_string(ref.module) + " '" + ref.module_name +
                             "' of the worker (found '" + s.name_seen + "')");
  return s.address;
}

std::string encode_init(const Init& init) {
  std::string body;
  ByteWriter w(body);
  w.put(init.worker_id);
  w.put(init.max_result_bytes);
  w.str(init.cpu_binding);
  put_ref(w, init.worker_init);
  put_ref(w, init.worker_exit);
  w.put<std::uint8_t>(init.report_starts);
  w.put<std::uint8_t>(init.line_buffered_stdout);
  w.put<std::uint8_t>(init.cpu_binding_required);
  w.put(init.memory_limit);
  w.put(init.max_rss);
  w.str(init.ring_segment);
  w.put(init.ring_capacity);
  w.put(init.spin_ns);
  w.put<std::uint8_t>(init.spin_yields);
  return body;
}

Init decode_init(std::string_view body) {
  ByteReader r(body, "corun init message");
  Init init;
  init.worker_id = r.get<std::int32_t>("worker_id");
  init.max_result_bytes = r.get<std::uint64_t>("max_result_bytes");
  init.cpu_binding = std::string(r.str("cpu_binding", 65536));
  init.worker_init = get_ref(r, "worker_init");
  init.worker_exit = get_ref(r, "worker_exit");
  const auto report_starts = r.get<std::uint8_t>("report_starts");
  if (report_starts > 1) r.fail("report_starts", std::to_string(report_starts));
  init.report_starts = report_starts == 1;
  const auto line_buffered = r.get<std::uint8_t>("line_buffered_stdout");
  if (line_buffered > 1) r.fail("line_buffered_stdout", std::to_string(line_buffered));
  init.line_buffered_stdout = line_buffered == 1;
  const auto required = r.get<std::uint8_t>("cpu_binding_required");
  if (required > 1) r.fail("cpu_binding_required", std::to_string(required));
  init.cpu_binding_required = required == 1;
  init.memory_limit = r.get<std::uint64_t>("memory_limit");
  init.max_rss = r.get<std::uint64_t>("max_rss");
  init.ring_segment = std::string(r.str("ring_segment", 255));
  init.ring_capacity = r.get<std::uint64_t>("ring_capacity");
  if (!init.ring_segment.empty() &&
      (init.ring_capacity < 4096 || (init.ring_capacity & (init.ring_capacity - 1)) != 0 ||
       init.ring_capacity > (std::uint64_t{1} << 30)))
    r.fail("ring_capacity",
           std::to_string(init.ring_capacity) + " is not a power of two from 4096 to 2^30");
  init.spin_ns = r.get<std::uint64_t>("spin_ns");
  const auto yields = r.get<std::uint8_t>("spin_yields");
  if (yields > 1) r.fail("spin_yields", std::to_string(yields));
  init.spin_yields = yields == 1;
  r.expect_end();
  return init;
}

std::string encode_init_failure(InitFailure::Cause cause, std::string_view message) {
  std::string body;
  ByteWriter w(body);
  w.put(cause);
  w.bytes(message);
  return body;
}

InitFailure decode_init_failure(std::string_view body) {
  ByteReader r(body, "corun init_failed message");
  InitFailure failure;
  failure.cause = r.get<InitFailure::Cause>("cause");
  if (static_cast<std::uint8_t>(failure.cause) > 1)
    r.fail("cause", std::to_string(static_cast<int>(failure.cause)));
  failure.message = r.rest();
  return failure;
}

void append_task(std::string& out, std::uint64_t task_id, Slice slice, std::uint64_t spec_id,
                 std::string_view argument) {
  append_header(out, Kind::task,
                4 * sizeof(std::uint64_t) + sizeof(std::uint32_t) + argument.size());
  ByteWriter w(out);
  w.put(task_id);
  w.put<std::uint64_t>(slice.start);
  w.put<std::uint64_t>(slice.end);
  w.put(spec_id);
  w.str(argument);
}

Task decode_task(std::string_view body) {
  ByteReader r(body, "corun task message");
  Task task;
  task.task_id = r.get<std::uint64_t>("task_id");
  task.slice.start = r.get<std::uint64_t>("slice_start");
  task.slice.end = r.get<std::uint64_t>("slice_end");
  task.spec_id = r.get<std::uint64_t>("spec_id");
  task.argument = r.str("argument", kMaxRequestBody);
  r.expect_end();
  return task;
}

void append_spec(std::string& out, std::uint64_t spec_id, std::string_view spec) {
  append_header(out, Kind::spec, sizeof(std::uint64_t) + spec.size());
  ByteWriter w(out);
  w.put(spec_id);
  w.bytes(spec);
}

SpecDefinition decode_spec_message(std::string_view body) {
  ByteReader r(body, "corun spec message");
  SpecDefinition definition;
  definition.spec_id = r.get<std::uint64_t>("spec_id");
  definition.spec = r.rest();
  return definition;
}

void append_forget(std::string& out, std::uint64_t spec_id) {
  append_header(out, Kind::forget, sizeof(std::uint64_t));
  ByteWriter(out).put(spec_id);
}

std::uint64_t decode_forget(std::string_view body) {
  ByteReader r(body, "corun forget message");
  const auto id = r.get<std::uint64_t>("spec_id");
  r.expect_end();
  return id;
}

void append_result_head(std::string& out, const ResultHead& head) {
  ByteWriter w(out);
  w.put(head.task_id);
  w.put(head.status);
  w.put(head.started_ns);
  w.put(head.finished_ns);
  w.put(head.cpu_start);
  w.put(head.cpu_end);
  w.put(head.cpu_time_ns);
  w.put(head.flags);
}

void set_result_flags(std::string& frame, std::uint8_t flags) {
  if (frame.size() <= kResultFlagsOffset)
    throw std::logic_error("corun: set_result_flags on a frame of " + std::to_string(frame.size()) +
                           " bytes, shorter than a result head");
  frame[kResultFlagsOffset] = static_cast<char>(flags);
}

Status result_status(std::string_view frame) {
  if (frame.size() <= kResultFlagsOffset)
    throw std::logic_error("corun: result_status of a frame of " + std::to_string(frame.size()) +
                           " bytes, shorter than a result head");
  return static_cast<Status>(frame[kHeaderSize + sizeof(std::uint64_t)]);
}

ResultHead decode_result_head(ByteReader& r) {
  ResultHead h;
  h.task_id = r.get<std::uint64_t>("task_id");
  h.status = r.get<Status>("status");
  if (static_cast<std::uint8_t>(h.status) > kLastStatus)
    r.fail("status", std::to_string(static_cast<int>(h.status)));
  h.started_ns = r.get<std::int64_t>("started_ns");
  h.finished_ns = r.get<std::int64_t>("finished_ns");
  h.cpu_start = r.get<std::int32_t>("cpu_start");
  h.cpu_end = r.get<std::int32_t>("cpu_end");
  h.cpu_time_ns = r.get<std::int64_t>("cpu_time_ns");
  h.flags = r.get<std::uint8_t>("flags");
  if ((h.flags & ~kKnownResultFlags) != 0) r.fail("flags", std::to_string(int{h.flags}));
  return h;
}

Result decode_result(std::string_view body) {
  ByteReader r(body, "corun result message");
  Result result;
  result.head = decode_result_head(r);
  if (result.head.status == Status::ok) {
    result.payload = r.rest();
    return result;
  }
  try {
    result.exception_type = std::string(r.str("exception_type", 1u << 20));
    result.message = std::string(r.str("message", 1u << 20));
  } catch (const std::exception& e) {
    result.message = e.what();
  }
  return result;
}

}  // namespace corun::detail::proto
