// corun_bench: what corun costs, against what a user would otherwise use, with every baseline
// measured in the same run (a raw socketpair round trip between two processes, std::thread in
// process, a serial loop), so that the ratios mean something on a shared, noisy machine.
//
//   corun_bench [--quick] [--json] [--workers N] [--cost-csv PATH] [--rss-slices N]
//               [--only SECTIONS]
//
// Prints a table; with --json the last line is one flat JSON object of numbers. --quick uses
// small sizes (a smoke test of every code path, not numbers to publish). --only runs some of
// the sections start,rtt,many,rss,sum,compute,spin,monitor (to profile one of them).
#include <corun/corun.hpp>
#include <corun/cpu_monitor.hpp>

#include "cli.hpp"

#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <iostream>
#include <new>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace bench {

// The kernels are not inlined, so that worker processes, threads and the serial loop run the
// very same machine code.

/// Memory-bound: one pass of additions.
[[gnu::noinline]] std::int64_t sum_kernel(const std::int64_t* p, std::size_t n) {
  std::int64_t s = 0;
  for (std::size_t i = 0; i < n; ++i) s += p[i];
  return s;
}

/// Compute-bound: 20 libm calls per element (4 rounds of sin, cos, exp, log, sqrt).
[[gnu::noinline]] double compute_kernel(const double* p, std::size_t n) {
  double acc = 0;
  for (std::size_t i = 0; i < n; ++i) {
    double y = p[i];
    for (int round = 0; round < 4; ++round) {
      const double s = std::sin(y);
      const double c = std::cos(y);
      const double e = std::exp(s - c);
      y = std::sqrt(std::log(1.0 + e));
    }
    acc += y;
  }
  return acc;
}

struct SumInts : corun::Worker<SumInts, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(corun::SliceView<const std::int64_t> slice) {
    return sum_kernel(slice.data(), slice.size());
  }
  void process_callback(std::int64_t partial) { total += partial; }
  std::int64_t total = 0;
};

struct Compute : corun::Worker<Compute, double> {
  using Worker::Worker;
  static double process(corun::SliceView<const double> slice) {
    return compute_kernel(slice.data(), slice.size());
  }
  void process_callback(double partial) { total += partial; }
  double total = 0;
};

/// An empty task: no work, no result.
struct Nothing : corun::Worker<Nothing, std::int64_t> {
  using Worker::Worker;
  static void process(corun::SliceView<const std::int64_t>) {}
  void process_callback() { ++callbacks; }
  std::size_t callbacks = 0;
};

}  // namespace bench

CORUN_REGISTER_WORKER(bench::SumInts);
CORUN_REGISTER_WORKER(bench::Compute);
CORUN_REGISTER_WORKER(bench::Nothing);

namespace bench {
namespace {

using Clock = std::chrono::steady_clock;
using asio::use_awaitable;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Config {
  bool quick = false;
  bool json = false;
  std::string cost_csv;
  std::vector<std::string> only;  // sections to run (all when empty), for profiling one of them
  std::size_t rss_slices_forced = 0;
  std::size_t workers = 2;
  int socket_iters = 20'000;  // socketpair ping-pongs (two blocks of half)
  int rtt_iters = 20'000;     // one empty task at a time
  int run_rtt_iters = 5'000;  // one 1-slice orchestrator run at a time
  std::size_t many_tasks = 200'000;
  int many_reps = 3;
  std::size_t rss_slices = 10'000'000;
  double rss_budget_s = 90;  // fewer slices when the measured task rate cannot do 10M in this
  std::size_t sum_n = 100'000'000;
  std::size_t partitions = 8;
  int sum_reps = 5;
  std::size_t compute_n = 20'000'000;
  int compute_reps = 3;
  int start_reps = 5;
  std::size_t cost_max_tasks = 100'000;  // per slice size
  int cost_reps = 3;
  double monitor_seconds = 5;
  int floor_iters = 20'000;              // futex and spinning ping-pongs (two blocks of half)
  std::size_t unbatched_tasks = 50'000;  // empty tasks at pipeline depth 1, per wait mode
  std::chrono::microseconds spin_budget{200};

  void make_quick() {
    quick = true;
    socket_iters = 2'000;
    rtt_iters = 2'000;
    run_rtt_iters = 500;
    many_tasks = 20'000;
    many_reps = 1;
    rss_slices = 20'000;
    sum_n = 10'000'000;
    sum_reps = 2;
    compute_n = 1'000'000;
    compute_reps = 1;
    start_reps = 2;
    cost_max_tasks = 5'000;
    cost_reps = 1;
    monitor_seconds = 1;
    floor_iters = 2'000;
    unbatched_tasks = 5'000;
  }

  bool runs(const std::string& section) const {
    return only.empty() || std::find(only.begin(), only.end(), section) != only.end();
  }
};

/// Named numbers in the order they were measured, and notes for the reader.
struct Results {
  std::vector<std::pair<std::string, double>> values;
  std::vector<std::string> notes;

  void set(const std::string& key, double v) {
    for (auto& [k, old] : values)
      if (k == key) {
        old = v;
        return;
      }
    values.emplace_back(key, v);
  }
  double get(const std::string& key) const {
    for (const auto& [k, v] : values)
      if (k == key) return v;
    return std::nan("");
  }
  bool has(const std::string& key) const {
    return std::any_of(values.begin(), values.end(),
                       [&](const auto& kv) { return kv.first == key; });
  }
};

void progress(const std::string& what) {
  std::cerr << "corun_bench: " << what << std::endl;
}

/// Nearest-rank percentile, p in [0, 100].
double percentile(std::vector<double> v, double p) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
  return v[std::clamp<std::size_t>(rank, 1, v.size()) - 1];
}
double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 != 0 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
double minimum(const std::vector<double>& v) {
  return v.empty() ? std::nan("") : *std::min_element(v.begin(), v.end());
}

std::string fmt(double v, int precision = 3) {
  if (std::isnan(v)) return "-";
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(v != 0 && std::abs(v) < 1 ? precision : (std::abs(v) < 100 ? 2 : 0));
  os << v;
  return os.str();
}

void check(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error("wrong result: " + what);
}

std::int64_t triangle(std::int64_t n) {
  return n * (n + 1) / 2;
}

/// A field of /proc/self/status in kB (VmRSS, VmHWM).
double status_kb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, field.size() + 1, field + ":") == 0)
      return std::stod(line.substr(field.size() + 1));
  throw std::runtime_error("no " + field + " in /proc/self/status");
}

/// Resets VmHWM to the current RSS (Linux >= 4.0); false when the kernel refuses.
bool reset_peak_rss() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return static_cast<bool>(out);
}

/// Fields of /proc/<pid>/stat, numbered as in proc(5) (1 is the pid); empty when it is gone.
std::vector<std::string> proc_stat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  const auto paren = line.rfind(')');  // the command name may contain spaces
  if (paren == std::string::npos) return {};
  std::vector<std::string> fields{std::to_string(pid), "comm"};
  std::istringstream rest(line.substr(paren + 2));
  for (std::string f; rest >> f;) fields.push_back(f);
  return fields;
}

/// Minor page faults of the pool's worker processes so far (field 10).
double worker_minor_faults(const corun::ProcessPool& pool) {
  double total = 0;
  for (pid_t pid : pool.worker_pids())
    if (const auto f = proc_stat(pid); f.size() > 10) total += std::stod(f[10 - 1]);
  return total;
}

/// CPU seconds (user + system, fields 14 and 15) of the pool's worker processes so far.
double worker_cpu_seconds(const corun::ProcessPool& pool) {
  static const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  double total = 0;
  for (pid_t pid : pool.worker_pids())
    if (const auto f = proc_stat(pid); f.size() > 15)
      total += (std::stod(f[14 - 1]) + std::stod(f[15 - 1])) / ticks;
  return total;
}

/// The 1-minute load average: how busy the machine was around the measurements.
double load_average() {
  std::ifstream in("/proc/loadavg");
  double one = std::nan("");
  in >> one;
  return one;
}

double cpu_seconds_self() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

// ---------------------------------------------------------------------------------------------
// Baseline: a blocking ping-pong of a 64-byte message between two processes over a Unix
// socketpair, the floor for one task's round trip.

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}
bool read_all(int fd, char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

/// Round trips in microseconds, one per iteration after a warm-up.
std::vector<double> socketpair_rtts(int iters) {
  constexpr std::size_t kMessage = 64;
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    throw std::runtime_error(std::string("socketpair: ") + std::strerror(errno));
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::close(sv[0]);
    char buf[kMessage];
    while (read_all(sv[1], buf, kMessage) && write_all(sv[1], buf, kMessage)) {
    }
    ::_exit(0);
  }
  ::close(sv[1]);
  char buf[kMessage] = {};
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(iters));
  const int warmup = std::max(100, iters / 10);
  for (int i = 0; i < warmup + iters; ++i) {
    const auto t0 = Clock::now();
    if (!write_all(sv[0], buf, kMessage) || !read_all(sv[0], buf, kMessage))
      throw std::runtime_error("socketpair ping-pong failed");
    if (i >= warmup) us.push_back(seconds_since(t0) * 1e6);
  }
  ::close(sv[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return us;
}

// ---------------------------------------------------------------------------------------------
// Baselines: the floors of a handoff between two processes through shared memory. A futex
// ping-pong sleeps in the kernel as a blocking pool does (the wake-up of a sleeping process);
// a spinning ping-pong never sleeps, the floor of a spinning pool.

/// Two words another process shares (MAP_SHARED before fork), one per direction.
struct PingPongWords {
  alignas(64) std::atomic<std::uint32_t> ping{0};
  alignas(64) std::atomic<std::uint32_t> pong{0};
};

long futex(std::atomic<std::uint32_t>& word, int op, std::uint32_t value) {
  return ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), op, value, nullptr, nullptr,
                   0);
}

/// Waits until `word` holds `value`: spinning, or asleep on the futex.
void await_word(std::atomic<std::uint32_t>& word, std::uint32_t value, bool spin) {
  for (std::uint32_t seen = word.load(); seen != value; seen = word.load())
    if (!spin) futex(word, FUTEX_WAIT, seen);
}

void post_word(std::atomic<std::uint32_t>& word, std::uint32_t value, bool spin) {
  word.store(value);
  if (!spin) futex(word, FUTEX_WAKE, 1);
}

/// Round trips in microseconds, one per iteration after a warm-up.
std::vector<double> shared_word_rtts(int iters, bool spin) {
  void* memory = ::mmap(nullptr, sizeof(PingPongWords), PROT_READ | PROT_WRITE,
                        MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) throw std::runtime_error(std::string("mmap: ") + std::strerror(errno));
  auto* words = new (memory) PingPongWords;
  const int warmup = std::max(100, iters / 10);
  const auto total = static_cast<std::uint32_t>(warmup + iters);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    for (std::uint32_t i = 1; i <= total; ++i) {
      await_word(words->ping, i, spin);
      post_word(words->pong, i, spin);
    }
    ::_exit(0);
  }
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(iters));
  for (std::uint32_t i = 1; i <= total; ++i) {
    const auto t0 = Clock::now();
    post_word(words->ping, i, spin);
    await_word(words->pong, i, spin);
    if (i > static_cast<std::uint32_t>(warmup)) us.push_back(seconds_since(t0) * 1e6);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::munmap(memory, sizeof(PingPongWords));
  return us;
}

// ---------------------------------------------------------------------------------------------
// Baseline: std::thread over the same partitions, each thread taking the next partition.

template <class R, class Kernel>
R run_threads(std::size_t threads, const std::vector<corun::Slice>& parts, Kernel kernel) {
  std::vector<R> partial(parts.size(), R{});
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> pool;
  for (std::size_t t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (std::size_t i = next++; i < parts.size(); i = next++) partial[i] = kernel(parts[i]);
    });
  for (auto& th : pool) th.join();
  return std::accumulate(partial.begin(), partial.end(), R{});
}

std::vector<corun::Slice> slices_of(const corun::DataIterator& it) {
  return {it.begin(), it.end()};
}

// ---------------------------------------------------------------------------------------------

asio::awaitable<void> measure_pool_start(const Config& cfg, Results& r) {
  auto ex = co_await asio::this_coro::executor;
  std::vector<double> fork_ms, spawn_ms;
  for (int rep = 0; rep < cfg.start_reps; ++rep) {
    for (auto method : {corun::StartMethod::fork, corun::StartMethod::spawn}) {
      const auto t0 = Clock::now();
      corun::ProcessPool pool{ex, {.workers = cfg.workers, .start_method = method}};
      co_await pool.async_wait_ready(use_awaitable);
      const double ms = seconds_since(t0) * 1e3;
      (method == corun::StartMethod::fork ? fork_ms : spawn_ms).push_back(ms);
      co_await pool.async_shutdown(use_awaitable);
    }
  }
  r.set("pool_start_fork_ms", median(fork_ms));
  r.set("pool_start_spawn_ms", median(spawn_ms));
}

asio::awaitable<void> measure_round_trips(const Config& cfg, corun::ProcessPool& pool, Results& r) {
  // Two blocks of socketpair round trips around the task loop, so that both see the same load.
  std::vector<double> raw = socketpair_rtts(cfg.socket_iters / 2);

  auto one = corun::SharedArray<std::int64_t>::create({1});
  const auto it = corun::DataIterator::over(one, 1);
  std::vector<double> task_us;
  task_us.reserve(static_cast<std::size_t>(cfg.rtt_iters));
  const int warmup = std::max(100, cfg.rtt_iters / 10);
  for (int i = 0; i < warmup + cfg.rtt_iters; ++i) {
    const auto t0 = Clock::now();
    co_await pool.async_execute<Nothing>(it, corun::Slice{0, 1}, use_awaitable);
    if (i >= warmup) task_us.push_back(seconds_since(t0) * 1e6);
  }

  // The same through the orchestrator: a run of one slice, ending in process_callback.
  Nothing nothing{it};
  corun::WorkerOrchestrator orch{pool, {&nothing}, {.record_tasks = false}};
  std::vector<double> run_us;
  for (int i = 0; i < warmup + cfg.run_rtt_iters; ++i) {
    const auto t0 = Clock::now();
    co_await orch.run();
    if (i >= warmup) run_us.push_back(seconds_since(t0) * 1e6);
  }
  check(nothing.callbacks == static_cast<std::size_t>(warmup + cfg.run_rtt_iters),
        "1-slice runs: callbacks");

  const auto more = socketpair_rtts(cfg.socket_iters - cfg.socket_iters / 2);
  raw.insert(raw.end(), more.begin(), more.end());

  r.set("socketpair_rtt_us", median(raw));
  r.set("socketpair_rtt_us_p99", percentile(raw, 99));
  r.set("empty_task_rtt_us_p50", median(task_us));
  r.set("empty_task_rtt_us_p99", percentile(task_us, 99));
  r.set("empty_run_rtt_us_p50", median(run_us));
  r.set("empty_run_rtt_us_p99", percentile(run_us, 99));
}

asio::awaitable<void> measure_many_empty(const Config& cfg, corun::ProcessPool& pool, Results& r) {
  auto ints = corun::SharedArray<std::int64_t>::create({cfg.many_tasks});
  Nothing nothing{corun::DataIterator::over(ints, 1)};
  corun::WorkerOrchestrator orch{pool, {&nothing}, {.record_tasks = false}};
  std::vector<double> rates, parent_cpu, worker_cpu;
  for (int rep = 0; rep < cfg.many_reps; ++rep) {
    nothing.callbacks = 0;
    const double parent0 = cpu_seconds_self(), workers0 = worker_cpu_seconds(pool);
    const auto t0 = Clock::now();
    const corun::RunReport report = co_await orch.run();
    rates.push_back(static_cast<double>(cfg.many_tasks) / seconds_since(t0));
    // Diagnostics: where the CPU time of one task goes (worker times in clock ticks).
    const double per_task_us = 1e6 / static_cast<double>(cfg.many_tasks);
    parent_cpu.push_back((cpu_seconds_self() - parent0) * per_task_us);
    worker_cpu.push_back((worker_cpu_seconds(pool) - workers0) * per_task_us);
    check(nothing.callbacks == cfg.many_tasks && report.tasks_done == cfg.many_tasks,
          "many empty tasks: callbacks");
  }
  r.set("empty_tasks_per_s", median(rates));
  r.set("empty_task_parent_cpu_us", median(parent_cpu));
  r.set("empty_task_workers_cpu_us", median(worker_cpu));
  r.set("empty_tasks_n", static_cast<double>(cfg.many_tasks));
}

asio::awaitable<void> measure_rss(const Config& cfg, corun::ProcessPool& pool, Results& r) {
  // 10M slices unless the task rate measured above says that would take longer than the
  // budget; then 1M or 100k, said in the output, and nothing extrapolated.
  std::size_t slices = cfg.rss_slices;
  if (cfg.rss_slices_forced != 0) {
    slices = cfg.rss_slices_forced;
  } else if (r.has("empty_tasks_per_s")) {
    const double affordable = r.get("empty_tasks_per_s") * cfg.rss_budget_s;
    while (slices > 100'000 && static_cast<double>(slices) > affordable) slices /= 10;
  }
  // The parent never touches the array's pages: only the run's own memory can grow.
  auto ints = corun::SharedArray<std::int64_t>::create({slices});
  Nothing nothing{corun::DataIterator::over(ints, 1)};
  corun::WorkerOrchestrator orch{pool, {&nothing}, {.record_tasks = false}};
  const bool peak_ok = reset_peak_rss();
  const double before_kb = status_kb("VmRSS");
  const auto t0 = Clock::now();
  const corun::RunReport report = co_await orch.run();
  const double seconds = seconds_since(t0);
  const double after_kb = status_kb("VmRSS");
  check(report.tasks_done == slices, "rss run: tasks");
  r.set("rss_growth_10m_slices_mb", (after_kb - before_kb) / 1024);
  if (peak_ok) r.set("rss_peak_growth_10m_slices_mb", (status_kb("VmHWM") - before_kb) / 1024);
  r.set("rss_slices", static_cast<double>(slices));
  r.set("rss_run_s", seconds);
  if (slices != 10'000'000)
    r.notes.push_back("rss_growth_10m_slices_mb was measured over " + std::to_string(slices) +
                      " one-element slices, not 10M (" +
                      (cfg.quick ? std::string("--quick")
                                 : "10M would take over " + fmt(cfg.rss_budget_s) +
                                       " s at the measured task rate") +
                      "); nothing is extrapolated");
}

asio::awaitable<void> measure_sum_and_cost(const Config& cfg, corun::ProcessPool& pool,
                                           Results& r) {
  const std::size_t n = cfg.sum_n;
  auto ints = corun::SharedArray<std::int64_t>::create({n});
  std::iota(ints.begin(), ints.end(), std::int64_t{1});
  const std::int64_t expected = triangle(static_cast<std::int64_t>(n));

  SumInts add{corun::DataIterator::partitioned(ints, cfg.partitions)};
  const auto parts = slices_of(add.data_iterator());
  corun::WorkerOrchestrator orch{pool, {&add}};
  co_await orch.run();  // warm: workers map the segment and fault its pages in
  check(add.total == expected, "sum100m warm-up");

  std::vector<double> corun_ms, threads_ms, serial_ms, faults;
  for (int rep = 0; rep < cfg.sum_reps; ++rep) {
    add.total = 0;
    const double faults0 = worker_minor_faults(pool);
    auto t0 = Clock::now();
    co_await orch.run();
    corun_ms.push_back(seconds_since(t0) * 1e3);
    faults.push_back(worker_minor_faults(pool) - faults0);
    check(add.total == expected, "sum100m corun");

    t0 = Clock::now();
    const std::int64_t by_threads = run_threads<std::int64_t>(
        cfg.workers, parts,
        [&](corun::Slice s) { return sum_kernel(ints.data() + s.start, s.size()); });
    threads_ms.push_back(seconds_since(t0) * 1e3);
    check(by_threads == expected, "sum100m threads");

    t0 = Clock::now();
    const std::int64_t by_loop = sum_kernel(ints.data(), n);
    serial_ms.push_back(seconds_since(t0) * 1e3);
    check(by_loop == expected, "sum100m serial");
  }
  r.set("sum100m_ms", median(corun_ms));
  r.set("sum100m_threads_ms", median(threads_ms));
  r.set("sum100m_serial_ms", median(serial_ms));
  r.set("sum100m_ms_min", minimum(corun_ms));
  r.set("sum100m_threads_ms_min", minimum(threads_ms));
  r.set("sum100m_serial_ms_min", minimum(serial_ms));
  r.set("sum_elements", static_cast<double>(n));
  r.set("sum100m_worker_faults", median(faults));  // diagnostic: page faults in a warm run
  const double threads_ns_per_elem = median(threads_ms) * 1e6 / static_cast<double>(n);

  // Cost per slice: the same sum over slices of each size, at most cost_max_tasks slices (taken
  // from the end of the array, through DataIterator::start_idx).
  std::ofstream csv;
  if (!cfg.cost_csv.empty()) {
    csv.open(cfg.cost_csv);
    if (!csv) throw std::runtime_error("cannot write " + cfg.cost_csv);
    csv << "slice_size,tasks,elements,seconds,ns_per_task,ns_per_elem,threads_ns_per_elem\n";
  }
  for (std::size_t size = 1; size <= 10'000'000; size *= 10) {
    auto it = corun::DataIterator::over(ints, size);
    const std::size_t elements = std::min(n, size * cfg.cost_max_tasks);
    it.start_idx = n - elements;
    SumInts part{it};
    const std::size_t tasks = it.slice_count();
    const std::int64_t want = expected - triangle(static_cast<std::int64_t>(n - elements));
    corun::WorkerOrchestrator cost_orch{pool, {&part}, {.record_tasks = false}};
    std::vector<double> secs;
    for (int rep = 0; rep < cfg.cost_reps; ++rep) {
      part.total = 0;
      const auto t0 = Clock::now();
      co_await cost_orch.run();
      secs.push_back(seconds_since(t0));
      check(part.total == want, "cost per slice, size " + std::to_string(size));
    }
    const double s = median(secs);
    const double per_task = s * 1e9 / static_cast<double>(tasks);
    const double per_elem = s * 1e9 / static_cast<double>(elements);
    const std::string label = size >= 1'000'000 ? std::to_string(size / 1'000'000) + "M"
                              : size >= 1'000   ? std::to_string(size / 1'000) + "k"
                                                : std::to_string(size);
    r.set("cost_per_slice_ns_per_task_" + label, per_task);
    r.set("cost_per_slice_ns_per_elem_" + label, per_elem);
    if (csv.is_open())
      csv << size << ',' << tasks << ',' << elements << ',' << s << ',' << per_task << ','
          << per_elem << ',' << threads_ns_per_elem << '\n';
  }
}

asio::awaitable<void> measure_compute(const Config& cfg, corun::ProcessPool& pool, Results& r) {
  const std::size_t n = cfg.compute_n;
  auto xs = corun::SharedArray<double>::create({n});
  for (std::size_t i = 0; i < n; ++i) xs[i] = static_cast<double>(i % 1000) / 1000.0;

  Compute compute{corun::DataIterator::partitioned(xs, cfg.partitions)};
  const auto parts = slices_of(compute.data_iterator());
  corun::WorkerOrchestrator orch{pool, {&compute}};
  co_await orch.run();  // warm
  const double reference = compute.total;

  auto close_to = [&](double v) { return std::abs(v - reference) <= 1e-9 * std::abs(reference); };
  std::vector<double> corun_ms, threads_ms, serial_ms;
  for (int rep = 0; rep < cfg.compute_reps; ++rep) {
    compute.total = 0;
    auto t0 = Clock::now();
    co_await orch.run();
    corun_ms.push_back(seconds_since(t0) * 1e3);
    check(close_to(compute.total), "compute corun");

    t0 = Clock::now();
    const double by_threads = run_threads<double>(cfg.workers, parts, [&](corun::Slice s) {
      return compute_kernel(xs.data() + s.start, s.size());
    });
    threads_ms.push_back(seconds_since(t0) * 1e3);
    check(close_to(by_threads), "compute threads");

    t0 = Clock::now();
    const double by_loop = compute_kernel(xs.data(), n);
    serial_ms.push_back(seconds_since(t0) * 1e3);
    check(close_to(by_loop), "compute serial");
  }
  r.set("compute_ms", median(corun_ms));
  r.set("compute_threads_ms", median(threads_ms));
  r.set("compute_serial_ms", median(serial_ms));
  r.set("compute_ms_min", minimum(corun_ms));
  r.set("compute_threads_ms_min", minimum(threads_ms));
  r.set("compute_serial_ms_min", minimum(serial_ms));
  r.set("compute_elements", static_cast<double>(n));
}

/// Blocking against spinning pools (PoolOptions::wait), in the same run, beside the floors: one
/// empty task at a time, empty tasks unbatched (pipeline depth 1, so that every task is a
/// handoff), a compute-bound run (spinning must not cost throughput when spinners outnumber the
/// cores), and the CPU an idle pool takes over a second after its last task.
asio::awaitable<void> measure_wait_modes(const Config& cfg, Results& r) {
  auto ex = co_await asio::this_coro::executor;
  std::vector<double> futex_us = shared_word_rtts(cfg.floor_iters / 2, false);
  std::vector<double> spin_us = shared_word_rtts(cfg.floor_iters / 2, true);

  auto one = corun::SharedArray<std::int64_t>::create({cfg.unbatched_tasks});
  const std::size_t compute_n = cfg.compute_n / 4;
  auto xs = corun::SharedArray<double>::create({compute_n});
  for (std::size_t i = 0; i < compute_n; ++i) xs[i] = static_cast<double>(i % 1000) / 1000.0;
  const auto single = corun::DataIterator::over(one, 1);
  struct Mode {
    const char* name;
    corun::WaitMode wait;
    std::vector<double> rtt_us, rates, compute_ms, idle_pct;
  };
  std::vector<Mode> modes{{"blocking", corun::WaitMode::blocking(), {}, {}, {}, {}},
                          {"spin", corun::WaitMode::spin(cfg.spin_budget), {}, {}, {}, {}}};
  double reference = std::nan("");
  // Two rounds, the modes alternating, so that both see the same machine.
  for (int round = 0; round < 2; ++round)
    for (Mode& mode : modes) {
      corun::ProcessPool pool{ex,
                              {.workers = cfg.workers,
                               .pipeline_depth = 1,
                               .max_pipeline_depth = 1,
                               .wait = mode.wait}};
      co_await pool.async_wait_ready(use_awaitable);
      const int warmup = std::max(100, cfg.rtt_iters / 20);
      for (int i = 0; i < warmup + cfg.rtt_iters / 2; ++i) {
        const auto t0 = Clock::now();
        co_await pool.async_execute<Nothing>(single, corun::Slice{0, 1}, use_awaitable);
        if (i >= warmup) mode.rtt_us.push_back(seconds_since(t0) * 1e6);
      }
      Nothing nothing{single};
      corun::WorkerOrchestrator empty{pool, {&nothing}, {.record_tasks = false}};
      auto t0 = Clock::now();
      co_await empty.run();
      mode.rates.push_back(static_cast<double>(cfg.unbatched_tasks) / seconds_since(t0));
      check(nothing.callbacks == cfg.unbatched_tasks, "unbatched empty tasks: callbacks");

      Compute compute{corun::DataIterator::partitioned(xs, cfg.partitions)};
      corun::WorkerOrchestrator busy{pool, {&compute}};
      t0 = Clock::now();
      co_await busy.run();
      mode.compute_ms.push_back(seconds_since(t0) * 1e3);
      if (std::isnan(reference)) reference = compute.total;
      check(std::abs(compute.total - reference) <= 1e-9 * std::abs(reference),
            std::string("compute, ") + mode.name);

      // Idle: the workers' CPU time over one second with nothing to do, the spin budget past.
      asio::steady_timer timer{ex};
      timer.expires_after(cfg.spin_budget * 2);
      co_await timer.async_wait(use_awaitable);
      const double cpu0 = worker_cpu_seconds(pool) + cpu_seconds_self();
      const auto idle0 = Clock::now();
      timer.expires_after(std::chrono::seconds(1));
      co_await timer.async_wait(use_awaitable);
      mode.idle_pct.push_back((worker_cpu_seconds(pool) + cpu_seconds_self() - cpu0) /
                              seconds_since(idle0) * 100);
      co_await pool.async_shutdown(use_awaitable);
    }
  const auto more_futex = shared_word_rtts(cfg.floor_iters - cfg.floor_iters / 2, false);
  const auto more_spin = shared_word_rtts(cfg.floor_iters - cfg.floor_iters / 2, true);
  futex_us.insert(futex_us.end(), more_futex.begin(), more_futex.end());
  spin_us.insert(spin_us.end(), more_spin.begin(), more_spin.end());
  r.set("futex_rtt_us", median(futex_us));
  r.set("futex_rtt_us_p99", percentile(futex_us, 99));
  r.set("spin_floor_rtt_us", median(spin_us));
  r.set("spin_floor_rtt_us_p99", percentile(spin_us, 99));
  for (Mode& mode : modes) {
    const std::string name = mode.name;
    r.set(name + "_task_rtt_us_p50", median(mode.rtt_us));
    r.set(name + "_task_rtt_us_p99", percentile(mode.rtt_us, 99));
    r.set(name + "_unbatched_per_s", median(mode.rates));
    r.set(name + "_compute_ms", median(mode.compute_ms));
    r.set(name + "_idle_cpu_pct", median(mode.idle_pct));
  }
  r.set("spin_budget_us", static_cast<double>(cfg.spin_budget.count()));
}

/// Process CPU time over `period` as a percentage of one core, the loop otherwise idle.
asio::awaitable<double> cpu_pct_over(Clock::duration period, corun::CpuMonitor* monitor) {
  asio::steady_timer timer{co_await asio::this_coro::executor};
  const double cpu0 = cpu_seconds_self();
  const auto t0 = Clock::now();
  if (monitor != nullptr) monitor->start();
  timer.expires_after(period);
  co_await timer.async_wait(use_awaitable);
  if (monitor != nullptr) monitor->stop();
  co_return (cpu_seconds_self() - cpu0) / seconds_since(t0) * 100;
}

asio::awaitable<void> measure_monitor(const Config& cfg, Results& r) {
  auto ex = co_await asio::this_coro::executor;
  const auto period = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(cfg.monitor_seconds));
  // The hwloc topology is loaded once per process, before the measured period, as a program
  // that monitors more than once pays it once.
  const double setup0 = cpu_seconds_self();
  (void)corun::CpuTopology::local();
  r.set("monitor_setup_cpu_ms", (cpu_seconds_self() - setup0) * 1e3);

  const double idle_pct = co_await cpu_pct_over(period, nullptr);
  corun::CpuMonitor monitor{ex, std::chrono::milliseconds(100)};
  const double monitor_pct = co_await cpu_pct_over(period, &monitor);
  const auto samples = monitor.series().size();
  const double expected = cfg.monitor_seconds * 10;
  check(static_cast<double>(samples) >= expected * 0.8 &&
            static_cast<double>(samples) <= expected + 2,
        "CpuMonitor took " + std::to_string(samples) + " samples in " + fmt(cfg.monitor_seconds) +
            " s at 10 Hz");
  r.set("idle_loop_cpu_pct", idle_pct);
  r.set("monitor_overhead_pct", monitor_pct);
  r.set("monitor_samples", static_cast<double>(samples));
  r.set("monitor_seconds", cfg.monitor_seconds);
}

asio::awaitable<void> run_all(const Config& cfg, Results& r) {
  auto ex = co_await asio::this_coro::executor;
  // Pools start first, while this process is small (fork copies its page tables).
  if (cfg.runs("start")) {
    progress("pool start (fork, spawn)");
    co_await measure_pool_start(cfg, r);
  }
  {
    corun::ProcessPool pool{ex, {.workers = cfg.workers}};
    co_await pool.async_wait_ready(use_awaitable);
    if (cfg.runs("rtt")) {
      progress("round trips (socketpair, one empty task)");
      co_await measure_round_trips(cfg, pool, r);
    }
    if (cfg.runs("many")) {
      progress("many empty tasks");
      co_await measure_many_empty(cfg, pool, r);
    }
    if (cfg.runs("rss")) {
      progress("resident memory over many one-element slices");
      co_await measure_rss(cfg, pool, r);
    }
    if (cfg.runs("sum")) {
      progress("sum over " + std::to_string(cfg.sum_n) + " int64, cost per slice size");
      co_await measure_sum_and_cost(cfg, pool, r);
    }
    if (cfg.runs("compute")) {
      progress("compute-bound kernel over " + std::to_string(cfg.compute_n) + " float64");
      co_await measure_compute(cfg, pool, r);
    }
    co_await pool.async_shutdown(use_awaitable);
  }
  if (cfg.runs("spin")) {
    progress("wait modes: futex and spinning floors, blocking and spinning pools");
    co_await measure_wait_modes(cfg, r);
  }
  if (cfg.runs("monitor")) {
    progress("CPU monitor overhead");
    co_await measure_monitor(cfg, r);
  }
}

// ---------------------------------------------------------------------------------------------

void print_table(const Config& cfg, const Results& r) {
  struct Row {
    const char* what;
    const char* key;
    const char* unit;
    const char* baseline_what;
    const char* baseline_key;
    const char* target;  // "<= 1.5x" etc.: the ratio corun/baseline the issue asks for
  };
  const Row rows[] = {
      {"one empty task, p50", "empty_task_rtt_us_p50", "us", "socketpair RTT p50",
       "socketpair_rtt_us", "<= 1.5"},
      {"one empty task, p99", "empty_task_rtt_us_p99", "us", "socketpair RTT p99",
       "socketpair_rtt_us_p99", ""},
      {"1-slice run, p50", "empty_run_rtt_us_p50", "us", "socketpair RTT p50", "socketpair_rtt_us",
       ""},
      {"1-slice run, p99", "empty_run_rtt_us_p99", "us", "", "", ""},
      {"empty tasks, 2 workers", "empty_tasks_per_s", "/s", "", "", ""},
      {"futex ping-pong, p50", "futex_rtt_us", "us", "socketpair RTT p50", "socketpair_rtt_us", ""},
      {"spinning shm ping-pong, p50", "spin_floor_rtt_us", "us", "socketpair RTT p50",
       "socketpair_rtt_us", ""},
      {"1 task, spin, p50", "spin_task_rtt_us_p50", "us", "spinning shm p50", "spin_floor_rtt_us",
       "<= 10"},
      {"1 task, spin, p50 ", "spin_task_rtt_us_p50", "us", "socketpair RTT p50",
       "socketpair_rtt_us", "<= 0.1"},
      {"1 task, spin, p99", "spin_task_rtt_us_p99", "us", "blocking p99",
       "blocking_task_rtt_us_p99", ""},
      {"1 task, blocking, p50", "blocking_task_rtt_us_p50", "us", "socketpair RTT p50",
       "socketpair_rtt_us", ""},
      {"unbatched tasks, spin", "spin_unbatched_per_s", "/s", "blocking",
       "blocking_unbatched_per_s", ">= 4"},
      {"compute, spin", "spin_compute_ms", "ms", "blocking", "blocking_compute_ms", "<= 1.0"},
      {"idle second, spin pool", "spin_idle_cpu_pct", "% core", "blocking pool",
       "blocking_idle_cpu_pct", "~0"},
      {"sum int64, 8 parts", "sum100m_ms", "ms", "std::thread x2", "sum100m_threads_ms", "<= 1.25"},
      {"sum int64, serial", "sum100m_serial_ms", "ms", "", "", ""},
      {"compute, 8 parts", "compute_ms", "ms", "std::thread x2", "compute_threads_ms", "<= 1.05"},
      {"compute, serial", "compute_serial_ms", "ms", "", "", ""},
      {"pool start, fork", "pool_start_fork_ms", "ms", "", "", "<= 10 ms"},
      {"pool start, spawn", "pool_start_spawn_ms", "ms", "", "", ""},
      {"CPU monitor at 10 Hz", "monitor_overhead_pct", "% core", "idle loop", "idle_loop_cpu_pct",
       "<= 0.5 %"},
      {"RSS growth, 1-elem slices", "rss_growth_10m_slices_mb", "MB", "", "", "<= 16 MB"},
      {"RSS peak growth, same run", "rss_peak_growth_10m_slices_mb", "MB", "", "", ""},
  };
  std::printf("corun_bench%s: %zu workers, %u hardware threads; baselines measured in this run\n",
              cfg.quick ? " --quick (small sizes: a smoke test, not numbers to publish)" : "",
              cfg.workers, std::thread::hardware_concurrency());
  std::printf("load average (1 min): %.2f at the start, %.2f at the end\n",
              r.get("loadavg_1m_start"), r.get("loadavg_1m_end"));
  std::printf("sizes: sum %s int64, compute %s float64, %s empty tasks, rss run %s slices\n",
              fmt(r.get("sum_elements")).c_str(), fmt(r.get("compute_elements")).c_str(),
              fmt(r.get("empty_tasks_n")).c_str(), fmt(r.get("rss_slices")).c_str());
  std::printf("\n%-27s %12s %-7s %-20s %12s %8s  %s\n", "measurement", "corun", "unit", "baseline",
              "value", "ratio", "target");
  for (const Row& row : rows) {
    const double v = r.get(row.key);
    const double b = row.baseline_key[0] != '\0' ? r.get(row.baseline_key) : std::nan("");
    // The idle loop is a reference for the monitor, not a baseline to divide by.
    const double ratio = std::strcmp(row.key, "monitor_overhead_pct") == 0 ? std::nan("") : v / b;
    std::printf("%-27s %12s %-7s %-20s %12s %8s  %s\n", row.what, fmt(v).c_str(), row.unit,
                row.baseline_what, fmt(b).c_str(), fmt(ratio).c_str(), row.target);
  }
  std::printf("\n%-12s %14s %14s\n", "slice size", "ns per task", "ns per element");
  for (const char* label : {"1", "10", "100", "1k", "10k", "100k", "1M", "10M"}) {
    const std::string suffix = label;
    std::printf("%-12s %14s %14s\n", label,
                fmt(r.get("cost_per_slice_ns_per_task_" + suffix)).c_str(),
                fmt(r.get("cost_per_slice_ns_per_elem_" + suffix)).c_str());
  }
  for (const auto& note : r.notes) std::printf("note: %s\n", note.c_str());
}

/// One flat object of numbers in the order they were measured; a measurement that did not run
/// (NaN) or overflowed has no key, since JSON has no number for it.
void print_json(const Results& r) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  for (const auto& [k, v] : r.values)
    if (std::isfinite(v)) out[k] = v;
  std::printf("%s\n", out.dump().c_str());
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
  corun::enter_worker_if_spawned(argc, argv);  // a worker process never returns from here
  bench::Config cfg;
  bool quick = false;
  CLI::App app{"corun against baselines measured in the same run"};
  app.add_flag("--quick", quick, "small sizes, for CI");
  app.add_flag("--json", cfg.json, "add one JSON object on the last line");
  app.add_option("--cost-csv", cfg.cost_csv, "write the cost per slice here");
  app.add_option("--workers", cfg.workers, "worker processes of every pool")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_option("--rss-slices", cfg.rss_slices_forced, "slices of the memory section")
      ->check(CLI::Range(0ULL, 1ULL << 40));
  app.add_option("--only", cfg.only, "sections to run")
      ->delimiter(',')
      ->check(CLI::IsMember({"start", "rtt", "many", "rss", "sum", "compute", "spin", "monitor"}));
  corun_cli::parse_or_exit(app, argc, argv);
  if (quick) cfg.make_quick();

  bench::Results results;
  results.set("quick", cfg.quick ? 1 : 0);
  results.set("workers", static_cast<double>(cfg.workers));
  results.set("loadavg_1m_start", bench::load_average());
  asio::io_context io;
  std::exception_ptr failure;
  asio::co_spawn(io, bench::run_all(cfg, results), [&](std::exception_ptr e) { failure = e; });
  io.run();
  results.set("loadavg_1m_end", bench::load_average());
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "corun_bench: %s\n", e.what());
      return 1;
    }
  }
  bench::print_table(cfg, results);
  if (cfg.json) {
    std::fflush(stdout);
    bench::print_json(results);
  }
  return 0;
}
