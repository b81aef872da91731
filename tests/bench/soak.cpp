// Crash soak: orchestrator runs over and over, a segfault in every 7th task, alternating the
// spawn and fork start methods and both ways of waiting (blocking, and spinning on the frame
// rings), for as long as asked. Every good result must be exact, and the
// parent must end with the descriptors, children and /dev/shm segments it started with.
//   soak [--seconds S] [--workers W] [--json]
#include <unistd.h>

#include "support/support.hpp"
#include "support/workers.hpp"

#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <corun/corun.hpp>
#include <nlohmann/json.hpp>
#include "../../examples/cli.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <future>

namespace {

struct Counts {
  int fds = 0;
  std::size_t children = 0, segments = 0;
};

Counts count() {
  return {corun::test::open_fd_count(), corun::test::child_pids().size(),
          // Its own segments only: other programs on the machine may make and remove theirs.
          corun::test::segments_of_pid(::getpid()).size()};
}

}  // namespace

int main(int argc, char** argv) {
  corun::enter_worker_if_spawned(argc, argv);
  CLI::App app{"corun crash soak: a segfault every 7th task, both start methods, both wait modes"};
  double seconds = 60;
  std::size_t workers = 2;
  bool json = false;
  app.add_option("--seconds", seconds, "how long to run")->check(CLI::PositiveNumber);
  app.add_option("--workers", workers, "worker processes")->check(CLI::Range(1, 64));
  app.add_flag("--json", json, "a JSON line at the end");
  corun_cli::parse_or_exit(app, argc, argv);

  constexpr std::size_t rows = 70, chunk = 1;  // 70 tasks, 10 of them crash
  auto ints = corun::test::iota_array(rows);
  std::int64_t good_sum = 0;
  for (std::size_t i = 0; i < rows; ++i) {
    if (i % 7 == 6)
      ints[i] = -2;  // SIGSEGV in the worker
    else
      good_sum += ints[i];
  }
  const Counts before = count();
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(seconds));
  std::size_t runs = 0, tasks = 0, crashes = 0, wrong = 0;
  double seconds_in[2][2] = {};  // [fork][spin]: where the time went
  while (std::chrono::steady_clock::now() < deadline) {
    for (const auto method : {corun::StartMethod::spawn, corun::StartMethod::fork})
      for (const auto wait :
           {corun::WaitMode::blocking(), corun::WaitMode::spin(std::chrono::microseconds(200))}) {
        const auto began = std::chrono::steady_clock::now();
        asio::io_context io;
        corun::ProcessPool pool{io.get_executor(),
                                {.workers = workers, .start_method = method, .wait = wait}};
        corun::test::Faulty faulty{corun::DataIterator::over(ints, chunk)};
        corun::WorkerOrchestrator orch{pool, {&faulty}, {.on_error = corun::ErrorPolicy::collect}};
        auto future = orch.async_run(asio::use_future);
        while (future.wait_for(std::chrono::seconds(0)) != std::future_status::ready) io.run_one();
        const corun::RunReport report = future.get();
        ++runs;
        tasks += report.tasks_done + report.tasks_failed;
        crashes += report.tasks_failed;
        if (faulty.total != good_sum || report.tasks_failed != rows / 7) {
          ++wrong;
          for (const auto& f : report.failures)
            if (f.slice.start % 7 != 6) std::fprintf(stderr, "wrong: %s\n", f.describe().c_str());
        }
        seconds_in[method == corun::StartMethod::fork][wait.spins()] +=
            std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
      }
  }
  const Counts after = count();
  std::printf("runs=%zu tasks=%zu crashes=%zu wrong_runs=%zu\n", runs, tasks, crashes, wrong);
  std::printf("seconds: spawn blocking %.2f, spawn spin %.2f, fork blocking %.2f, fork spin %.2f\n",
              seconds_in[0][0], seconds_in[0][1], seconds_in[1][0], seconds_in[1][1]);
  std::printf("fds %d -> %d, children %zu -> %zu, segments %zu -> %zu\n", before.fds, after.fds,
              before.children, after.children, before.segments, after.segments);
  if (json) {
    auto growth = [](std::size_t from, std::size_t to) {
      return static_cast<std::int64_t>(to) - static_cast<std::int64_t>(from);
    };
    const nlohmann::ordered_json line{
        {"soak_runs", runs},
        {"soak_tasks", tasks},
        {"soak_crashes", crashes},
        {"soak_wrong_runs", wrong},
        {"soak_fd_growth", after.fds - before.fds},
        {"soak_child_growth", growth(before.children, after.children)},
        {"soak_segment_growth", growth(before.segments, after.segments)}};
    std::printf("%s\n", line.dump().c_str());
  }
  const bool clean = wrong == 0 && after.fds == before.fds && after.children == before.children &&
                     after.segments == before.segments;
  return clean ? 0 : 1;
}
