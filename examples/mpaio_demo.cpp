// mpaio's example in corun: an int64 array 1..n summed by AddIntWorker and the strings
// foo_0..foo_99 concatenated by ConcatStrWorker, both in one orchestrator run over a pool of
// worker processes, with per-core CPU utilisation sampled, exported as CSV, and plotted.
// AddIntWorker passes each element through --rounds rounds of an invertible integer mix and
// back before adding it: CPU work that leaves the sum exact, so that the picture shows the
// cores busy for a while (a plain sum of 100M int64 is over in a few samples, bound by memory).
//
// Standard output is exactly: sum=<int>, concat=<string>, run_seconds=<float>, samples=<int>;
// with --insights, then the table of RunReport::insights() (per worker process: start-up and
// init time, tasks, time working and waiting; the run's efficiency).
#include <corun/corun.hpp>

#include "cli.hpp"

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>

#include <sys/wait.h>
#include <unistd.h>
#include <cstdint>
#include <iostream>
#include <map>
#include <numeric>
#include <string>
#include <xtensor/xmath.hpp>

using Str = corun::FixedUString<8>;

/// splitmix64's finaliser, a bijection of 64-bit integers, and its inverse.
constexpr std::uint64_t mix(std::uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9;
  x = (x ^ (x >> 27)) * 0x94d049bb133111eb;
  return x ^ (x >> 31);
}
constexpr std::uint64_t unmix(std::uint64_t x) {
  x = (x ^ (x >> 31) ^ (x >> 62)) * 0x319642b2d24d8ec3;
  x = (x ^ (x >> 27) ^ (x >> 54)) * 0x96de1b173f119089;
  return x ^ (x >> 30) ^ (x >> 60);
}
static_assert(unmix(mix(1)) == 1 && unmix(mix(~0ULL)) == ~0ULL);

/// The work per element, chosen in main: travels once to each worker process (trivially
/// copyable, sent as its bytes).
struct Work {
  unsigned rounds = 0;
};

struct AddIntWorker : corun::Worker<AddIntWorker, std::int64_t, Work> {
  using Worker::Worker;
  static std::int64_t process(corun::SliceView<const std::int64_t> slice, const Work& work) {
    if (work.rounds == 0) return xt::sum(slice)();
    std::int64_t sum = 0;
    for (const std::int64_t v : slice) {
      auto x = static_cast<std::uint64_t>(v);
      for (unsigned r = 0; r < work.rounds; ++r) x = mix(x);
      for (unsigned r = 0; r < work.rounds; ++r) x = unmix(x);
      sum += static_cast<std::int64_t>(x);  // v again
    }
    return sum;
  }
  void process_callback(std::int64_t partial) { total += partial; }
  std::int64_t total = 0;
};
CORUN_REGISTER_WORKER(AddIntWorker);

/// A slice's concatenation travels with its first row, so the parent can order the pieces
/// whatever order the slices finish in.
struct Piece {
  std::uint64_t start = 0;
  std::string text;
};

template <>
struct corun::codec<Piece> {
  static void encode(const Piece& p, std::string& out) {
    codec<std::uint64_t>::encode(p.start, out);
    out += p.text;
  }
  static Piece decode(std::string_view bytes) {
    if (bytes.size() < 8) throw std::invalid_argument("Piece: truncated");
    return {codec<std::uint64_t>::decode(bytes.substr(0, 8)), std::string(bytes.substr(8))};
  }
};

struct ConcatStrWorker : corun::Worker<ConcatStrWorker, Str> {
  using Worker::Worker;
  static Piece process(corun::SliceView<const Str> slice, const corun::TaskContext& ctx) {
    Piece piece{ctx.slice.start, {}};
    for (const Str& s : slice) piece.text += s.str();
    return piece;
  }
  void process_callback(Piece piece) { pieces[piece.start] = std::move(piece.text); }
  std::string joined() const {
    std::string all;
    for (const auto& [start, text] : pieces) all += text;
    return all;
  }
  std::map<std::uint64_t, std::string> pieces;
};
CORUN_REGISTER_WORKER(ConcatStrWorker);

namespace {
struct Flags {
  std::size_t n = 100'000'000;
  std::size_t partitions = 16;
  unsigned rounds = 6;
  std::size_t workers = 0;  // hwloc core count
  std::size_t sample_ms = 50;
  std::string cpu_csv, tasks_csv, plot;
  bool insights = false;
};

Flags parse(int argc, char** argv) {
  Flags f;
  CLI::App app{"mpaio's example: sum 1..N and concatenate foo_0..foo_99 in worker processes"};
  app.add_option("--n", f.n, "elements of the int64 array")
      ->check(CLI::Range(0ULL, 1ULL << 40))
      ->capture_default_str();
  app.add_option("--partitions", f.partitions, "slices of the int64 array")
      ->check(CLI::Range(1ULL, 1ULL << 40))
      ->capture_default_str();
  app.add_option("--rounds", f.rounds,
                 "rounds of an integer mix and back per element (0: a plain sum)")
      ->check(CLI::Range(0u, 1'000'000u))
      ->capture_default_str();
  app.add_option("--workers", f.workers, "worker processes (0: one per core)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  app.add_option("--sample-ms", f.sample_ms, "CPU sampling interval")
      ->check(CLI::Range(0, 3'600'000))
      ->capture_default_str();
  auto* cpu_csv = app.add_option("--cpu-csv", f.cpu_csv, "write per-PU utilisation here");
  auto* tasks_csv = app.add_option("--tasks-csv", f.tasks_csv, "write one row per task here");
  app.add_option("--plot", f.plot, "draw both CSVs into this PNG")->needs(cpu_csv, tasks_csv);
  app.add_flag("--insights", f.insights,
               "print per worker process: start-up, init, tasks, working and waiting time");
  corun_cli::parse_or_exit(app, argc, argv);
  return f;
}

/// Draws the PNG with plots/plot_cpu.py under Debian's python3 (matplotlib).
bool draw_plot(const Flags& f) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(STDERR_FILENO, STDOUT_FILENO);  // stdout carries only the four result lines
    ::execl("/usr/bin/python3", "python3", CORUN_PLOT_SCRIPT, f.cpu_csv.c_str(),
            f.tasks_csv.c_str(), f.plot.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}
}  // namespace

int main(int argc, char** argv) {
  corun::enter_worker_if_spawned(argc, argv);
  const Flags flags = parse(argc, argv);

  auto ints = corun::SharedArray<std::int64_t>::create({flags.n});
  std::iota(ints.begin(), ints.end(), std::int64_t{1});
  auto strings = corun::SharedArray<Str>::create({100});
  for (std::size_t i = 0; i < 100; ++i) strings[i] = Str("foo_" + std::to_string(i));

  AddIntWorker add{corun::DataIterator::partitioned(ints, flags.partitions), Work{flags.rounds}};
  ConcatStrWorker concat{corun::DataIterator::partitioned(strings, 8)};

  asio::io_context io;
  corun::ProcessPool pool{io.get_executor(), {.workers = flags.workers}};
  corun::WorkerOrchestrator orch{
      pool,
      {&add, &concat},
      {.monitor_cpu_usage = true, .sample_interval = std::chrono::milliseconds(flags.sample_ms)}};

  corun::GracefulStop stop{pool};  // Ctrl-C or SIGTERM: cancel the run, shut the pool down

  int exit_code = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        // Let the workers start first, so the run measures the work, not process start-up.
        co_await pool.async_wait_ready(asio::use_awaitable);
        const corun::RunReport report = co_await orch.async_run(stop.bind(asio::use_awaitable));
        co_await pool.async_shutdown(asio::use_awaitable);
        std::cout << "sum=" << add.total << '\n'
                  << "concat=" << concat.joined() << '\n'
                  << "run_seconds=" << report.wall_seconds() << '\n'
                  << "samples=" << report.cpu.size() << '\n';
        if (flags.insights) std::cout << report.insights().to_string();
        if (!flags.cpu_csv.empty()) report.cpu.write_csv(flags.cpu_csv);
        if (!flags.tasks_csv.empty()) corun::write_tasks_csv(report, flags.tasks_csv);
        if (!flags.plot.empty() && !draw_plot(flags)) {
          std::cerr << "mpaio_demo: drawing " << flags.plot << " failed\n";
          exit_code = 1;
        }
      },
      [&](std::exception_ptr e) {
        stop.cancel();  // no more signals to wait for: lets io.run() return
        if (!e) return;
        if (!stop.requested()) pool.terminate();  // else the idle pool keeps io.run() going
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          std::cerr << "mpaio_demo: " << ex.what() << '\n';
        }
        exit_code = 1;
      });
  io.run();
  return exit_code;
}
