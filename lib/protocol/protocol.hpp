#pragma once
/// \file
/// The parent <-> worker protocol over a Unix stream socket: a fixed 16-byte header (magic,
/// version, kind, body length, reserved) then the body. Both sides validate every field.
/// Side: both.

#include "base/wire.hpp"

#include <corun/slice.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace corun::detail::proto {

inline constexpr std::uint32_t kMagic = 0x4e55524f;  // "ORUN" little-endian
inline constexpr std::uint16_t kVersion = 7;
inline constexpr std::size_t kHeaderSize = 16;
/// What a worker accepts from the parent: a task's spec is small, but its argument (a chunk of
/// async_map's inputs) may not be.
inline constexpr std::uint32_t kMaxRequestBody = 1u << 28;
/// Room a result frame keeps beside the result: its head, or a failure's texts.
inline constexpr std::uint32_t kResultFrameOverhead = 1u << 20;
/// The largest result a frame carries: a frame's length is a u32.
inline constexpr std::uint64_t kMaxResultBytes = 0xffffffffu - kResultFrameOverhead;

enum class Kind : std::uint16_t {
  hello = 1,        // worker -> parent: pid; sent first thing, before worker_init
  init = 2,         // parent -> worker: worker id, limits, hooks, cpu binding
  ready = 3,        // worker -> parent: worker_init done
  init_failed = 4,  // worker -> parent: its start failed (InitFailure)
  task = 5,         // parent -> worker
  result = 6,       // worker -> parent
  shutdown = 7,     // parent -> worker: run worker_exit, exit 0
  started = 8,      // worker -> parent: task id; the task begins now (when Init::report_starts)
  spec = 9,         // parent -> worker: spec id, encoded TaskSpec; sent before its first task
  forget = 10,      // parent -> worker: spec id; run its exit hooks and drop it
  // With frame rings (PoolOptions::wait spins), on the socket, either way, no body: look at the
  // ring. The parent's first one after `ready` also says that every later frame is in the ring.
  doorbell = 11,
  // In a frame ring, no body: the next frame is too large for the ring and comes on the socket.
  via_socket = 12,
};
inline constexpr std::uint16_t kLastKind = 12;
/// Specs a worker holds at once: the parent forgets the least recently used beyond it.
inline constexpr std::size_t kMaxSpecsAtWorker = 64;

struct Header {
  std::uint32_t magic;
  std::uint16_t version;
  Kind kind;
  std::uint32_t length;
  std::uint32_t reserved;
};
static_assert(sizeof(Header) == kHeaderSize);

inline void append_header(std::string& out, Kind kind, std::size_t body_length) {
  ByteWriter w(out);
  w.put(Header{kMagic, kVersion, kind, static_cast<std::uint32_t>(body_length), 0});
}

/// Parses and validates a header; throws std::invalid_argument naming the bad field.
inline Header parse_header(std::string_view bytes, std::uint32_t max_body) {
  ByteReader r(bytes.substr(0, kHeaderSize), "corun protocol header");
  Header h = r.get<Header>("header");
  if (h.magic != kMagic) r.fail("magic", "0x" + std::to_string(h.magic) + " is not corun's");
  if (h.version != kVersion)
    r.fail("version",
           std::to_string(h.version) + " (this side speaks " + std::to_string(kVersion) + ")");
  const auto k = static_cast<std::uint16_t>(h.kind);
  if (k < 1 || k > kLastKind) r.fail("kind", std::to_string(k));
  if (h.length > max_body)
    r.fail("length", std::to_string(h.length) + " exceeds " + std::to_string(max_body));
  if (h.reserved != 0) r.fail("reserved", std::to_string(h.reserved));
  return h;
}

/// A function reference that survives exec of the same program: which loaded object (by its
/// position in dl_iterate_phdr order and its name) and the offset inside it.
struct FunctionRef {
  std::uint32_t module = 0;
  std::uint64_t offset = 0;
  std::string module_name;
  bool empty() const noexcept { return offset == 0; }
};
FunctionRef function_ref(const void* function);
/// The address of `ref` in this process; throws std::runtime_error when it cannot be found.
void* resolve_function(const FunctionRef& ref);

struct Init {
  std::int32_t worker_id = 0;
  std::uint64_t max_result_bytes = 0;
  std::string cpu_binding;  // comma-separated PU OS indexes; empty: no binding
  /// A binding the user asked for (PoolOptions::cpu_sets): failing to apply it is a failed
  /// start. cpu_pinning's binding is best effort (a container may forbid some PUs).
  bool cpu_binding_required = false;
  /// PoolOptions::worker_memory_limit: RLIMIT_AS before worker_init; 0: none.
  std::uint64_t memory_limit = 0;
  /// PoolOptions::worker_max_rss: after each task, a resident size above it asks to retire.
  std::uint64_t max_rss = 0;
  FunctionRef worker_init;
  FunctionRef worker_exit;
  /// Send `started` before each task, so that task_timeout counts from there, not from the
  /// moment the parent sent the task (which may wait behind a busy core).
  bool report_starts = false;
  /// The parent captures the worker's output (PoolOptions::worker_output): make C stdout
  /// line-buffered, as on a terminal, so lines reach the parent as they are written.
  bool line_buffered_stdout = false;
  /// PoolOptions::wait spins: the segment holding the two frame rings (to the worker, then
  /// from it), each of `ring_capacity` data bytes; empty: the socket carries every frame.
  std::string ring_segment;
  std::uint64_t ring_capacity = 0;
  /// How long the worker spins on its ring for the next frame before it sleeps on the socket.
  std::uint64_t spin_ns = 0;
  /// Fewer cores than spinners: yield the core at each look, rather than pause.
  bool spin_yields = false;
};

/// out_of_memory: `process` threw std::bad_alloc (the parent decides whether a memory limit
/// caused it); the failure texts follow as for exception.
enum class Status : std::uint8_t { ok = 0, exception = 1, protocol = 2, out_of_memory = 3 };
inline constexpr std::uint8_t kLastStatus = 3;

/// ResultHead::flags bits.
/// The worker asks to be replaced once its tasks are done: its resident memory went past
/// Init::max_rss, or a task ran out of memory under Init::memory_limit.
inline constexpr std::uint8_t kRetireFlag = 1;
inline constexpr std::uint8_t kKnownResultFlags = kRetireFlag;

struct ResultHead {
  std::uint64_t task_id = 0;
  Status status = Status::ok;
  std::int64_t started_ns = 0;  // CLOCK_MONOTONIC, the clock of std::chrono::steady_clock
  std::int64_t finished_ns = 0;
  std::int32_t cpu_start = -1;
  std::int32_t cpu_end = -1;
  std::int64_t cpu_time_ns = 0;
  std::uint8_t flags = 0;  ///< kRetireFlag
};
/// Where ResultHead::flags sits in a result frame (header included): the last byte of the head.
inline constexpr std::size_t kResultFlagsOffset = kHeaderSize + 8 + 1 + 8 + 8 + 4 + 4 + 8;
/// Sets `flags` in the head of the result frame that `frame` starts with.
void set_result_flags(std::string& frame, std::uint8_t flags);
/// The status in the head of the result frame that `frame` starts with.
Status result_status(std::string_view frame);

std::string encode_init(const Init& init);
Init decode_init(std::string_view body);

/// Why a worker's start failed: u8 cause, then the message (the rest of the body).
struct InitFailure {
  enum class Cause : std::uint8_t {
    hook = 0,   ///< PoolOptions::worker_init threw: the message is its what()
    setup = 1,  ///< corun's own setup (cpu_sets binding, worker_memory_limit): says what failed
  };
  Cause cause = Cause::hook;
  std::string_view message;  ///< points into the body it was decoded from
};
std::string encode_init_failure(InitFailure::Cause cause, std::string_view message);
InitFailure decode_init_failure(std::string_view body);

/// Task body: u64 task id, u64 slice start, u64 slice end, u64 spec id (of a spec sent
/// before), then the argument (u32 length, bytes).
void append_task(std::string& out, std::uint64_t task_id, Slice slice, std::uint64_t spec_id,
                 std::string_view argument);
struct Task {
  std::uint64_t task_id = 0;
  Slice slice;
  std::uint64_t spec_id = 0;
  std::string_view argument;  ///< points into the body it was decoded from
};
Task decode_task(std::string_view body);

/// Spec body: u64 spec id, then the encoded TaskSpec (decoded by decode_spec).
void append_spec(std::string& out, std::uint64_t spec_id, std::string_view spec);
struct SpecDefinition {
  std::uint64_t spec_id = 0;
  std::string_view spec;  ///< points into the body it was decoded from
};
SpecDefinition decode_spec_message(std::string_view body);

/// Forget body: u64 spec id.
void append_forget(std::string& out, std::uint64_t spec_id);
std::uint64_t decode_forget(std::string_view body);

/// Result body: ResultHead fields, then the payload (ok) or two strings (exception type,
/// message).
void append_result_head(std::string& out, const ResultHead& head);
ResultHead decode_result_head(ByteReader& r);

/// A decoded result body. `payload` points into the body it was decoded from.
struct Result {
  ResultHead head;
  std::string_view payload;    ///< the encoded value (status ok)
  std::string exception_type;  ///< otherwise: what failed
  std::string message;
};
/// Throws std::invalid_argument naming the field when the head is malformed; malformed failure
/// texts become the message instead.
Result decode_result(std::string_view body);

}  // namespace corun::detail::proto
