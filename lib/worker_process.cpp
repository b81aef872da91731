#include "worker_process.hpp"

#include "protocol.hpp"
#include "task_runner.hpp"

#include <corun/pool.hpp>
#include <corun/slice_view.hpp>
#include <corun/worker.hpp>

#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace corun {

namespace detail {
namespace {

[[noreturn]] void die(const char* what, const std::string& detail_text) {
  std::fprintf(stderr, "corun worker %d: %s: %s\n", static_cast<int>(::getpid()), what,
               detail_text.c_str());
  std::fflush(stderr);
  ::_exit(3);
}

/// Blocking, buffered framing over the worker's end of the socket.
class Channel {
 public:
  explicit Channel(int fd) : fd_(fd), buffer_(64 * 1024) {
    const timeval idle_check{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &idle_check, sizeof idle_check);
  }

  struct Frame {
    proto::Kind kind;
    std::string_view body;
  };

  /// The next frame, or nothing at EOF (the parent is gone).
  std::optional<Frame> read_frame() {
    if (begin_ == end_) begin_ = end_ = 0;
    if (!fill(proto::kHeaderSize)) return std::nullopt;
    proto::Header h;
    try {
      h = proto::parse_header({buffer_.data() + begin_, proto::kHeaderSize},
                              proto::kMaxRequestBody);
    } catch (const std::exception& e) {
      die("bad message from parent", e.what());
    }
    if (!fill(proto::kHeaderSize + h.length)) return std::nullopt;
    Frame f{h.kind, {buffer_.data() + begin_ + proto::kHeaderSize, h.length}};
    begin_ += proto::kHeaderSize + h.length;
    return f;
  }

  void write_all(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        ::_exit(0);  // the parent is gone: nobody is left to tell
      }
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  void send_message(proto::Kind kind, std::string_view body) {
    std::string frame;
    proto::append_header(frame, kind, body.size());
    frame.append(body);
    write_all(frame);
  }

 private:
  /// Ensures `n` bytes are buffered from begin_; false at EOF.
  bool fill(std::size_t n) {
    if (buffer_.size() - begin_ < n) {
      std::copy(buffer_.begin() + static_cast<std::ptrdiff_t>(begin_),
                buffer_.begin() + static_cast<std::ptrdiff_t>(end_), buffer_.begin());
      end_ -= begin_;
      begin_ = 0;
      if (buffer_.size() < n) buffer_.resize(n);
    }
    while (end_ - begin_ < n) {
      const ssize_t got = ::read(fd_, buffer_.data() + end_, buffer_.size() - end_);
      if (got == 0) return false;
      if (got < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          // A second without work: unmap segments whose owners removed them, so an idle
          // worker does not keep their memory.
          release_mappings(false);
          continue;
        }
        if (errno == EINTR) continue;
        return false;
      }
      end_ += static_cast<std::size_t>(got);
    }
    return true;
  }

  int fd_;
  std::vector<char> buffer_;
  std::size_t begin_ = 0, end_ = 0;
};

void bind_to_cpus(const std::string& list) {
  if (list.empty()) return;
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
  ::sched_setaffinity(0, sizeof set, &set);  // best effort: a container may forbid some PUs
}

void run_hook(const proto::FunctionRef& ref, const WorkerInfo& info) {
  if (ref.empty()) return;
  reinterpret_cast<WorkerHook>(proto::resolve_function(ref))(info);
}

}  // namespace

void worker_main(int fd, pid_t parent) {
  // Die with the parent; if it is already gone, do not start at all.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(1);
  // Ctrl-C in a terminal reaches the whole process group; the parent decides what stops.
  std::signal(SIGINT, SIG_IGN);
  // A crash in `process` must end the worker with its signal, for the parent to report; the
  // host's crash handlers (a crash reporter, a test framework, a sanitizer) are not for it.
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTERM, SIGCHLD})
    std::signal(sig, SIG_DFL);

  Channel channel(fd);
  {
    std::string hello;
    ByteWriter(hello).put<std::int32_t>(::getpid());
    channel.send_message(proto::Kind::hello, hello);
  }
  auto first = channel.read_frame();
  if (!first) ::_exit(0);
  if (first->kind != proto::Kind::init) die("expected init", std::to_string(int(first->kind)));
  proto::Init init;
  try {
    init = proto::decode_init(first->body);
  } catch (const std::exception& e) {
    die("bad init message", e.what());
  }
  bind_to_cpus(init.cpu_binding);
  const WorkerInfo info{init.worker_id, ::getpid()};
  try {
    run_hook(init.worker_init, info);
  } catch (const std::exception& e) {
    channel.send_message(proto::Kind::init_failed, e.what());
    ::_exit(2);
  } catch (...) {
    channel.send_message(proto::Kind::init_failed, "worker_init threw a non-std::exception");
    ::_exit(2);
  }
  channel.send_message(proto::Kind::ready, {});

  TaskRunner runner(init.worker_id, init.max_result_bytes);
  std::string out;
  while (auto frame = channel.read_frame()) {
    if (frame->kind == proto::Kind::shutdown) break;
    if (frame->kind != proto::Kind::task)
      die("unexpected message kind", std::to_string(int(frame->kind)));
    out.clear();
    try {
      runner.run(frame->body, out);
    } catch (const std::exception& e) {
      die("bad task message", e.what());
    }
    channel.write_all(out);
  }
  try {
    run_hook(init.worker_exit, info);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "corun worker %d: worker_exit threw: %s\n", info.pid, e.what());
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
