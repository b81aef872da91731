#include <corun/cpu_monitor.hpp>

#include "support/drive.hpp"
#include "support/workers.hpp"

#include <unistd.h>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

using namespace corun;

namespace {
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream cells_in(line);
    std::string cell;
    while (std::getline(cells_in, cell, ',')) cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Runs the loop for `duration` of steady time: the thing measured, not a synchronisation.
void run_for(asio::io_context& io, std::chrono::milliseconds duration) {
  asio::steady_timer timer{io, duration};
  bool done = false;
  timer.async_wait([&](std::error_code) { done = true; });
  while (!done) io.run_one();
}

std::filesystem::path temp_path(const std::string& name) {
  return std::filesystem::temp_directory_path() /
         ("corun_test_" + std::to_string(::getpid()) + "_" + name);
}
}  // namespace

TEST_CASE("the topology lists every PU once, in OS index order, with its core", "[cpu]") {
  const CpuTopology& t = CpuTopology::local();
  REQUIRE(!t.pu_os_index.empty());
  CHECK(t.pu_os_index.size() == t.core_of_pu.size());
  CHECK(std::is_sorted(t.pu_os_index.begin(), t.pu_os_index.end()));
  CHECK(t.cores >= 1);
  CHECK(t.packages >= 1);
  CHECK(t.pu_os_index.size() == static_cast<std::size_t>(::sysconf(_SC_NPROCESSORS_ONLN)));
}

TEST_CASE("sampling for half a second at 20 ms gives about 25 samples, all within 0..100",
          "[cpu]") {
  asio::io_context io;
  CpuMonitor monitor{io.get_executor(), std::chrono::milliseconds(20)};
  CHECK_FALSE(monitor.running());
  monitor.start();
  CHECK(monitor.running());
  run_for(io, std::chrono::milliseconds(500));
  monitor.stop();
  const CpuSeries& s = monitor.series();
  CHECK(s.size() >= 10);  // loose: a loaded machine runs timers late, never early
  CHECK(s.size() <= 27);
  CHECK(s.pus == CpuTopology::local().pu_os_index);
  CHECK(std::is_sorted(s.times.begin(), s.times.end()));
  CHECK(s.times.front() >= 0.02 - 1e-9);
  for (const auto& row : s.busy) {
    REQUIRE(row.size() == s.pus.size());
    for (float v : row) {
      CHECK(v >= 0.f);
      CHECK(v <= 100.f);
    }
  }
  const std::size_t count = s.size();
  const auto taken = monitor.take_series();
  CHECK(taken.size() == count);
  CHECK(monitor.series().empty());
}

TEST_CASE("a loop blocked for many intervals drops the missed samples instead of bunching them",
          "[cpu]") {
  // The handler that blocks stands for a long computation on the application's loop; what is
  // checked holds whatever the machine's load: the monitor never takes two samples less than
  // half an interval apart (the last one, at stop(), at least 10 ms after the one before).
  asio::io_context io;
  const std::chrono::milliseconds interval(20);
  CpuMonitor monitor{io.get_executor(), interval};
  monitor.start();
  asio::steady_timer block{io, std::chrono::milliseconds(30)};
  block.async_wait(
      [](std::error_code) { std::this_thread::sleep_for(std::chrono::milliseconds(200)); });
  run_for(io, std::chrono::milliseconds(400));
  monitor.stop();
  const CpuSeries& s = monitor.series();
  REQUIRE(s.size() >= 2);
  for (std::size_t i = 1; i < s.size(); ++i) {
    INFO("samples " << i - 1 << " and " << i << " at " << s.times[i - 1] << " s and " << s.times[i]
                    << " s");
    CHECK(s.times[i] - s.times[i - 1] >= 0.010 - 1e-6);
  }
  // Without the blocked 200 ms the series would hold up to 20 samples; with the missed ones
  // dropped it holds at most the 400 ms less the 200 blocked, at 20 ms, plus the stop's.
  CHECK(s.size() <= 12);
}

TEST_CASE("an interval below 10 ms is rejected, naming it", "[cpu][failure]") {
  asio::io_context io;
  CHECK_THROWS_WITH((CpuMonitor{io.get_executor(), std::chrono::milliseconds(5)}),
                    Catch::Contains("interval = 5 ms"));
}

TEST_CASE("the CSV has a time_s column and one per PU, and parses back to the samples",
          "[cpu][csv]") {
  CpuSeries s;
  s.pus = {0, 1, 2, 3};
  s.core_of_pu = {0, 0, 1, 1};
  s.times = {0.2, 0.4};
  s.busy = {{100.f, 50.f, 0.f, 12.34f}, {99.96f, 0.04f, 33.3f, 66.6f}};
  const auto rows = parse_csv(s.to_csv());
  REQUIRE(rows.size() == 3);
  CHECK(rows[0] == std::vector<std::string>{"time_s", "cpu0", "cpu1", "cpu2", "cpu3"});
  CHECK(rows[1] == std::vector<std::string>{"0.200", "100.0", "50.0", "0.0", "12.3"});
  CHECK(rows[2] == std::vector<std::string>{"0.400", "100.0", "0.0", "33.3", "66.6"});
  const auto cores = parse_csv(s.to_csv(CpuSeries::Columns::per_core));
  CHECK(cores[0] == std::vector<std::string>{"time_s", "core0", "core1"});
  CHECK(cores[1] == std::vector<std::string>{"0.200", "75.0", "6.2"});

  const auto path = temp_path("cpu.csv");
  s.write_csv(path);
  CHECK(slurp(path) == s.to_csv());
  std::filesystem::remove(path);
}

TEST_CASE("the JSON has the PUs, their cores and the last samples, rounded as in the CSV",
          "[cpu][json]") {
  CpuSeries s;
  s.pus = {0, 1, 2, 3};
  s.core_of_pu = {0, 0, 1, 1};
  s.times = {0.2, 0.4, 0.6004};
  s.busy = {{100.f, 50.f, 0.f, 12.34f}, {99.96f, 0.04f, 33.3f, 66.6f}, {1.f, 2.f, 3.f, 4.05f}};
  // The numbers are those the CSV shows ("0.400" is 0.4 in JSON), keys in this order.
  CHECK(s.to_json() ==
        R"({"pus":[0,1,2,3],"cores":[0,0,1,1],"times":[0.2,0.4,0.6],)"
        R"("busy":[[100.0,50.0,0.0,12.3],[100.0,0.0,33.3,66.6],[1.0,2.0,3.0,4.1]]})");
  CHECK(s.to_json(1) == R"({"pus":[0,1,2,3],"cores":[0,0,1,1],"times":[0.6],)"
                        R"("busy":[[1.0,2.0,3.0,4.1]]})");
  CHECK(CpuSeries{}.to_json() == R"({"pus":[],"cores":[],"times":[],"busy":[]})");
}

TEST_CASE("a bad CSV path is a clear error and leaves no file", "[cpu][csv][failure]") {
  CpuSeries s;
  s.pus = {0};
  s.core_of_pu = {0};
  const std::filesystem::path missing_dir = temp_path("no_such_dir") / "cpu.csv";
  try {
    s.write_csv(missing_dir);
    FAIL("expected std::system_error");
  } catch (const std::system_error& e) {
    CHECK_THAT(e.what(), Catch::Contains(missing_dir.string()));
  }
  CHECK_FALSE(std::filesystem::exists(missing_dir.parent_path()));
  const auto dir = temp_path("a_directory");
  std::filesystem::create_directory(dir);
  CHECK_THROWS_AS(s.write_csv(dir), std::system_error);
  CHECK(std::filesystem::is_empty(dir));  // no temporary file left beside it either
  std::filesystem::remove(dir);
}

TEST_CASE("a run with monitoring carries a series, and a spinning worker's PU reads busy",
          "[cpu][orchestrator]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1, .cpu_pinning = true}};
  auto ints = corun::test::iota_array(1);
  ints[0] = -8;  // Faulty spins for 600 ms of its own CPU time on this value
  corun::test::Faulty spin{DataIterator::over(ints, 1)};
  WorkerOrchestrator orch{
      pool, {&spin}, {.monitor_cpu_usage = true, .sample_interval = std::chrono::milliseconds(50)}};
  auto future = orch.async_run(asio::use_future);
  const RunReport report = corun::test::drive(io, future);
  REQUIRE(report.tasks.size() == 1);
  const TaskRecord& task = report.tasks[0];
  REQUIRE(task.cpu_start >= 0);
  // 600 ms of CPU time spun inside process; its measured CPU time holds all of it.
  CHECK(task.cpu_time >= std::chrono::milliseconds(600));
  const CpuSeries& cpu = report.cpu;
  REQUIRE(cpu.size() >= 5);
  const auto column = std::find(cpu.pus.begin(), cpu.pus.end(), task.cpu_start) - cpu.pus.begin();
  REQUIRE(static_cast<std::size_t>(column) < cpu.pus.size());
  // Samples wholly inside the task's span: the worker was pinned and spinning there.
  const double t0 = std::chrono::duration<double>(task.started - report.started).count();
  const double t1 = std::chrono::duration<double>(task.finished - report.started).count();
  std::vector<float> inside;
  for (std::size_t i = 1; i < cpu.size(); ++i)
    if (cpu.times[i - 1] >= t0 && cpu.times[i] <= t1) inside.push_back(cpu.busy[i][column]);
  REQUIRE(inside.size() >= 3);
  std::sort(inside.begin(), inside.end());
  CHECK(inside[inside.size() / 2] > 80.f);
}

TEST_CASE("monitoring off gives an empty series; the tasks CSV has one row per task",
          "[cpu][csv]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 2}};
  auto ints = corun::test::iota_array(100);
  corun::test::AddInts add{DataIterator::partitioned(ints, 5)};
  WorkerOrchestrator orch{pool, {&add}};
  auto future = orch.async_run(asio::use_future);
  const RunReport report = corun::test::drive(io, future);
  CHECK(report.cpu.empty());
  CHECK(report.cpu.pus.empty());
  // Its CPU CSV would have no columns: exporting it says why instead of writing `time_s` alone.
  CHECK_THROWS_MATCHES(report.cpu.to_csv(), corun::Error,
                       Catch::Matchers::Predicate<corun::Error>([](const corun::Error& e) {
                         return e.code() == corun::errc::no_cpu_samples;
                       }));
  const auto path = temp_path("tasks.csv");
  write_tasks_csv(report, path);
  const auto rows = parse_csv(slurp(path));
  std::filesystem::remove(path);
  REQUIRE(rows.size() == 6);
  CHECK(rows[0] == std::vector<std::string>{"task", "worker", "slice_start", "slice_end", "pid",
                                            "pu", "t_start", "t_end", "outcome"});
  std::size_t rows_covered = 0;
  for (std::size_t i = 1; i < rows.size(); ++i) {
    CHECK(rows[i][1] == "corun::test::AddInts");
    rows_covered += std::stoul(rows[i][3]) - std::stoul(rows[i][2]);
    CHECK(std::stod(rows[i][6]) <= std::stod(rows[i][7]));
    CHECK(rows[i][8] == "ok");
  }
  CHECK(rows_covered == 100);
}

TEST_CASE("a series nothing sampled into refuses to be exported, saying why, and writes no file",
          "[cpu][csv][failure]") {
  asio::io_context io;
  CpuMonitor never_started{io.get_executor(), std::chrono::milliseconds(20)};
  const CpuSeries default_constructed{};
  for (const CpuSeries* series : {&never_started.series(), &default_constructed}) {
    REQUIRE(series->pus.empty());
    try {
      (void)series->to_csv();
      FAIL("expected corun::Error");
    } catch (const corun::Error& e) {
      CHECK(e.code() == corun::errc::no_cpu_samples);
      CHECK_THAT(e.what(), Catch::Contains("was CpuMonitor::start() called?"));
      CHECK_THAT(e.what(), Catch::Contains("OrchestratorOptions::monitor_cpu_usage"));
    }
    CHECK_THROWS_AS(series->to_csv(CpuSeries::Columns::per_core), corun::Error);
    const auto path = temp_path("never_sampled.csv");
    CHECK_THROWS_AS(series->write_csv(path), corun::Error);
    CHECK_FALSE(std::filesystem::exists(path));
  }
}

TEST_CASE("a run shorter than one interval still exports a CSV with every PU's column",
          "[cpu][csv][orchestrator]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.workers = 1}};
  auto ints = corun::test::iota_array(10);
  corun::test::AddInts add{DataIterator::partitioned(ints, 1)};
  // One tiny task against a 10 min interval (beyond the test's 300 s timeout, so the timer never
  // fires however loaded the machine): stop() takes the only sample when 10 ms or more have
  // passed since the start, else there is none.
  WorkerOrchestrator orch{
      pool, {&add}, {.monitor_cpu_usage = true, .sample_interval = std::chrono::minutes(10)}};
  auto future = orch.async_run(asio::use_future);
  const RunReport report = corun::test::drive(io, future);
  CHECK(add.total == 55);
  const CpuSeries& cpu = report.cpu;
  CHECK(cpu.pus == CpuTopology::local().pu_os_index);
  CHECK(cpu.size() <= 1);
  const auto path = temp_path("short_run_cpu.csv");
  cpu.write_csv(path);
  const auto rows = parse_csv(slurp(path));
  std::filesystem::remove(path);
  REQUIRE(rows.size() == 1 + cpu.size());
  std::vector<std::string> header{"time_s"};
  for (int pu : CpuTopology::local().pu_os_index) header.push_back("cpu" + std::to_string(pu));
  CHECK(rows[0] == header);
  for (std::size_t i = 1; i < rows.size(); ++i) CHECK(rows[i].size() == header.size());
}
