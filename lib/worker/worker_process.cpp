/// \file
/// The loop a worker process runs.
/// Side: worker.
#include "worker/worker_process.hpp"

#include "base/diagnostics.hpp"
#include "data/segment_sweep.hpp"
#include "protocol/frame_ring.hpp"
#include "protocol/protocol.hpp"
#include "worker/task_runner.hpp"
#include "worker/worker_channel.hpp"
#include "worker/worker_memory.hpp"

#include <corun/diagnostics.hpp>
#include <corun/shared_array.hpp>
#include <corun/slice_view.hpp>
#include <corun/worker.hpp>
#include <corun/worker_info.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace {
/// Set once this process became a worker.
std::atomic<bool> is_worker_process{false};
}  // namespace

/// LeakSanitizer's hook, for sanitizer builds: in a worker, exit() comes from user code in the
/// middle of a task (the pool reports its status as a crash), and LeakSanitizer would replace
/// that status with its own; a worker forked from the launcher thread also looks to it like a
/// process whose other threads were not suspended, so it would report false leaks.
extern "C" CORUN_API int __lsan_is_turned_off() {
  return is_worker_process.load() ? 1 : 0;
}

namespace corun {

namespace detail {
namespace {

[[noreturn]] void die(const char* what, const std::string& detail_text) {
  diagnose("corun worker " + std::to_string(::getpid()) + ": " + what + ": " + detail_text);
  ::_exit(3);
}

/// The next message from the parent; nothing when the parent is gone.
std::optional<WorkerChannel::Frame> next_frame(WorkerChannel& channel) {
  try {
    return channel.read_frame();
  } catch (const std::exception& e) {
    die("bad message from parent", e.what());
  }
}

/// The parent's pidfd, readable once it has ended (-1 on kernels without pidfds).
int parent_pidfd = -1;
/// The parent's pid: the segments it made carry it in their names.
pid_t parent_pid = 0;

/// Blocks until the parent has ended, at most `timeout_ms` (-1: no limit).
void wait_for_parent(int timeout_ms) {
  if (parent_pidfd < 0) return;
  pollfd p{parent_pidfd, POLLIN, 0};
  while (::poll(&p, 1, timeout_ms) < 0 && errno == EINTR) {
  }
}

/// The parent died (SIGKILL, an uncaught exception, Ctrl-C) or dropped this worker. Its
/// segments' owner locks went with it: remove what it left, then end, even in the middle of
/// a task.
[[noreturn]] void parent_gone() {
  // The socket closes as the parent's descriptors are closed one by one, maybe before those
  // holding its segments' locks: wait until it has ended (it has, or it kills this worker).
  wait_for_parent(1000);
  sweep_after_owner_died(parent_pid, std::chrono::milliseconds(1000));
  ::_exit(0);
}

void send_or_exit(WorkerChannel& channel, proto::Kind kind, std::string_view body) {
  if (!channel.send_message(kind, body)) parent_gone();
}

/// Ends this worker as soon as `parent` ends, through a pidfd watched by a thread of its own:
/// the worker notices at once, busy or idle, and its life is tied to the parent process, not
/// to whichever parent thread started it (as PR_SET_PDEATHSIG would be).
void watch_parent(pid_t parent) {
  parent_pid = parent;
  parent_pidfd = static_cast<int>(::syscall(SYS_pidfd_open, parent, 0));
  if (parent_pidfd < 0 || ::getppid() != parent) {
    if (parent_pidfd < 0 && errno != ESRCH) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a kernel before 5.3: the best there is
      if (::getppid() == parent) return;
    }
    parent_gone();  // it is gone already
  }
  ::fcntl(parent_pidfd, F_SETFD, FD_CLOEXEC);
  std::thread([] {
    wait_for_parent(-1);
    parent_gone();
  }).detach();
}

/// Binds this process to the PUs in `list`; an empty string, or why it could not.
std::string bind_to_cpus(const std::string& list) {
  if (list.empty()) return {};
  cpu_set_t set;
  CPU_ZERO(&set);
  std::size_t pos = 0;
  while (pos < list.size()) {
    const std::size_t comma = list.find(',', pos);
    const int cpu = std::atoi(list.substr(pos, comma - pos).c_str());
    if (cpu >= 0 && cpu < CPU_SETSIZE) CPU_SET(cpu, &set);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  if (::sched_setaffinity(0, sizeof set, &set) != 0)
    return "cannot bind to PUs {" + list + "}: " + std::strerror(errno);
  return {};
}

[[noreturn]] void init_failed(WorkerChannel& channel, proto::InitFailure::Cause cause,
                              const std::string& why) {
  send_or_exit(channel, proto::Kind::init_failed, proto::encode_init_failure(cause, why));
  ::_exit(2);
}

void run_hook(const proto::FunctionRef& ref, const WorkerInfo& info) {
  if (ref.empty()) return;
  reinterpret_cast<WorkerHook>(proto::resolve_function(ref))(info);
}

}  // namespace

void worker_main(int fd, pid_t parent) {
  is_worker_process = true;
  // corun's messages go to this process's stderr, which the parent may be capturing.
  diagnose_to_stderr_only();
  watch_parent(parent);
  // Ctrl-C in a terminal reaches the whole process group; the parent decides what stops.
  std::signal(SIGINT, SIG_IGN);
  // A crash in `process` must end the worker with its signal, for the parent to report; the
  // host's crash handlers (a crash reporter, a test framework, a sanitizer) are not for it.
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTERM, SIGCHLD})
    std::signal(sig, SIG_DFL);

  // Programs the worker's code starts must not hold the channel open after the worker ends.
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  // A second without work: unmap segments whose owners removed them, so an idle worker does
  // not keep their memory.
  WorkerChannel channel(fd, [] { release_mappings(false); });
  {
    std::string hello;
    ByteWriter(hello).put<std::int32_t>(::getpid());
    send_or_exit(channel, proto::Kind::hello, hello);
  }
  auto first = next_frame(channel);
  if (!first) parent_gone();
  if (first->kind != proto::Kind::init) die("expected init", std::to_string(int(first->kind)));
  proto::Init init;
  try {
    init = proto::decode_init(first->body);
  } catch (const std::exception& e) {
    die("bad init message", e.what());
  }
  // cpu_pinning's binding is best effort (a container may forbid some PUs); cpu_sets' is not.
  if (const std::string failed = bind_to_cpus(init.cpu_binding);
      !failed.empty() && init.cpu_binding_required)
    init_failed(channel, proto::InitFailure::Cause::setup, failed + " (PoolOptions::cpu_sets)");
  // Before worker_init, so that the whole process lives under the limit, its init included.
  if (init.memory_limit != 0) {
    if constexpr (kAddressSanitizer) {
      diagnose("corun worker " + std::to_string(::getpid()) +
               ": PoolOptions::worker_memory_limit is not applied under AddressSanitizer, whose "
               "shadow memory takes terabytes of address space");
    } else if (const std::string failed = limit_address_space(init.memory_limit); !failed.empty()) {
      init_failed(channel, proto::InitFailure::Cause::setup,
                  "cannot apply PoolOptions::worker_memory_limit of " +
                      std::to_string(init.memory_limit) + " bytes: " + failed);
    }
  }
  // Nothing was written to stdout yet in this process (a forked one purged what it inherited).
  if (init.line_buffered_stdout) std::setvbuf(stdout, nullptr, _IOLBF, BUFSIZ);
  const WorkerInfo info{init.worker_id, ::getpid()};
  try {
    run_hook(init.worker_init, info);
  } catch (const std::exception& e) {
    init_failed(channel, proto::InitFailure::Cause::hook, e.what());
  } catch (...) {
    init_failed(channel, proto::InitFailure::Cause::hook, "worker_init threw a non-std::exception");
  }
  // Mapped before `ready`, so that a segment it cannot map is a failed start.
  detail::Segment rings;
  if (!init.ring_segment.empty()) try {
      rings = detail::Segment::attach(ArrayInfo{
          init.ring_segment, {2 * ring_bytes(init.ring_capacity)}, DType::of<std::uint8_t>()});
    } catch (const std::exception& e) {
      init_failed(channel, proto::InitFailure::Cause::setup,
                  std::string("cannot map the frame rings (PoolOptions::wait): ") + e.what());
    }
  send_or_exit(channel, proto::Kind::ready, {});
  if (rings.data())
    channel.use_rings(rings.data(), init.ring_capacity, std::chrono::nanoseconds(init.spin_ns),
                      init.spin_yields);

  TaskRunner runner(init.worker_id, init.max_result_bytes);
  std::optional<ResidentMemory> resident;
  if (init.max_rss != 0) resident.emplace();
  std::string out;
  bool shutdown_requested = false;
  while (auto frame = next_frame(channel)) {
    if (frame->kind == proto::Kind::shutdown) {
      shutdown_requested = true;
      break;
    }
    if (frame->kind == proto::Kind::spec || frame->kind == proto::Kind::forget) {
      try {
        if (frame->kind == proto::Kind::spec)
          runner.define(frame->body);
        else
          runner.forget(proto::decode_forget(frame->body));
      } catch (const std::exception& e) {
        die("bad spec message", e.what());
      }
      continue;
    }
    if (frame->kind != proto::Kind::task)
      die("unexpected message kind", std::to_string(int(frame->kind)));
    out.clear();
    if (init.report_starts && frame->body.size() >= sizeof(std::uint64_t))
      send_or_exit(channel, proto::Kind::started, frame->body.substr(0, sizeof(std::uint64_t)));
    try {
      runner.run(frame->body, out);
    } catch (const std::exception& e) {
      die("bad task message", e.what());
    }
    // A worker past its memory bound asks to be replaced once the tasks it has are done; one
    // that ran out of memory under its limit too, as its heap may be left fragmented.
    if ((resident && resident->bytes() > init.max_rss) ||
        (init.memory_limit != 0 && proto::result_status(out) == proto::Status::out_of_memory))
      proto::set_result_flags(out, proto::kRetireFlag);
    if (!channel.send_frame(out)) parent_gone();
  }
  if (!shutdown_requested) parent_gone();
  // The worker types' exit hooks, then the pool's: the reverse of their inits.
  runner.forget_all();
  try {
    run_hook(init.worker_exit, info);
  } catch (const std::exception& e) {
    diagnose("corun worker " + std::to_string(info.pid) + ": worker_exit threw: " + e.what());
  } catch (...) {
    diagnose("corun worker " + std::to_string(info.pid) +
             ": worker_exit threw a non-std::exception");
  }
  std::fflush(stdout);
  std::fflush(stderr);
  ::_exit(0);
}

}  // namespace detail

void enter_worker_if_spawned(int /*argc*/, char** /*argv*/) {
  const char* fd_text = std::getenv(detail::kWorkerFdEnv);
  if (fd_text == nullptr) return;
  const char* parent_text = std::getenv(detail::kParentPidEnv);
  const int fd = std::atoi(fd_text);
  const pid_t parent = parent_text ? static_cast<pid_t>(std::atol(parent_text)) : 0;
  // The worker's own children (if its code starts any) are not corun workers.
  ::unsetenv(detail::kWorkerFdEnv);
  ::unsetenv(detail::kParentPidEnv);
  detail::worker_main(fd, parent);
}

}  // namespace corun
