#include "support/workers.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <numeric>
#include <stdexcept>
#include <xtensor/xmath.hpp>

namespace corun::test {

namespace {
std::int64_t hook_value = 0;  // set by init_hook in each worker process
}

std::int64_t AddInts::process(SliceView<const std::int64_t> slice) {
  return xt::sum(slice)();
}

Piece ConcatStr::process(SliceView<const FixedUString<8>> slice, const TaskContext& ctx) {
  Piece piece{ctx.slice.start, {}};
  for (const auto& s : slice) piece.text += s.str();
  return piece;
}

std::string ConcatStr::joined() const {
  std::string all;
  for (const auto& [start, text] : pieces) all += text;
  return all;
}

std::int64_t Faulty::process(SliceView<const std::int64_t> slice) {
  std::int64_t sum = 0;
  for (std::int64_t v : slice) {
    switch (v) {
      case -1:
        throw std::runtime_error("row value -1 is poison");
      case -2:
        std::raise(SIGSEGV);
        break;
      case -3:
        std::abort();
      case -4:
        std::exit(7);
      case -5:
        for (;;) ::pause();
      case -8: {
        // 600 ms of this thread's CPU time from here: the worker's start (its exec, a
        // sanitizer's set-up) may have used a good part of it already on a loaded machine.
        auto cpu_ns = [] {
          timespec t{};
          ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
          return t.tv_sec * 1'000'000'000L + t.tv_nsec;
        };
        const long from = cpu_ns();
        while (cpu_ns() - from < 600'000'000L) {
        }
        break;
      }
      default:
        sum += v;
    }
  }
  return sum;
}

std::vector<std::int64_t> WhoAmI::process(SliceView<const std::int64_t>, const TaskContext& ctx) {
  return {ctx.worker_id, static_cast<std::int64_t>(::getpid()), hook_value};
}

void Square::process(SliceView<const std::int64_t> in, const TaskContext& ctx) {
  auto out = ctx.output<std::int64_t>();
  out = in * in;
}

std::int64_t Gate::process(SliceView<const std::int64_t> slice) {
  for (std::int64_t v : slice) {
    if (v != -7) continue;
    const int fd = ::open(std::getenv("CORUN_TEST_FIFO"), O_RDONLY);
    char byte = 0;
    if (fd < 0 || ::read(fd, &byte, 1) != 1) throw std::runtime_error("gate fifo failed");
    ::close(fd);
  }
  return static_cast<std::int64_t>(slice.size());
}

void Gate::process_callback(std::int64_t rows) {
  threads.push_back(std::this_thread::get_id());
  rows_seen += rows;
  if (fifo_writer >= 0) return;
  // O_RDWR never blocks on a FIFO, and keeps the byte there until the gated task reads it.
  fifo_writer = ::open(std::getenv("CORUN_TEST_FIFO"), O_RDWR);
  if (fifo_writer < 0 || ::write(fifo_writer, "x", 1) != 1)
    throw std::runtime_error("cannot open the gate fifo");
}

Gate::~Gate() {
  if (fifo_writer >= 0) ::close(fifo_writer);
}

PerProcess::State PerProcess::init_state(const std::int64_t& base, const WorkerInfo&) {
  return State{0, base};
}

void PerProcess::worker_init(const std::int64_t& base, const WorkerInfo&) {
  ++inits;
  init_params = base;
}

void PerProcess::worker_exit(State& state, const std::int64_t&, const WorkerInfo& info) {
  ++exits;
  if (const char* dir = std::getenv("CORUN_TEST_HOOK_DIR"))
    std::ofstream(std::string(dir) + "/state_" + std::to_string(info.pid)) << state.tasks;
}

std::vector<std::int64_t> PerProcess::process(SliceView<const std::int64_t>,
                                              const std::int64_t& base, const TaskContext& ctx) {
  State& state = ctx.state<State>();
  return {static_cast<std::int64_t>(::getpid()), ++state.tasks, state.base + base, inits,
          init_params};
}

void init_hook(const WorkerInfo& info) {
  hook_value = 1000 + info.worker_id;
}

void exit_hook(const WorkerInfo& info) {
  const char* dir = std::getenv("CORUN_TEST_HOOK_DIR");
  if (dir == nullptr) return;
  std::ofstream(std::string(dir) + "/exit_" + std::to_string(info.worker_id)) << info.pid;
}

void flaky_init(const WorkerInfo&) {
  const char* marker = std::getenv("CORUN_TEST_FLAKY_MARKER");
  if (marker == nullptr) return;
  const int fd = ::open(marker, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) return;  // someone failed already
  ::close(fd);
  throw std::runtime_error("flaky_init fails once");
}

SharedArray<std::int64_t> iota_array(std::size_t n) {
  auto a = SharedArray<std::int64_t>::create({n});
  std::iota(a.begin(), a.end(), std::int64_t{1});
  return a;
}

}  // namespace corun::test

void corun::codec<corun::test::Piece>::encode(const corun::test::Piece& p, std::string& out) {
  const std::uint64_t start = p.start;
  out.append(reinterpret_cast<const char*>(&start), sizeof start);
  out.append(p.text);
}

corun::test::Piece corun::codec<corun::test::Piece>::decode(std::string_view bytes) {
  if (bytes.size() < sizeof(std::uint64_t)) throw std::invalid_argument("Piece: truncated");
  std::uint64_t start;
  std::memcpy(&start, bytes.data(), sizeof start);
  return {start, std::string(bytes.substr(sizeof start))};
}

CORUN_REGISTER_WORKER(corun::test::AddInts);
CORUN_REGISTER_WORKER(corun::test::ConcatStr);
CORUN_REGISTER_WORKER(corun::test::Faulty);
CORUN_REGISTER_WORKER(corun::test::WhoAmI);
CORUN_REGISTER_WORKER(corun::test::Square);
CORUN_REGISTER_WORKER(corun::test::Empty);
CORUN_REGISTER_WORKER(corun::test::Blob);
CORUN_REGISTER_WORKER(corun::test::Gate);
CORUN_REGISTER_WORKER(corun::test::PerProcess);
