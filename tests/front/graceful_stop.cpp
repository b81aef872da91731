#include <corun/graceful_stop.hpp>

#include "support/support.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <corun/corun.hpp>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace {

// Each slice takes 20 ms: a run of 2000 slices lasts far longer than the test, so only the
// signal can end it. The first callback tells the test, through a pipe, that the run is going.
struct SlowSlices : corun::Worker<SlowSlices, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(corun::SliceView<const std::int64_t> slice) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return static_cast<std::int64_t>(slice.size());
  }
  void process_callback(std::int64_t) {
    if (callbacks++ == 0 && ready_fd >= 0) report_running();
  }
  void report_running() const {
    std::ostringstream line;
    line << "running " << segment;
    for (pid_t pid : pids) line << ' ' << pid;
    line << '\n';
    const std::string text = line.str();
    if (::write(ready_fd, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
      std::_Exit(3);
  }
  int callbacks = 0;
  int ready_fd = -1;
  std::string segment;
  std::vector<pid_t> pids;
};

}  // namespace
CORUN_REGISTER_WORKER(SlowSlices);
namespace {

// The child: a plain program written the way GracefulStop is meant to be used. Prints
// "cancelled" when the run ends with operation_aborted; exit status 0 then.
int run_child(corun::StartMethod method, int ready_fd) {
  auto ints = corun::SharedArray<std::int64_t>::create({2000});
  SlowSlices slow{corun::DataIterator::over(ints, 1)};
  slow.ready_fd = ready_fd;
  slow.segment = ints.name();
  asio::io_context io;
  corun::ProcessPool pool{io.get_executor(), {.workers = 2, .start_method = method}};
  corun::GracefulStop stop{pool};
  corun::WorkerOrchestrator orch{pool, {&slow}};
  int code = 1;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await pool.async_wait_ready(asio::use_awaitable);
        slow.pids = pool.worker_pids();
        try {
          co_await orch.async_run(stop.bind(asio::use_awaitable));
          std::cout << "finished" << std::endl;
        } catch (const std::system_error& e) {
          if (e.code() == asio::error::operation_aborted && stop.requested()) {
            std::cout << "cancelled" << std::endl;
            code = 0;
          }
        }
      },
      [&](std::exception_ptr e) {
        stop.cancel();
        if (e) pool.terminate();
      });
  io.run();
  return code;
}

struct ChildResult {
  int status = -1;
  std::string output;
  std::string running;  // "running <segment> <pid> <pid>"
};

std::string read_all(int fd) {
  std::string text;
  char buf[256];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  return text;
}

std::string read_line(int fd) {
  std::string line;
  char c;
  while (::read(fd, &c, 1) == 1 && c != '\n') line += c;
  return line;
}

ChildResult signal_child_once_running(corun::StartMethod method, int sig) {
  int ready[2], out[2];
  REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(ready[0]);
    ::close(out[0]);
    ::dup2(out[1], STDOUT_FILENO);
    int code = 4;
    try {
      code = run_child(method, ready[1]);
    } catch (const std::exception& e) {
      std::cerr << "child: " << e.what() << '\n';
    }
    std::cout.flush();
    std::_Exit(code);
  }
  ::close(ready[1]);
  ::close(out[1]);
  ChildResult result;
  result.running = read_line(ready[0]);  // empty if the child died before running
  if (!result.running.empty()) ::kill(child, sig);
  result.output = read_all(out[0]);
  ::waitpid(child, &result.status, 0);
  ::close(ready[0]);
  ::close(out[0]);
  return result;
}

}  // namespace

TEST_CASE("SIGINT or SIGTERM cancels a bound run, the pool shuts down, nothing is left",
          "[graceful_stop][signal]") {
  const int sig = GENERATE(SIGINT, SIGTERM);
  const auto method = GENERATE(corun::StartMethod::spawn, corun::StartMethod::fork);
  INFO("signal " << sig << " start method " << static_cast<int>(method));
  const ChildResult r = signal_child_once_running(method, sig);
  REQUIRE(r.running.rfind("running ", 0) == 0);
  CHECK(WIFEXITED(r.status));
  CHECK(WEXITSTATUS(r.status) == 0);
  CHECK(r.output == "cancelled\n");

  std::istringstream running(r.running.substr(8));
  std::string segment;
  running >> segment;
  CHECK(::access(("/dev/shm/" + segment).c_str(), F_OK) == -1);
  int workers = 0;
  for (pid_t pid; running >> pid; ++workers) {
    INFO("worker pid " << pid);
    CHECK(::kill(pid, 0) == -1);
    CHECK(errno == ESRCH);
  }
  CHECK(workers == 2);
}

TEST_CASE("without a signal a bound run completes; cancel() hands the signals back",
          "[graceful_stop]") {
  asio::io_context io;
  corun::ProcessPool pool{io.get_executor(),
                          {.workers = 1, .start_method = corun::StartMethod::serial}};
  auto ints = corun::SharedArray<std::int64_t>::create({3});
  SlowSlices slow{corun::DataIterator::over(ints, 1)};
  corun::WorkerOrchestrator orch{pool, {&slow}};
  corun::GracefulStop stop{pool};
  struct sigaction current {};
  REQUIRE(::sigaction(SIGINT, nullptr, &current) == 0);
  CHECK(current.sa_handler != SIG_DFL);
  const auto asio_handler = current.sa_handler;

  std::exception_ptr error;
  std::size_t done = 0;
  orch.async_run(stop.bind([&](std::exception_ptr e, corun::RunReport report) {
    error = e;
    done = report.tasks_done;
    stop.cancel();
    pool.terminate();
  }));
  io.run();
  CHECK_FALSE(error);
  CHECK(done == 3);
  CHECK(slow.callbacks == 3);
  CHECK_FALSE(stop.requested());
  // Asio's handler is gone: the default action, after corun removed this process's segments
  // (graceful_exit.py signals a real program to see it).
  REQUIRE(::sigaction(SIGINT, nullptr, &current) == 0);
  CHECK(current.sa_handler != asio_handler);
  REQUIRE(::sigaction(SIGTERM, nullptr, &current) == 0);
  CHECK(current.sa_handler != asio_handler);
}
