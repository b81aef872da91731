#include <corun/pool.hpp>

#include "protocol.hpp"
#include "task_runner.hpp"
#include "topology.hpp"
#include "worker_process.hpp"

#include <asio/bind_executor.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/write.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <stdio_ext.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <iterator>
#include <stdexcept>

extern char** environ;

namespace corun {

const char* to_string(TaskOutcome outcome) noexcept {
  switch (outcome) {
    case TaskOutcome::ok:
      return "ok";
    case TaskOutcome::exception:
      return "exception";
    case TaskOutcome::crashed:
      return "crashed";
    case TaskOutcome::timeout:
      return "timeout";
    case TaskOutcome::protocol:
      return "protocol";
    case TaskOutcome::cancelled:
      return "cancelled";
  }
  return "unknown";
}

namespace detail {

namespace {
using Clock = std::chrono::steady_clock;
using Socket = asio::local::stream_protocol::socket;

struct Task {
  std::uint64_t id = 0;
  std::shared_ptr<const TaskSpec> spec;
  Slice slice;
  std::unique_ptr<TaskCompletion> done;
  Clock::time_point submitted;
  int attempts = 0;
  bool abandoned = false;  // cancelled while at a worker: its result is discarded
};
using TaskPtr = std::unique_ptr<Task>;

/// One worker process (or, in a serial pool, the in-process stand-in).
struct Proc {
  enum class State { starting, initializing, ready, stopping, dead };
  Proc(const asio::strand<asio::any_io_executor>& strand, int slot_)
      : slot(slot_), socket(strand), pidfd(strand), timer(strand) {}

  int slot;
  pid_t pid = 0;
  State state = State::starting;
  Socket socket;
  asio::posix::stream_descriptor pidfd;
  asio::steady_timer timer;      // handshake deadline, then the running task's timeout
  std::deque<TaskPtr> inflight;  // sent to the worker; front() is the one running
  std::vector<char> read_buffer = std::vector<char>(64 * 1024);
  std::size_t read_length = 0;
  std::string write_pending, write_active;
  bool writing = false;
  bool timed_out = false;          // we killed it for exceeding task_timeout
  bool killed_on_purpose = false;  // we killed it (cancellation, terminate)
  std::string start_failure;       // worker_init's exception message
  bool serial_scheduled = false;
  std::chrono::nanoseconds mean_task_time{0};  // moving average of its recent tasks
};
using ProcPtr = std::shared_ptr<Proc>;

std::exception_ptr make_error(errc code, const std::string& what) {
  return std::make_exception_ptr(Error(code, what));
}

std::vector<std::string> read_cmdline() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  std::size_t pos = 0;
  while (pos < all.size()) {
    const std::size_t end = all.find('\0', pos);
    args.push_back(all.substr(pos, end - pos));
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  if (args.empty()) args.push_back("corun-worker");
  return args;
}

std::string describe_status(int status) {
  if (WIFSIGNALED(status))
    return "killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
           ::strsignal(WTERMSIG(status)) + ")";
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  return "ended with wait status " + std::to_string(status);
}
}  // namespace

std::exception_ptr aborted_error() {
  return std::make_exception_ptr(
      std::system_error(asio::error::operation_aborted, "corun: operation cancelled"));
}

class PoolCore : public std::enable_shared_from_this<PoolCore> {
 public:
  PoolCore(asio::any_io_executor executor, PoolOptions options)
      : strand_(asio::make_strand(executor)), options_(std::move(options)) {
    if (options_.workers == 0) options_.workers = physical_core_count();
    if (options_.start_method == StartMethod::serial) options_.workers = 1;
    if (options_.pipeline_depth == 0)
      throw std::invalid_argument("corun::PoolOptions::pipeline_depth = 0: must be at least 1");
    if (options_.max_pipeline_depth < options_.pipeline_depth)
      throw std::invalid_argument("corun::PoolOptions::max_pipeline_depth = " +
                                  std::to_string(options_.max_pipeline_depth) +
                                  ": must be at least pipeline_depth (" +
                                  std::to_string(options_.pipeline_depth) + ")");
    if (options_.max_tasks_active == 0)
      options_.max_tasks_active = 2 * options_.workers * options_.max_pipeline_depth;
    if (options_.task_timeout.count() < 0)
      throw std::invalid_argument(
          "corun::PoolOptions::task_timeout = " + std::to_string(options_.task_timeout.count()) +
          " ms: must not be negative");
    if (options_.start_method == StartMethod::spawn) argv_ = read_cmdline();
    init_ref_ = proto::function_ref(reinterpret_cast<const void*>(options_.worker_init));
    exit_ref_ = proto::function_ref(reinterpret_cast<const void*>(options_.worker_exit));
  }

  ~PoolCore() { terminate(); }

  void start() {
    for (std::size_t i = 0; i < options_.workers; ++i)
      slots_.push_back(launch(static_cast<int>(i)));
  }

  asio::any_io_executor executor() const { return strand_; }
  const PoolOptions& options() const noexcept { return options_; }

  std::vector<pid_t> pids() const {
    std::vector<pid_t> out;
    if (options_.start_method == StartMethod::serial) return out;
    for (const auto& p : slots_)
      if (p && p->state != Proc::State::dead && p->pid > 0) out.push_back(p->pid);
    return out;
  }

  std::uint64_t submit(std::shared_ptr<const TaskSpec> spec, Slice slice,
                       std::unique_ptr<TaskCompletion> done) {
    if (state_ != State::running) {
      complete_later(std::move(done), closed_error());
      return 0;
    }
    auto task = std::make_unique<Task>();
    task->id = next_id_++;
    task->spec = std::move(spec);
    task->slice = slice;
    task->done = std::move(done);
    task->submitted = Clock::now();
    const std::uint64_t id = task->id;
    queue_.push_back(std::move(task));
    pump();
    return id;
  }

  void cancel(std::uint64_t id, CancelMode mode) {
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
      if ((*it)->id != id) continue;
      TaskPtr task = std::move(*it);
      queue_.erase(it);
      complete_later(std::move(task->done), aborted_error());
      check_shutdown();
      return;
    }
    for (const auto& p : slots_) {
      for (std::size_t i = 0; p && i < p->inflight.size(); ++i) {
        if (p->inflight[i]->id != id) continue;
        p->inflight[i]->abandoned = true;
        if (mode == CancelMode::kill && i == 0 && options_.start_method != StartMethod::serial) {
          p->killed_on_purpose = true;
          ::kill(p->pid, SIGKILL);
        }
        return;
      }
    }
  }

  void wait_ready(std::unique_ptr<TaskCompletion> done) {
    if (state_ == State::failed || state_ == State::terminated)
      return complete_later(std::move(done), closed_error());
    ready_waiters_.push_back(std::move(done));
    notify_ready();
  }

  void shutdown(std::unique_ptr<TaskCompletion> done) {
    if (state_ == State::running) state_ = State::closing;
    if (state_ == State::closed || state_ == State::terminated || state_ == State::failed)
      return complete_later(std::move(done), nullptr);
    shutdown_waiters_.push_back(std::move(done));
    check_shutdown();
  }

  /// Kills and reaps every worker synchronously; fails what is queued or running.
  void terminate() noexcept {
    if (state_ == State::terminated || state_ == State::closed) return;
    const bool failed = state_ == State::failed;
    state_ = State::terminated;
    for (const auto& p : slots_) kill_and_reap(*p);
    fail_everything(aborted_error());
    for (auto& w : shutdown_waiters_) complete_later(std::move(w), failed ? failure_ : nullptr);
    shutdown_waiters_.clear();
  }

 private:
  enum class State { running, closing, closed, failed, terminated };

  std::exception_ptr closed_error() const {
    if (state_ == State::failed && failure_) return failure_;
    return make_error(errc::pool_closed, "corun: the process pool is shut down");
  }

  /// Completes `done` from a fresh handler, never from inside the caller's stack.
  void complete_later(std::unique_ptr<TaskCompletion> done, std::exception_ptr error,
                      TaskResult result = {}) {
    result.error = std::move(error);
    asio::post(strand_, [done = std::move(done), result = std::move(result)]() mutable {
      done->complete(std::move(result));
    });
  }

  // ---- starting workers ----

  ProcPtr launch(int slot) {
    auto p = std::make_shared<Proc>(strand_, slot);
    if (options_.start_method == StartMethod::serial) {
      p->pid = ::getpid();
      p->state = Proc::State::ready;
      run_hook_in_process(options_.worker_init, slot);
      return p;
    }
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
      throw std::system_error(errno, std::generic_category(), "corun: socketpair");
    const int parent_end = fds[0], child_end = fds[1];
    pid_t pid = -1;
    if (options_.start_method == StartMethod::fork) {
      const pid_t parent = ::getpid();
      pid = ::fork();
      if (pid == 0) {
        // Output the host buffered before fork() is the host's to write, not the worker's.
        __fpurge(stdout);
        __fpurge(stderr);
        // The child keeps stdio and its socket (as fd 3) only; it never returns.
        if (child_end != 3) ::dup2(child_end, 3);
        ::close_range(4, ~0u, 0);
        worker_main(3, parent);
      }
    } else {
      pid = spawn_worker(child_end);
    }
    const int spawn_errno = errno;
    ::close(child_end);
    if (pid < 0) {
      ::close(parent_end);
      throw std::system_error(spawn_errno, std::generic_category(), "corun: starting a worker");
    }
    p->pid = pid;
    p->socket.assign(asio::local::stream_protocol(), parent_end);
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfd >= 0) p->pidfd.assign(pidfd);
    watch(p);
    return p;
  }

  pid_t spawn_worker(int child_end) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    // The worker finds its socket at fd 3 (dup2 onto itself clears close-on-exec).
    posix_spawn_file_actions_adddup2(&actions, child_end, 3);
    posix_spawn_file_actions_addclosefrom_np(&actions, 4);
    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e)
      if (std::strncmp(*e, "CORUN_WORKER_FD=", 16) != 0 &&
          std::strncmp(*e, "CORUN_PARENT_PID=", 17) != 0)
        env.emplace_back(*e);
    env.push_back(std::string(kWorkerFdEnv) + "=3");
    env.push_back(std::string(kParentPidEnv) + "=" + std::to_string(::getpid()));
    std::vector<char*> envp, argv;
    for (auto& s : env) envp.push_back(s.data());
    envp.push_back(nullptr);
    for (auto& s : argv_) argv.push_back(s.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int rc =
        ::posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      errno = rc;
      return -1;
    }
    return pid;
  }

  void watch(const ProcPtr& p) {
    auto self = shared_from_this();
    p->timer.expires_after(options_.handshake_timeout);
    p->timer.async_wait([self, p](std::error_code ec) {
      if (ec || p->state != Proc::State::starting) return;
      p->start_failure = "did not report within " +
                         std::to_string(self->options_.handshake_timeout.count()) + " ms";
      p->killed_on_purpose = true;
      ::kill(p->pid, SIGKILL);
    });
    if (p->pidfd.is_open())
      p->pidfd.async_wait(asio::posix::stream_descriptor::wait_read, [self, p](std::error_code ec) {
        if (!ec) self->on_exit(p);
      });
    read_more(p);
  }

  void run_hook_in_process(WorkerHook hook, int slot) {
    if (hook) hook(WorkerInfo{slot, ::getpid()});
  }

  // ---- reading and writing ----

  std::uint32_t max_incoming_body() const {
    const std::size_t limit = options_.max_result_bytes + (1u << 20);  // head + error texts
    return static_cast<std::uint32_t>(std::min<std::size_t>(limit, 0xffffffffu));
  }

  void read_more(const ProcPtr& p) {
    if (p->read_buffer.size() - p->read_length < 16 * 1024)
      p->read_buffer.resize(p->read_buffer.size() * 2);
    auto self = shared_from_this();
    p->socket.async_read_some(asio::buffer(p->read_buffer.data() + p->read_length,
                                           p->read_buffer.size() - p->read_length),
                              [self, p](std::error_code ec, std::size_t n) {
                                if (ec) return self->on_disconnect(p);
                                p->read_length += n;
                                if (self->consume_frames(p)) self->read_more(p);
                              });
  }

  /// Handles every complete frame in the read buffer; false when the worker is gone.
  bool consume_frames(const ProcPtr& p) {
    std::size_t offset = 0;
    while (p->state != Proc::State::dead && p->read_length - offset >= proto::kHeaderSize) {
      proto::Header h;
      try {
        h = proto::parse_header({p->read_buffer.data() + offset, proto::kHeaderSize},
                                max_incoming_body());
      } catch (const std::exception& e) {
        protocol_violation(p, e.what());
        return false;
      }
      const std::size_t frame = proto::kHeaderSize + h.length;
      if (p->read_length - offset < frame) {
        if (p->read_buffer.size() < frame) p->read_buffer.resize(frame + 16 * 1024);
        break;
      }
      handle_frame(p, h.kind, {p->read_buffer.data() + offset + proto::kHeaderSize, h.length});
      offset += frame;
    }
    if (p->state == Proc::State::dead) return false;
    std::memmove(p->read_buffer.data(), p->read_buffer.data() + offset, p->read_length - offset);
    p->read_length -= offset;
    return true;
  }

  void send(const ProcPtr& p, proto::Kind kind, std::string_view body) {
    proto::append_header(p->write_pending, kind, body.size());
    p->write_pending.append(body);
    flush(p);
  }

  void flush(const ProcPtr& p) {
    if (p->writing || p->write_pending.empty() || p->state == Proc::State::dead) return;
    std::swap(p->write_active, p->write_pending);
    p->writing = true;
    auto self = shared_from_this();
    asio::async_write(p->socket, asio::buffer(p->write_active),
                      [self, p](std::error_code ec, std::size_t) {
                        p->writing = false;
                        p->write_active.clear();
                        if (ec) return self->on_disconnect(p);
                        self->flush(p);
                      });
  }

  void protocol_violation(const ProcPtr& p, const std::string& what) {
    if (!p->inflight.empty()) p->start_failure = "protocol violation: " + what;
    p->killed_on_purpose = true;
    ::kill(p->pid, SIGKILL);
    p->socket.close();
  }

  // ---- messages from a worker ----

  void handle_frame(const ProcPtr& p, proto::Kind kind, std::string_view body) {
    switch (kind) {
      case proto::Kind::hello: {
        if (p->state != Proc::State::starting) return protocol_violation(p, "unexpected hello");
        p->state = Proc::State::initializing;
        p->timer.cancel();
        proto::Init init;
        init.worker_id = p->slot;
        init.max_result_bytes = options_.max_result_bytes;
        init.cpu_binding = cpu_binding(p->slot);
        init.worker_init = init_ref_;
        init.worker_exit = exit_ref_;
        send(p, proto::Kind::init, proto::encode_init(init));
        return;
      }
      case proto::Kind::ready:
        if (p->state != Proc::State::initializing) return protocol_violation(p, "unexpected ready");
        p->state = Proc::State::ready;
        notify_ready();
        pump();
        return;
      case proto::Kind::init_failed:
        p->start_failure = "worker_init threw: " + std::string(body);
        return;
      case proto::Kind::result:
        return handle_result(p, body);
      default:
        return protocol_violation(p, "unexpected message kind " + std::to_string(int(kind)));
    }
  }

  std::string cpu_binding(int slot) const {
    if (!options_.cpu_pinning) return {};
    const auto& cores = core_pus();
    std::string list;
    for (int pu : cores[static_cast<std::size_t>(slot) % cores.size()])
      list += (list.empty() ? "" : ",") + std::to_string(pu);
    return list;
  }

  void handle_result(const ProcPtr& p, std::string_view body) {
    ByteReader r(body, "corun result message");
    proto::ResultHead head;
    try {
      head = proto::decode_result_head(r);
    } catch (const std::exception& e) {
      return protocol_violation(p, e.what());
    }
    if (p->inflight.empty() || p->inflight.front()->id != head.task_id)
      return protocol_violation(
          p, "result for task " + std::to_string(head.task_id) + " which is not the one running");
    TaskPtr task = std::move(p->inflight.front());
    p->inflight.pop_front();
    arm_timeout(p);

    TaskResult result;
    fill_record(result.record, *task, *p);
    result.record.started = Clock::time_point(std::chrono::nanoseconds(head.started_ns));
    result.record.finished = Clock::time_point(std::chrono::nanoseconds(head.finished_ns));
    result.record.cpu_start = head.cpu_start;
    result.record.cpu_end = head.cpu_end;
    result.record.cpu_time = std::chrono::nanoseconds(head.cpu_time_ns);
    const auto took = result.record.finished - result.record.started;
    p->mean_task_time = p->mean_task_time.count() == 0 ? took : (p->mean_task_time * 7 + took) / 8;
    if (head.status == proto::Status::ok) {
      result.payload.assign(r.rest());
      finish(std::move(task), std::move(result));
    } else {
      TaskError error = task_error(*task, *p);
      try {
        error.exception_type = std::string(r.str("exception_type", 1u << 20));
        error.message = std::string(r.str("message", 1u << 20));
      } catch (const std::exception& e) {
        error.message = e.what();
      }
      error.kind = head.status == proto::Status::exception ? TaskErrorKind::exception
                                                           : TaskErrorKind::protocol;
      fail_or_retry(std::move(task), std::move(error), std::move(result));
    }
    pump();
  }

  void fill_record(TaskRecord& rec, const Task& task, const Proc& p) const {
    rec.worker = task.spec->worker_name;
    rec.slice = task.slice;
    rec.worker_id = p.slot;
    rec.pid = p.pid;
    rec.submitted = task.submitted;
    rec.attempts = task.attempts;
  }

  TaskError task_error(const Task& task, const Proc& p) const {
    TaskError e;
    e.worker = task.spec->worker_name;
    e.slice = task.slice;
    e.pid = p.pid;
    e.attempts = task.attempts;
    return e;
  }

  void finish(TaskPtr task, TaskResult result) {
    if (task->abandoned) {
      result.error = aborted_error();
      result.record.outcome = TaskOutcome::cancelled;
    }
    task->done->complete(std::move(result));
    check_shutdown();
  }

  void fail_or_retry(TaskPtr task, TaskError error, TaskResult result) {
    if (!task->abandoned && static_cast<unsigned>(task->attempts) <= options_.retries &&
        state_ == State::running) {
      queue_.push_front(std::move(task));
      return;
    }
    static constexpr TaskOutcome by_kind[] = {TaskOutcome::exception, TaskOutcome::crashed,
                                              TaskOutcome::timeout, TaskOutcome::protocol};
    result.record.outcome = by_kind[static_cast<int>(error.kind)];
    result.task_error = error;
    result.error = std::make_exception_ptr(TaskFailed(std::move(error)));
    finish(std::move(task), std::move(result));
  }

  void arm_timeout(const ProcPtr& p) {
    if (options_.task_timeout.count() == 0 || options_.start_method == StartMethod::serial) return;
    if (p->inflight.empty()) {
      p->timer.cancel();
      return;
    }
    p->timer.expires_after(options_.task_timeout);
    auto self = shared_from_this();
    p->timer.async_wait([self, p, id = p->inflight.front()->id](std::error_code ec) {
      if (ec || p->state == Proc::State::dead || p->inflight.empty() ||
          p->inflight.front()->id != id)
        return;
      p->timed_out = true;
      ::kill(p->pid, SIGKILL);
    });
  }

  // ---- dispatch ----

  void pump() {
    while (!queue_.empty()) {
      Proc* best = nullptr;
      ProcPtr best_ptr;
      for (const auto& p : slots_) {
        if (p->state != Proc::State::ready || p->inflight.size() >= depth_of(*p)) continue;
        if (!best || p->inflight.size() < best->inflight.size()) best = p.get(), best_ptr = p;
      }
      if (!best) break;
      TaskPtr task = std::move(queue_.front());
      queue_.pop_front();
      dispatch_to(best_ptr, std::move(task));
    }
    check_shutdown();
  }

  /// Tasks to keep queued at `p`: enough for ~250 us of its recent task times, within
  /// [pipeline_depth, max_pipeline_depth].
  std::size_t depth_of(const Proc& p) const {
    constexpr std::chrono::nanoseconds queued_work = std::chrono::microseconds(250);
    if (p.mean_task_time.count() == 0) return options_.pipeline_depth;
    const auto wanted = static_cast<std::size_t>(
        queued_work / std::max(p.mean_task_time, std::chrono::nanoseconds(1000)));
    return std::clamp(wanted, options_.pipeline_depth, options_.max_pipeline_depth);
  }

  void dispatch_to(const ProcPtr& p, TaskPtr task) {
    ++task->attempts;
    const bool starts_now = p->inflight.empty();
    if (options_.start_method == StartMethod::serial) {
      p->inflight.push_back(std::move(task));
      schedule_serial(p);
      return;
    }
    proto::append_task(p->write_pending, task->id, task->slice, task->spec->encoded);
    p->inflight.push_back(std::move(task));
    if (starts_now) arm_timeout(p);
    flush(p);
  }

  void schedule_serial(const ProcPtr& p) {
    if (p->serial_scheduled || p->inflight.empty()) return;
    p->serial_scheduled = true;
    // One task per handler, so the event loop stays responsive between tasks.
    asio::post(strand_, [self = shared_from_this(), p] {
      p->serial_scheduled = false;
      if (p->inflight.empty() || p->state == Proc::State::dead) return;
      const Task& task = *p->inflight.front();
      const DecodedSpec spec{task.spec->worker_name, task.spec->iterator, task.spec->output,
                             task.spec->input_inode, task.spec->output_inode};
      std::string frame;
      run_task(task.id, task.slice, spec, 0, self->options_.max_result_bytes, frame);
      self->handle_result(p, std::string_view(frame).substr(proto::kHeaderSize));
      self->schedule_serial(p);
    });
  }

  // ---- workers that end ----

  void on_disconnect(const ProcPtr& p) {
    if (p->state == Proc::State::dead) return;
    // The process may still be exiting; make sure it does, then reap it via its pidfd.
    if (p->state != Proc::State::stopping) ::kill(p->pid, SIGKILL);
    if (!p->pidfd.is_open()) on_exit(p);
  }

  void on_exit(const ProcPtr& p) {
    if (p->state == Proc::State::dead) return;
    int status = 0;
    ::waitpid(p->pid, &status, 0);  // the pidfd said it exited: this does not block
    const Proc::State was = p->state;
    close_proc(*p);

    if (was == Proc::State::starting || was == Proc::State::initializing) {
      if (state_ == State::running) fail_pool(start_failure_message(*p, was, status));
    } else {
      handle_lost_tasks(p, status);
    }
    if (state_ == State::running) {
      slots_[static_cast<std::size_t>(p->slot)] = launch(p->slot);
    }
    pump();
  }

  std::string start_failure_message(const Proc& p, Proc::State was, int status) const {
    std::string m = "corun: worker process " + std::to_string(p.pid) + " (slot " +
                    std::to_string(p.slot) + ") ";
    if (!p.start_failure.empty()) {
      m += p.start_failure;
    } else {
      m += describe_status(status);
    }
    if (was == Proc::State::starting && options_.start_method == StartMethod::spawn)
      m += " before reporting to the pool: does main() call "
           "corun::enter_worker_if_spawned(argc, argv) before anything else?";
    return m;
  }

  void handle_lost_tasks(const ProcPtr& p, int status) {
    std::deque<TaskPtr> lost = std::move(p->inflight);
    p->inflight.clear();
    if (lost.empty()) return;
    // Only the first task was running; the ones behind it never started.
    for (auto it = lost.rbegin(); it + 1 != lost.rend(); ++it) {
      TaskPtr& t = *it;
      --t->attempts;
      if (t->abandoned || state_ == State::terminated) {
        complete_later(std::move(t->done), aborted_error());
      } else {
        queue_.push_front(std::move(t));
      }
    }
    TaskPtr running = std::move(lost.front());
    TaskResult result;
    fill_record(result.record, *running, *p);
    if (running->abandoned) return finish(std::move(running), std::move(result));
    TaskError error = task_error(*running, *p);
    if (p->timed_out) {
      error.kind = TaskErrorKind::timeout;
      error.message = "exceeded task_timeout of " + std::to_string(options_.task_timeout.count()) +
                      " ms; worker killed";
    } else {
      error.kind = TaskErrorKind::crashed;
      if (WIFSIGNALED(status)) error.signal = WTERMSIG(status);
      if (WIFEXITED(status)) error.exit_code = WEXITSTATUS(status);
      error.message = "worker process " + describe_status(status);
      if (!p->start_failure.empty()) error.message += " after " + p->start_failure;
    }
    fail_or_retry(std::move(running), std::move(error), std::move(result));
  }

  void close_proc(Proc& p) {
    p.state = Proc::State::dead;
    std::error_code ignored;
    p.socket.close(ignored);
    p.pidfd.close(ignored);
    p.timer.cancel();
  }

  void kill_and_reap(Proc& p) noexcept {
    if (p.state == Proc::State::dead) return;
    if (options_.start_method != StartMethod::serial) {
      ::kill(p.pid, SIGKILL);
      int status;
      while (::waitpid(p.pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
    close_proc(p);
  }

  void fail_pool(const std::string& message) {
    state_ = State::failed;
    failure_ = make_error(errc::worker_start_failed, message);
    for (const auto& p : slots_)
      if (p) kill_and_reap(*p);
    fail_everything(failure_);
  }

  void fail_everything(const std::exception_ptr& error) {
    for (const auto& p : slots_) {
      if (!p) continue;
      for (auto& t : p->inflight) complete_later(std::move(t->done), error);
      p->inflight.clear();
    }
    for (auto& t : queue_) complete_later(std::move(t->done), error);
    queue_.clear();
    for (auto& w : ready_waiters_) complete_later(std::move(w), error);
    ready_waiters_.clear();
  }

  void notify_ready() {
    for (const auto& p : slots_)
      if (p->state != Proc::State::ready) return;
    for (auto& w : ready_waiters_) complete_later(std::move(w), nullptr);
    ready_waiters_.clear();
  }

  void check_shutdown() {
    if (state_ != State::closing) return;
    for (const auto& p : slots_)
      if (!p->inflight.empty()) return;
    if (!queue_.empty()) {
      // Queued work still runs on workers that are ready or about to be.
      for (const auto& p : slots_)
        if (p->state != Proc::State::dead && p->state != Proc::State::stopping) return;
      fail_everything(closed_error());
    }
    bool all_dead = true;
    for (const auto& p : slots_) {
      if (p->state == Proc::State::ready) {
        if (options_.start_method == StartMethod::serial) {
          run_hook_in_process(options_.worker_exit, p->slot);
          close_proc(*p);
          continue;
        }
        send(p, proto::Kind::shutdown, {});
        p->state = Proc::State::stopping;
      }
      // A worker still starting is stopped once it is ready, so its hooks run in pairs.
      all_dead &= p->state == Proc::State::dead;
    }
    if (!all_dead) return;
    state_ = State::closed;
    for (auto& w : shutdown_waiters_) complete_later(std::move(w), nullptr);
    shutdown_waiters_.clear();
  }

  asio::strand<asio::any_io_executor> strand_;
  PoolOptions options_;
  std::vector<std::string> argv_;
  proto::FunctionRef init_ref_, exit_ref_;
  std::vector<ProcPtr> slots_;
  std::deque<TaskPtr> queue_;
  std::uint64_t next_id_ = 1;
  State state_ = State::running;
  std::exception_ptr failure_;
  std::vector<std::unique_ptr<TaskCompletion>> ready_waiters_, shutdown_waiters_;
};

asio::any_io_executor core_executor(const PoolCore& core) {
  return core.executor();
}

std::uint64_t submit_task(PoolCore& core, std::shared_ptr<const TaskSpec> spec, Slice slice,
                          std::unique_ptr<TaskCompletion> done) {
  return core.submit(std::move(spec), slice, std::move(done));
}

void cancel_task(PoolCore& core, std::uint64_t task_id, CancelMode mode) {
  core.cancel(task_id, mode);
}

PoolCorePtr make_pool_core(asio::any_io_executor executor, PoolOptions options) {
  if (const char* fd = std::getenv(kWorkerFdEnv)) {
    // This process was spawned as a worker, yet main() got here: it never entered worker mode.
    std::fprintf(stderr,
                 "corun: process %d was started as a pool worker (%s=%s) but main() did not call "
                 "corun::enter_worker_if_spawned(argc, argv) before creating a ProcessPool\n",
                 static_cast<int>(::getpid()), kWorkerFdEnv, fd);
    std::fflush(stderr);
    ::_exit(3);
  }
  auto core = std::make_shared<PoolCore>(std::move(executor), std::move(options));
  core->start();
  return core;
}

void async_wait_ready_impl(const PoolCorePtr& core, std::unique_ptr<TaskCompletion> done) {
  asio::dispatch(core->executor(),
                 [core, done = std::move(done)]() mutable { core->wait_ready(std::move(done)); });
}

void async_shutdown_impl(const PoolCorePtr& core, std::unique_ptr<TaskCompletion> done) {
  asio::dispatch(core->executor(),
                 [core, done = std::move(done)]() mutable { core->shutdown(std::move(done)); });
}

void terminate_pool(PoolCore& core) noexcept {
  core.terminate();
}
std::size_t pool_size(const PoolCore& core) noexcept {
  return core.options().workers;
}
std::vector<pid_t> pool_worker_pids(const PoolCore& core) {
  return core.pids();
}
const PoolOptions& pool_options(const PoolCore& core) noexcept {
  return core.options();
}

}  // namespace detail

ProcessPool::ProcessPool(executor_type executor, PoolOptions options)
    : executor_(executor), core_(detail::make_pool_core(executor, std::move(options))) {}

ProcessPool::~ProcessPool() {
  detail::terminate_pool(*core_);
}

}  // namespace corun
