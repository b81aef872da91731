#include <corun/report.hpp>

#include <catch2/catch.hpp>

#include <unistd.h>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

using namespace corun;
using std::chrono::milliseconds;

namespace {
// A run of one second from T0 on two worker slots: slot 0's process was ready before the run;
// slot 1's started during it, ran two tasks and died at 900 ms, and its replacement was still
// starting when the run ended.
RunReport two_slot_run() {
  const auto t0 = std::chrono::steady_clock::time_point(std::chrono::hours(1));
  RunReport r;
  r.started = t0;
  r.wall_time = milliseconds(1000);
  WorkerProcessRecord a;
  a.worker_id = 0;
  a.pid = 100;
  a.launched = t0 - milliseconds(50);
  a.hello = t0 - milliseconds(40);
  a.ready = t0 - milliseconds(38);
  a.tasks = 3;
  a.working = milliseconds(600);
  WorkerProcessRecord b;
  b.worker_id = 1;
  b.pid = 101;
  b.launched = t0 + milliseconds(100);
  b.hello = t0 + milliseconds(130);
  b.ready = t0 + milliseconds(135);
  b.ended = t0 + milliseconds(900);
  b.tasks = 2;
  b.working = milliseconds(500);
  WorkerProcessRecord c;
  c.worker_id = 1;
  c.pid = 102;
  c.launched = t0 + milliseconds(900);
  r.processes = {a, b, c};
  return r;
}
}  // namespace

TEST_CASE("insights split each process's time in the run into working and waiting",
          "[report][insights]") {
  const RunInsights in = two_slot_run().insights();
  REQUIRE(in.workers.size() == 3);
  CHECK(in.worker_slots == 2);
  CHECK(in.workers[0].start_up == milliseconds(10));
  CHECK(in.workers[0].init == milliseconds(2));
  CHECK(in.workers[0].waiting == milliseconds(400));  // ready all the run, 600 ms working
  CHECK(in.workers[1].start_up == milliseconds(30));
  CHECK(in.workers[1].init == milliseconds(5));
  CHECK(in.workers[1].waiting == milliseconds(265));  // ready from 135 to 900 ms
  CHECK_FALSE(in.workers[2].start_up.has_value());
  CHECK_FALSE(in.workers[2].init.has_value());
  CHECK(in.workers[2].waiting == milliseconds(0));  // never ready: not waiting for work
  CHECK(in.working == milliseconds(1100));
  CHECK(in.waiting == milliseconds(665));
  CHECK(in.efficiency == Approx(0.55).epsilon(1e-12));
}

TEST_CASE("insights print as a table with totals and the efficiency", "[report][insights]") {
  CHECK(two_slot_run().insights().to_string() ==
        "worker      pid  start-up ms   init ms   tasks   working ms   waiting ms\n"
        "     0      100         10.0       2.0       3        600.0        400.0\n"
        "     1      101         30.0       5.0       2        500.0        265.0\n"
        "     1      102            -         -       0          0.0          0.0\n"
        " total                                       5       1100.0        665.0\n"
        "efficiency 55.0% (working / (2 workers x 1000.0 ms wall))\n");
}

TEST_CASE("insights of a report without processes or time are empty, not a division by zero",
          "[report][insights]") {
  const RunInsights in = RunReport{}.insights();
  CHECK(in.workers.empty());
  CHECK(in.worker_slots == 0);
  CHECK(in.efficiency == 0);
  CHECK(in.to_string() ==
        "worker      pid  start-up ms   init ms   tasks   working ms   waiting ms\n"
        " total                                       0          0.0          0.0\n"
        "efficiency 0.0% (working / (0 workers x 0.0 ms wall))\n");
}

TEST_CASE("a process the pool knows nothing about waits from the run's start",
          "[report][insights]") {
  RunReport r;
  r.started = std::chrono::steady_clock::time_point(std::chrono::hours(1));
  r.wall_time = milliseconds(200);
  WorkerProcessRecord p;  // e.g. from a back-end without a timeline: tasks only
  p.worker_id = 0;
  p.pid = 7;
  p.tasks = 4;
  p.working = milliseconds(150);
  r.processes = {p};
  const RunInsights in = r.insights();
  REQUIRE(in.workers.size() == 1);
  CHECK(in.workers[0].waiting == milliseconds(50));
  CHECK(in.efficiency == Approx(0.75).epsilon(1e-12));
}

TEST_CASE("the tasks CSV quotes worker names per RFC 4180: Python's csv module reads it back",
          "[report][csv]") {
  const auto t0 = std::chrono::steady_clock::time_point(std::chrono::hours(1));
  RunReport r;
  r.started = t0;
  // An auto-registered template worker's name holds a comma; a name may hold quotes too.
  const std::vector<std::string> names{"Scaled<long, 2>", "say \"hi\"", "plain::Worker"};
  for (std::size_t i = 0; i < names.size(); ++i) {
    TaskRecord t;
    t.worker = names[i];
    t.slice = Slice{i * 10, i * 10 + 10};
    t.pid = static_cast<pid_t>(100 + i);
    t.cpu_start = 0;
    t.started = t0 + milliseconds(i);
    t.finished = t0 + milliseconds(i + 1);
    r.tasks.push_back(t);
  }
  const auto path = std::filesystem::temp_directory_path() /
                    ("corun_tasks_csv_" + std::to_string(::getpid()) + ".csv");
  write_tasks_csv(r, path);
  // Each row as Python's csv module splits it: its field count, then the worker field.
  const std::string command =
      "python3 -c 'import csv,sys\nfor row in csv.reader(open(sys.argv[1], newline=\"\")): "
      "print(len(row), row[1])' " +
      path.string();
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buf[256];
  while (std::fgets(buf, sizeof buf, pipe)) out += buf;
  const int status = ::pclose(pipe);
  std::filesystem::remove(path);
  REQUIRE(status == 0);
  CHECK(out == "9 worker\n9 Scaled<long, 2>\n9 say \"hi\"\n9 plain::Worker\n");
}
