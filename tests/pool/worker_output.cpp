#include <corun/worker_output.hpp>

#include <corun/diagnostics.hpp>
#include <corun/pool.hpp>

#include "support/drive.hpp"
#include "support/support.hpp"
#include "support/workers.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

using namespace corun;
using corun::test::AddInts;
using corun::test::drive;
using corun::test::iota_array;

namespace {

/// Prints each row of its slice as one line on stdout (printf and std::cout, never flushed: a
/// captured worker's stdout is line-buffered) and one on stderr; returns {worker_id, pid}.
struct Speak : Worker<Speak, std::int64_t> {
  using Worker::Worker;
  static std::vector<std::int64_t> process(SliceView<const std::int64_t> slice,
                                           const TaskContext& ctx) {
    for (const std::int64_t v : slice) {
      std::printf("out %lld\n", static_cast<long long>(v));
      std::cout << "cout " << v << '\n';
      std::fprintf(stderr, "err %lld\n", static_cast<long long>(v));
    }
    return {ctx.worker_id, ::getpid()};
  }
};

/// Writes two lines through C stdio and iostreams without flushing (they arrive only if a
/// captured stdout is line-buffered), then bytes without a newline on each stream (stdout
/// through write(2), bypassing stdio), then crashes with SIGSEGV.
struct LastWords : Worker<LastWords, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(SliceView<const std::int64_t>) {
    std::printf("whole line\n");
    std::cout << "cout line\n";
    const std::string_view partial = "no newline on stdout";
    if (::write(1, partial.data(), partial.size()) != static_cast<ssize_t>(partial.size()))
      return -1;
    std::fputs("no newline on stderr", stderr);
    std::raise(SIGSEGV);
    return 0;
  }
};

constexpr std::size_t kFloodLines = 200'000;  // 100 bytes each: 20 MB
constexpr std::size_t kLongLine = 3 * kWorkerOutputLineBytes + 1234;

/// Line i of the flood into `line` (reusing its memory): its number, a space, then letters up
/// to 99 bytes.
void flood_line(std::size_t i, std::string& line) {
  char number[16];
  std::snprintf(number, sizeof number, "%08zu ", i);
  line = number;
  line.append(99 - line.size(), static_cast<char>('a' + i % 26));
}

/// Writes kFloodLines lines to stdout in 1 MiB write(2) calls (lines cut across writes), with
/// "half" after the first half, where it waits until the parent writes a byte into the FIFO
/// CORUN_TEST_FIFO; then one line of kLongLine bytes and "end".
struct Flood : Worker<Flood, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(SliceView<const std::int64_t>) {
    std::string chunk, line;
    const auto put = [&](const std::string& text, bool last) {
      chunk += text;
      if (chunk.size() < (1u << 20) && !last) return;
      std::size_t done = 0;
      while (done < chunk.size()) {
        const ssize_t n = ::write(1, chunk.data() + done, chunk.size() - done);
        if (n <= 0) throw std::runtime_error("flood: write failed");
        done += static_cast<std::size_t>(n);
      }
      chunk.clear();
    };
    for (std::size_t i = 0; i < kFloodLines; ++i) {
      flood_line(i, line);
      put(line + "\n", false);
      if (i + 1 == kFloodLines / 2) {
        put("half\n", true);
        const int fd = ::open(std::getenv("CORUN_TEST_FIFO"), O_RDONLY);
        char byte = 0;
        if (fd < 0 || ::read(fd, &byte, 1) != 1) throw std::runtime_error("flood: fifo failed");
        ::close(fd);
      }
    }
    put(std::string(kLongLine, 'z') + "\n", false);
    put("end\n", true);
    return static_cast<std::int64_t>(kFloodLines);
  }
};

/// A worker type whose per-object worker_exit throws.
struct ExitThrows : Worker<ExitThrows, std::int64_t> {
  using Worker::Worker;
  static void worker_exit(const NoParams&, const WorkerInfo&) {
    throw std::runtime_error("exit boom");
  }
  static std::int64_t process(SliceView<const std::int64_t> slice) {
    return static_cast<std::int64_t>(slice.size());
  }
};

void throwing_exit_hook(const WorkerInfo&) {
  throw std::runtime_error("pool hook boom");
}

struct Line {
  int worker_id;
  pid_t pid;
  OutputStream stream;
  std::string text;
  bool newline;
};

/// A handler that keeps every line.
WorkerOutputHandler keep_lines(std::vector<Line>& lines) {
  return [&lines](const WorkerOutputLine& l) {
    lines.push_back({l.worker_id, l.pid, l.stream, std::string(l.text), l.newline});
  };
}

/// The texts of `lines` from process `pid` on `stream`, in order.
std::vector<std::string> texts(const std::vector<Line>& lines, pid_t pid, OutputStream stream) {
  std::vector<std::string> out;
  for (const auto& l : lines)
    if (l.pid == pid && l.stream == stream) out.push_back(l.text);
  return out;
}

/// Restores the default diagnostics sink when the test ends, however it ends.
struct DefaultDiagnosticsAfter {
  ~DefaultDiagnosticsAfter() { set_diagnostics_handler({}); }
};

std::string fd_target(const std::string& path) {
  std::error_code ec;
  return std::filesystem::read_symlink(path, ec).string();
}

}  // namespace

TEST_CASE("captured stdout and stderr lines arrive with their worker id, pid and stream, in order",
          "[pool][output]") {
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork);
  asio::io_context io;
  std::vector<Line> lines;
  ProcessPool pool{io.get_executor(),
                   {.workers = 2, .start_method = method, .worker_output = keep_lines(lines)}};
  auto ready = pool.async_wait_ready(asio::use_future);
  drive(io, ready);  // so that both workers get tasks
  auto ints = iota_array(30);
  const auto it = DataIterator::over(ints, 5);
  std::vector<std::future<std::vector<std::int64_t>>> futures;
  for (Slice s : it) futures.push_back(pool.async_execute<Speak>(it, s, asio::use_future));
  // Per process, the rows it printed: a worker runs its tasks in the order it was sent them,
  // which is the order of submission among the tasks it got.
  std::map<pid_t, std::vector<std::int64_t>> rows_of;
  std::map<pid_t, int> worker_of;
  std::size_t index = 0;
  for (Slice s : it) {
    const auto who = drive(io, futures[index++]);
    const auto pid = static_cast<pid_t>(who.at(1));
    worker_of[pid] = static_cast<int>(who.at(0));
    for (std::size_t r = s.start; r < s.end; ++r)
      rows_of[pid].push_back(static_cast<std::int64_t>(r + 1));
  }
  CHECK(worker_of.size() == 2);
  auto shutdown = pool.async_shutdown(asio::use_future);
  drive(io, shutdown);  // every line is delivered before the workers' ends are reported
  std::size_t expected_lines = 0;
  for (const auto& [pid, rows] : rows_of) {
    std::vector<std::string> out, err;
    for (const std::int64_t v : rows) {
      out.push_back("out " + std::to_string(v));
      out.push_back("cout " + std::to_string(v));
      err.push_back("err " + std::to_string(v));
    }
    CHECK(texts(lines, pid, OutputStream::out) == out);
    CHECK(texts(lines, pid, OutputStream::err) == err);
    expected_lines += out.size() + err.size();
  }
  CHECK(lines.size() == expected_lines);
  for (const auto& l : lines) {
    CHECK(l.newline);
    CHECK(l.worker_id == worker_of.at(l.pid));
  }
}

TEST_CASE("a line without a newline before a crash is delivered, and the crash reported as before",
          "[pool][output][failure]") {
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork);
  const int fds = corun::test::open_fd_count();
  {
    asio::io_context io;
    std::vector<Line> lines;
    ProcessPool pool{io.get_executor(),
                     {.workers = 1, .start_method = method, .worker_output = keep_lines(lines)}};
    auto ready = pool.async_wait_ready(asio::use_future);
    drive(io, ready);
    const pid_t first = pool.worker_pids().at(0);
    auto ints = iota_array(4);
    const auto it = DataIterator::over(ints, 2);
    auto crash = pool.async_execute<LastWords>(it, Slice{0, 2}, asio::use_future);
    std::size_t lines_when_reported = 0;
    try {
      drive(io, crash);
      FAIL("expected a crash");
    } catch (const TaskFailed& e) {
      lines_when_reported = lines.size();
      CHECK(e.code() == errc::worker_crashed);
      CHECK(e.error().signal == SIGSEGV);
      CHECK(e.error().pid == first);
    }
    // Delivered before the crash was reported.
    REQUIRE(lines_when_reported == 4);
    CHECK(texts(lines, first, OutputStream::out) ==
          std::vector<std::string>{"whole line", "cout line", "no newline on stdout"});
    CHECK(texts(lines, first, OutputStream::err) ==
          std::vector<std::string>{"no newline on stderr"});
    for (const auto& l : lines) {
      CHECK(l.worker_id == 0);
      CHECK(l.newline == (l.text == "whole line" || l.text == "cout line"));
    }

    // The replacement's output is captured too, through pipes of its own.
    lines.clear();
    auto spoke = pool.async_execute<Speak>(it, Slice{2, 3}, asio::use_future);
    const auto who = drive(io, spoke);
    const auto second = static_cast<pid_t>(who.at(1));
    CHECK(second != first);
    auto shutdown = pool.async_shutdown(asio::use_future);
    drive(io, shutdown);
    CHECK(texts(lines, second, OutputStream::out) == std::vector<std::string>{"out 3", "cout 3"});
    CHECK(texts(lines, second, OutputStream::err) == std::vector<std::string>{"err 3"});
  }
  CHECK(corun::test::child_pids().empty());
  CHECK(corun::test::open_fd_count() == fds);
}

TEST_CASE("20 MB from one task arrive whole while the loop serves a timer and another task",
          "[pool][output]") {
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork);
  const auto dir =
      std::filesystem::temp_directory_path() / ("corun_flood_" + std::to_string(::getpid()) + "_" +
                                                std::to_string(static_cast<int>(method)));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directory(dir);
  const std::string fifo = (dir / "gate").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  ::setenv("CORUN_TEST_FIFO", fifo.c_str(), 1);
  const long rss_before = corun::test::resident_kib();

  asio::io_context io;
  std::size_t flood_lines = 0, pieces = 0, long_bytes = 0, other = 0, bytes = 0;
  std::size_t bad = 0;
  bool half = false, ended = false;
  std::size_t lines_when_released = 0;
  std::string expected;
  asio::steady_timer timer{io};
  std::unique_ptr<ProcessPool> pool;
  int gate = -1;
  std::int64_t side_result = 0;
  const auto on_line = [&](const WorkerOutputLine& l) {
    bytes += l.text.size() + (l.newline ? 1 : 0);
    if (l.stream != OutputStream::out) {
      ++other;
      return;
    }
    if (!half && flood_lines < kFloodLines / 2) {
      flood_line(flood_lines, expected);
      if (l.text != expected || !l.newline) ++bad;
      ++flood_lines;
      return;
    }
    if (!half) {
      half = true;
      if (l.text != "half") ++bad;
      // The worker now waits for the FIFO: release it from a timer, through another task.
      timer.expires_after(std::chrono::milliseconds(1));
      timer.async_wait([&](std::error_code) {
        auto ints = std::make_shared<SharedArray<std::int64_t>>(iota_array(10));
        pool->async_execute<AddInts>(DataIterator::over(*ints, 10), Slice{0, 10},
                                     [&, ints](std::exception_ptr e, std::int64_t v) {
                                       if (e) return;
                                       side_result = v;
                                       lines_when_released = flood_lines + 1;
                                       gate =
                                           ::open(fifo.c_str(), O_RDWR);  // never blocks on a FIFO
                                       if (gate < 0 || ::write(gate, "x", 1) != 1) ++bad;
                                     });
      });
      return;
    }
    if (flood_lines < kFloodLines) {
      flood_line(flood_lines, expected);
      if (l.text != expected || !l.newline) ++bad;
      ++flood_lines;
      return;
    }
    if (long_bytes < kLongLine) {
      if (l.text.find_first_not_of('z') != std::string_view::npos) ++bad;
      long_bytes += l.text.size();
      ++pieces;
      if (l.newline != (long_bytes == kLongLine)) ++bad;
      if (l.text.size() > kWorkerOutputLineBytes) ++bad;
      return;
    }
    if (l.text == "end" && l.newline && !ended)
      ended = true;
    else
      ++bad;
  };
  pool = std::make_unique<ProcessPool>(
      io.get_executor(),
      PoolOptions{.workers = 2, .start_method = method, .worker_output = on_line});
  auto ready = pool->async_wait_ready(asio::use_future);
  drive(io, ready);
  auto ints = iota_array(2);
  auto flood =
      pool->async_execute<Flood>(DataIterator::over(ints, 1), Slice{0, 1}, asio::use_future);
  CHECK(drive(io, flood) == static_cast<std::int64_t>(kFloodLines));
  auto shutdown = pool->async_shutdown(asio::use_future);
  drive(io, shutdown);

  CHECK(bad == 0);
  CHECK(side_result == 55);
  // The other task completed while the flood was half-way: the worker could not go on before.
  CHECK(lines_when_released == kFloodLines / 2 + 1);
  CHECK(flood_lines == kFloodLines);
  CHECK(long_bytes == kLongLine);
  CHECK(pieces == 4);  // three of kWorkerOutputLineBytes, then the rest with its newline
  CHECK(ended);
  CHECK(other == 0);
  CHECK(bytes == kFloodLines * 100 + 5 + kLongLine + 1 + 4);
  // Nothing held the flood: the parent keeps one fixed buffer per stream (and the handler
  // above allocates nothing per line).
  CHECK(corun::test::resident_kib() - rss_before < 16 * 1024);
  pool.reset();
  if (gate >= 0) ::close(gate);
  ::unsetenv("CORUN_TEST_FIFO");
  std::filesystem::remove_all(dir);
}

TEST_CASE("by default workers write straight to the parent's stdout and stderr", "[pool][output]") {
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork);
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1, .start_method = method}};
  CHECK(!pool.options().worker_output);
  auto ready = pool.async_wait_ready(asio::use_future);
  drive(io, ready);
  const std::string proc = "/proc/" + std::to_string(pool.worker_pids().at(0)) + "/fd/";
  CHECK(fd_target(proc + "1") == fd_target("/proc/self/fd/1"));
  CHECK(fd_target(proc + "2") == fd_target("/proc/self/fd/2"));

  std::vector<Line> lines;
  ProcessPool captured{io.get_executor(),
                       {.workers = 1, .start_method = method, .worker_output = keep_lines(lines)}};
  auto captured_ready = captured.async_wait_ready(asio::use_future);
  drive(io, captured_ready);
  const std::string captured_proc =
      "/proc/" + std::to_string(captured.worker_pids().at(0)) + "/fd/";
  CHECK(fd_target(captured_proc + "1").rfind("pipe:", 0) == 0);
  CHECK(fd_target(captured_proc + "2").rfind("pipe:", 0) == 0);
  CHECK(fd_target(captured_proc + "1") != fd_target(captured_proc + "2"));
}

TEST_CASE("a serial pool's tasks write to the program's own streams; the handler is not called",
          "[pool][output]") {
  asio::io_context io;
  std::vector<Line> lines;
  ProcessPool pool{io.get_executor(),
                   {.start_method = StartMethod::serial, .worker_output = keep_lines(lines)}};
  auto ints = iota_array(2);
  auto spoke =
      pool.async_execute<Speak>(DataIterator::over(ints, 2), Slice{0, 1}, asio::use_future);
  CHECK(drive(io, spoke).at(1) == ::getpid());
  auto shutdown = pool.async_shutdown(asio::use_future);
  drive(io, shutdown);
  CHECK(lines.empty());
}

TEST_CASE("corun's messages in a worker arrive as its stderr lines, not at the parent's sink",
          "[pool][output][diagnostics]") {
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork);
  const DefaultDiagnosticsAfter restore;
  std::vector<std::string> parent_messages;
  set_diagnostics_handler([&](std::string_view m) { parent_messages.emplace_back(m); });
  asio::io_context io;
  std::vector<Line> lines;
  ProcessPool pool{io.get_executor(),
                   {.workers = 1,
                    .start_method = method,
                    .worker_exit = &throwing_exit_hook,
                    .worker_output = keep_lines(lines)}};
  auto ints = iota_array(2);
  auto ran =
      pool.async_execute<ExitThrows>(DataIterator::over(ints, 2), Slice{0, 2}, asio::use_future);
  CHECK(drive(io, ran) == 2);
  const pid_t pid = pool.worker_pids().at(0);
  auto shutdown = pool.async_shutdown(asio::use_future);
  drive(io, shutdown);
  const std::string who = "corun worker " + std::to_string(pid);
  CHECK(texts(lines, pid, OutputStream::err) ==
        std::vector<std::string>{who + ": worker_exit of " +
                                     std::string(detail::worker_name_of<ExitThrows>()) +
                                     " threw: exit boom",
                                 who + ": worker_exit threw: pool hook boom"});
  CHECK(texts(lines, pid, OutputStream::out).empty());
  CHECK(parent_messages.empty());
}

TEST_CASE("a serial pool's worker_exit that throws reaches the diagnostics sink, then stderr again",
          "[pool][diagnostics]") {
  const DefaultDiagnosticsAfter restore;
  std::vector<std::string> messages;
  CHECK(!set_diagnostics_handler([&](std::string_view m) { messages.emplace_back(m); }));
  const auto run_and_stop = [] {
    asio::io_context io;
    ProcessPool pool{io.get_executor(), {.start_method = StartMethod::serial}};
    auto ints = iota_array(2);
    auto ran =
        pool.async_execute<ExitThrows>(DataIterator::over(ints, 2), Slice{0, 2}, asio::use_future);
    CHECK(drive(io, ran) == 2);
    auto shutdown = pool.async_shutdown(asio::use_future);
    drive(io, shutdown);
  };
  run_and_stop();
  const std::string expected = "corun worker " + std::to_string(::getpid()) + ": worker_exit of " +
                               std::string(detail::worker_name_of<ExitThrows>()) +
                               " threw: exit boom";
  CHECK(messages == std::vector<std::string>{expected});

  // Restored: the next message goes to stderr (fd 2, here a pipe), not to the old handler.
  CHECK(set_diagnostics_handler({}));
  int err[2];
  REQUIRE(::pipe(err) == 0);
  const int saved = ::dup(2);
  ::dup2(err[1], 2);
  run_and_stop();
  ::dup2(saved, 2);
  ::close(saved);
  ::close(err[1]);
  CHECK(corun::test::read_line(err[0]) == expected);
  ::close(err[0]);
  CHECK(messages.size() == 1);
}

TEST_CASE("a worker_output handler that throws is reported to the sink and capture goes on",
          "[pool][output][diagnostics]") {
  const DefaultDiagnosticsAfter restore;
  std::vector<std::string> messages;
  set_diagnostics_handler([&](std::string_view m) { messages.emplace_back(m); });
  asio::io_context io;
  std::vector<std::string> seen;
  ProcessPool pool{io.get_executor(),
                   {.workers = 1, .worker_output = [&](const WorkerOutputLine& l) {
                      if (l.stream != OutputStream::out) return;
                      seen.emplace_back(l.text);
                      if (l.text == "out 1") throw std::runtime_error("handler boom");
                    }}};
  auto ints = iota_array(2);
  auto spoke =
      pool.async_execute<Speak>(DataIterator::over(ints, 2), Slice{0, 2}, asio::use_future);
  const pid_t pid = static_cast<pid_t>(drive(io, spoke).at(1));
  auto shutdown = pool.async_shutdown(asio::use_future);
  drive(io, shutdown);
  CHECK(seen == std::vector<std::string>{"out 1", "cout 1", "out 2", "cout 2"});
  CHECK(messages == std::vector<std::string>{
                        "corun: the worker_output handler threw on a line of worker 0 (pid " +
                        std::to_string(pid) + "): handler boom"});
}

TEST_CASE("terminate and the destructor close the captured pipes and leave no descriptor",
          "[pool][output][lifecycle]") {
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork);
  const bool terminate_first = GENERATE(true, false);
  const int fds = corun::test::open_fd_count();
  {
    asio::io_context io;
    std::vector<Line> lines;
    ProcessPool pool{io.get_executor(),
                     {.workers = 2, .start_method = method, .worker_output = keep_lines(lines)}};
    auto ints = iota_array(4);
    ints[3] = -5;  // blocks for ever
    const auto it = DataIterator::over(ints, 2);
    auto spoke = pool.async_execute<Speak>(it, Slice{0, 2}, asio::use_future);
    drive(io, spoke);
    auto stuck = pool.async_execute<corun::test::Faulty>(it, Slice{2, 4}, asio::use_future);
    if (terminate_first) {
      pool.terminate();
      CHECK_THROWS(drive(io, stuck));
      CHECK(corun::test::child_pids().empty());
    }
  }
  CHECK(corun::test::child_pids().empty());
  CHECK(corun::test::open_fd_count() == fds);
}

namespace {
/// Prints a line, starts a process that inherits its stdout and stderr and holds them open
/// (it waits for a signal), prints that process's pid, then crashes.
struct LeavesAHolder : Worker<LeavesAHolder, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(SliceView<const std::int64_t>) {
    std::printf("before\n");
    const pid_t holder = ::fork();
    if (holder == 0)
      for (;;) ::pause();
    std::printf("holder %d\n", static_cast<int>(holder));
    std::raise(SIGSEGV);
    return 0;
  }
};
}  // namespace

TEST_CASE("a worker whose child holds its pipes open still ends, its output before that delivered",
          "[pool][output][failure]") {
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork);
  const corun::test::SubreaperScope subreaper;  // the orphaned holder becomes ours to reap
  const int fds = corun::test::open_fd_count();
  pid_t holder = 0;
  {
    asio::io_context io;
    std::vector<Line> lines;
    ProcessPool pool{io.get_executor(),
                     {.workers = 1,
                      .start_method = method,
                      .handshake_timeout = std::chrono::milliseconds(300),
                      .worker_output = keep_lines(lines)}};
    auto ints = iota_array(2);
    const auto it = DataIterator::over(ints, 1);
    auto crash = pool.async_execute<LeavesAHolder>(it, Slice{0, 1}, asio::use_future);
    CHECK_THROWS_AS(drive(io, crash), TaskFailed);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0].text == "before");
    REQUIRE(lines[1].text.rfind("holder ", 0) == 0);
    holder = static_cast<pid_t>(std::stol(lines[1].text.substr(7)));
    // The pool goes on with a fresh worker and fresh pipes.
    lines.clear();
    auto spoke = pool.async_execute<Speak>(it, Slice{1, 2}, asio::use_future);
    const auto who = drive(io, spoke);
    auto shutdown = pool.async_shutdown(asio::use_future);
    drive(io, shutdown);
    CHECK(texts(lines, static_cast<pid_t>(who.at(1)), OutputStream::out) ==
          std::vector<std::string>{"out 2", "cout 2"});
  }
  REQUIRE(holder > 0);
  ::kill(holder, SIGKILL);
  int status = 0;
  CHECK(::waitpid(holder, &status, 0) == holder);
  CHECK(corun::test::child_pids().empty());
  CHECK(corun::test::open_fd_count() == fds);
}

namespace {
constexpr int kBurstLines = 30'000;  // 8 bytes each: 240 KB, several reads of the parent

/// Makes its stdout pipe 1 MiB (as a program may), writes kBurstLines numbered lines into it in
/// 16 KiB write(2) calls, which do not block, then crashes: the lines wait in the pipe.
struct Burst : Worker<Burst, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(SliceView<const std::int64_t>) {
    ::fcntl(1, F_SETPIPE_SZ, 1 << 20);  // best effort: the default 64 KiB also works, slower
    std::string chunk;
    char line[16];
    for (int i = 0; i < kBurstLines; ++i) {
      std::snprintf(line, sizeof line, "%07d\n", i);
      chunk += line;
      if (chunk.size() >= (16u << 10) || i + 1 == kBurstLines) {
        std::size_t done = 0;
        while (done < chunk.size()) {
          const ssize_t n = ::write(1, chunk.data() + done, chunk.size() - done);
          if (n <= 0) return -1;
          done += static_cast<std::size_t>(n);
        }
        chunk.clear();
      }
    }
    std::raise(SIGSEGV);
    return 0;
  }
};
}  // namespace

TEST_CASE("a handler slower than handshake_timeout still gets every line a crashed worker wrote",
          "[pool][output][failure]") {
  const auto method = GENERATE(StartMethod::spawn, StartMethod::fork);
  asio::io_context io;
  int next = 0, bad = 0;
  char expected[16];
  ProcessPool pool{io.get_executor(),
                   {.workers = 1,
                    .start_method = method,
                    .handshake_timeout = std::chrono::milliseconds(300),
                    .worker_output = [&](const WorkerOutputLine& l) {
                      // A slow sink: a 64 KiB read of these lines takes it longer than
                      // handshake_timeout, and the crash leaves several reads in the pipe.
                      std::this_thread::sleep_for(std::chrono::microseconds(50));
                      std::snprintf(expected, sizeof expected, "%07d", next++);
                      if (l.text != expected || !l.newline) ++bad;
                    }}};
  auto ints = iota_array(1);
  auto crash =
      pool.async_execute<Burst>(DataIterator::over(ints, 1), Slice{0, 1}, asio::use_future);
  try {
    drive(io, crash);
    FAIL("expected a crash");
  } catch (const TaskFailed& e) {
    CHECK(e.code() == errc::worker_crashed);
    // Every line was delivered before the crash was reported.
    CHECK(next == kBurstLines);
  }
  CHECK(bad == 0);
}
