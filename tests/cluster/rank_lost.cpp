// A cluster that loses rank 2 of 3 and goes on (tests/cluster/meson.build runs each scenario
// under a real `mpirun --enable-recovery`; mpirun_test.sh then checks that mpirun exited 0 and
// that no process or segment of any rank is left, the lost rank's included).
//
//   kill-run     rank 2 is SIGKILLed during an orchestrator run (ErrorPolicy::collect): exactly
//                the slices of its rows that had not come back fail with rank_lost, every other
//                result is exact; a second run places nothing on rank 2.
//   kill-map     rank 2 is SIGKILLed during an async_map of 100,000 inputs: every result is
//                exact (its chunks are sent again); a second map uses ranks 0 and 1 only.
//   stop-resume  rank 2 is SIGSTOPped for less than the failure timeout during a run: nothing
//                is lost and every result is exact.
//   stop-lost    rank 2 is SIGSTOPped past the failure timeout: it is declared lost, its slices
//                fail with rank_lost; once resumed it hears nothing from rank 0 and leaves.
//
// Rank 0 checks everything itself and prints one line, "<scenario>: ok", or exits 1 naming
// what was wrong. Rank 0 kills rank 2 at its first result (kill-run), or one of rank 2's
// workers kills its parent when its second chunk reaches it (kill-map): either way with tasks
// in flight there.
#include <corun/cluster.hpp>
#include <corun/map.hpp>
#include <corun/orchestrator.hpp>

#include "support/drive.hpp"

#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <xtensor/xmath.hpp>

#include <signal.h>
#include <unistd.h>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr std::size_t kRows = 6000;
constexpr std::size_t kPartitions = 6;  // blocks of 1000 rows; block b lives on rank b % 3
constexpr int kLostRank = 2;

int env_int(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::atoi(v) : -1;
}

/// In a worker process: the MPI rank of its parent (workers inherit the rank's environment).
int my_rank() {
  return env_int("OMPI_COMM_WORLD_RANK");
}

/// Kills this worker's rank once, when its second task arrives (with more in flight).
void kill_rank_on_second_task() {
  static int tasks = 0;
  if (my_rank() == kLostRank && ++tasks == 2) ::kill(::getppid(), SIGKILL);
}

std::string g_scenario;

[[noreturn]] void fail(const std::string& what) {
  std::cerr << "rank_lost " << g_scenario << ": FAIL: " << what << '\n';
  std::exit(1);
}

void expect(bool ok, const std::string& what) {
  if (!ok) fail(what);
}

}  // namespace

/// Sums its slice (rows hold row + 1); in mode "slow", on the lost rank, takes 20 ms a slice,
/// so that rank 2 still has most of its slices when its first result comes back.
struct SumRows : corun::Worker<SumRows, std::int64_t, std::string> {
  using Worker::Worker;
  static std::int64_t process(corun::SliceView<const std::int64_t> slice, const std::string& mode) {
    if (mode == "slow" && my_rank() == kLostRank)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return xt::sum(slice)();
  }
  void process_callback(std::int64_t partial, corun::Slice slice) {
    total += partial;
    if (partial != expected(slice)) ++wrong;
    done.insert(slice.start);
    if (on_result) on_result(slice);
  }
  std::function<void(corun::Slice)> on_result;
  static std::int64_t expected(corun::Slice s) {
    return static_cast<std::int64_t>((s.start + 1 + s.end) * s.size() / 2);
  }
  std::int64_t total = 0;
  int wrong = 0;
  std::set<std::size_t> done;
};
CORUN_REGISTER_WORKER(SumRows);

/// The pid of the rank that ran the slice (a worker's parent).
struct RankPid : corun::Worker<RankPid, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(corun::SliceView<const std::int64_t>) { return ::getppid(); }
  void process_callback(std::int64_t pid, corun::Slice slice) {
    pids[static_cast<int>(slice.start / (kRows / kPartitions) % 3)] = pid;
  }
  std::map<int, std::int64_t> pids;
};
CORUN_REGISTER_WORKER(RankPid);

namespace {

/// x * 1000 + the rank that ran it; on the lost rank, in scenario kill-map, kills the rank.
std::int64_t tag_with_rank(const std::int64_t& x, const std::string& mode) {
  if (mode == "kill") kill_rank_on_second_task();
  return x * 1000 + my_rank();
}

struct Root {
  corun::Cluster& cluster;
  asio::io_context& io;
  corun::ClusterPool& pool;
  corun::DistributedArray<std::int64_t>& ints;
  // Slices of 50 rows: 20 per block, so rank 2 has many in flight when it is lost.
  corun::DataIterator slices = corun::DataIterator::over(ints.info(), 50);

  /// Rows [start, end) of a block of the lost rank?
  static bool on_lost_rank(corun::Slice s) {
    return s.start / (kRows / kPartitions) % 3 == kLostRank;
  }

  corun::RunReport run(SumRows& sum) {
    corun::WorkerOrchestrator orch{pool, {&sum}, {.on_error = corun::ErrorPolicy::collect}};
    auto done = orch.async_run(asio::use_future);
    return corun::test::drive(io, done);
  }

  /// Runs the loop until `ready()` or `limit` passed; whether `ready()` held.
  bool run_until(const std::function<bool()>& ready, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!ready()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      if (io.stopped()) io.restart();
      io.run_one_for(std::chrono::milliseconds(20));
    }
    return true;
  }

  pid_t lost_rank_pid() {
    RankPid who{ints.iterator()};
    corun::WorkerOrchestrator orch{pool, {&who}};
    auto done = orch.async_run(asio::use_future);
    corun::test::drive(io, done);
    expect(who.pids.count(kLostRank) == 1, "no pid of rank 2");
    return static_cast<pid_t>(who.pids.at(kLostRank));
  }

  /// After rank 2 was lost: exactly its rows failed with rank_lost; everything else is exact.
  void check_run_after_loss(const SumRows& sum, const corun::RunReport& report, bool some_done) {
    const std::size_t count = slices.slice_count();
    expect(sum.wrong == 0, std::to_string(sum.wrong) + " wrong sums");
    expect(!report.failures.empty(), "no slice failed although rank 2 was lost");
    expect(report.tasks_done + report.failures.size() == count,
           std::to_string(report.tasks_done) + " done + " + std::to_string(report.failures.size()) +
               " failed != " + std::to_string(count));
    std::int64_t failed_rows = 0;
    for (const corun::TaskError& e : report.failures) {
      expect(e.kind == corun::TaskErrorKind::rank_lost,
             "a failure of kind " + std::string(corun::to_string(e.kind)) + ": " + e.describe());
      expect(e.rank == kLostRank, "a failure on rank " + std::to_string(e.rank));
      expect(on_lost_rank(e.slice), "a failed slice off rank 2: " + e.describe());
      expect(
          e.message.find("rank 2 was lost") != std::string::npos &&
              e.message.find("rows [" + std::to_string(e.slice.start) + ", ") != std::string::npos,
          "the message names neither the rank nor the rows: " + e.message);
      expect(sum.done.count(e.slice.start) == 0, "a slice both failed and done");
      failed_rows += SumRows::expected(e.slice);
    }
    expect(sum.total + failed_rows == static_cast<std::int64_t>(kRows * (kRows + 1) / 2),
           "done and failed rows do not make the whole array");
    if (some_done) {
      bool rank2_done = false;
      for (std::size_t start : sum.done) rank2_done |= on_lost_rank({start, start + 1});
      expect(rank2_done, "no slice of rank 2 came back before it was lost");
    }
  }

  void check_health_lost() {
    const corun::ClusterHealth h = pool.health();
    expect(h.ranks == 3, "health: " + std::to_string(h.ranks) + " ranks");
    expect(h.lost_ranks() == std::vector<int>{kLostRank}, "health: lost ranks are not {2}");
    expect(h.recovery_enabled, "health: recovery not enabled under mpirun --enable-recovery");
  }

  /// A map after the loss runs on ranks 0 and 1 only, exactly.
  void check_map_on_survivors() {
    std::vector<std::int64_t> inputs(2000);
    for (std::size_t i = 0; i < inputs.size(); ++i) inputs[i] = static_cast<std::int64_t>(i);
    auto mapped = corun::async_map<&tag_with_rank>(
        pool, inputs, corun::MapOptions<std::string>{.chunk_size = 10, .params = "none"},
        asio::use_future);
    const auto tagged = corun::test::drive(io, mapped);
    expect(tagged.size() == inputs.size(), "a map after the loss lost results");
    std::set<std::int64_t> ranks;
    for (std::size_t i = 0; i < tagged.size(); ++i) {
      expect(tagged[i] / 1000 == inputs[i], "a wrong result after the loss");
      ranks.insert(tagged[i] % 1000);
    }
    expect(ranks == std::set<std::int64_t>{0, 1}, "a map after the loss ran on other ranks");
  }

  /// A second run after the loss: rank 2's slices fail at once, the others are exact.
  void check_second_run() {
    SumRows again{slices, std::string("none")};
    const corun::RunReport report = run(again);
    check_run_after_loss(again, report, false);
    std::size_t lost_slices = 0;
    for (std::size_t i = 0; i < slices.slice_count(); ++i)
      lost_slices += on_lost_rank(slices.slice(i)) ? 1 : 0;
    expect(report.failures.size() == lost_slices, std::to_string(report.failures.size()) +
                                                      " failures in the second run, not " +
                                                      std::to_string(lost_slices));
    for (const corun::TaskRecord& t : report.tasks)
      expect(t.rank != kLostRank || t.outcome == corun::TaskOutcome::rank_lost,
             "a task of the second run ran on rank 2");
  }

  void kill_run() {
    const pid_t pid = lost_rank_pid();
    SumRows sum{slices, std::string("slow")};
    // At the first result of rank 2, with its other slices in flight.
    sum.on_result = [pid](corun::Slice s) {
      if (on_lost_rank(s)) ::kill(pid, SIGKILL);
    };
    const corun::RunReport report = run(sum);
    check_run_after_loss(sum, report, true);
    check_health_lost();
    expect(pool.health().lost.at(0).tasks_failed == report.failures.size(),
           "health counts other failures than the run's");
    check_second_run();
    check_map_on_survivors();
  }

  void kill_map() {
    std::vector<std::int64_t> inputs(100'000);
    for (std::size_t i = 0; i < inputs.size(); ++i) inputs[i] = static_cast<std::int64_t>(i);
    auto mapped = corun::async_map<&tag_with_rank>(
        pool, inputs, corun::MapOptions<std::string>{.chunk_size = 500, .params = "kill"},
        asio::use_future);
    const auto tagged = corun::test::drive(io, mapped);
    expect(tagged.size() == inputs.size(), "the map lost results");
    for (std::size_t i = 0; i < tagged.size(); ++i)
      expect(tagged[i] / 1000 == inputs[i], "result " + std::to_string(i) + " is wrong");
    check_health_lost();
    const corun::RankLoss loss = pool.health().lost.at(0);
    expect(loss.chunks_resent >= 1, "no chunk was sent again");
    expect(loss.first_resent_done > loss.declared, "no re-sent chunk completed after the loss");
    expect(loss.tasks_failed == 0, "a chunk failed");
    check_map_on_survivors();
  }

  void stop_resume() {
    const pid_t pid = lost_rank_pid();
    ::kill(pid, SIGSTOP);
    SumRows sum{slices, std::string("none")};
    corun::WorkerOrchestrator orch{pool, {&sum}, {.on_error = corun::ErrorPolicy::collect}};
    auto done = orch.async_run(asio::use_future);
    // A third of the failure timeout stopped, with its tasks waiting on it; then resumed.
    const auto resume_at = std::chrono::steady_clock::now() + cluster.options().failure_timeout / 3;
    run_until([&] { return std::chrono::steady_clock::now() >= resume_at; },
              std::chrono::seconds(60));
    ::kill(pid, SIGCONT);
    const corun::RunReport report = corun::test::drive(io, done);
    expect(report.failures.empty(), std::to_string(report.failures.size()) + " tasks failed");
    expect(sum.wrong == 0 && sum.total == static_cast<std::int64_t>(kRows * (kRows + 1) / 2),
           "the sums are wrong");
    expect(pool.health().lost.empty(), "a rank stopped within the timeout was lost");
  }

  void stop_lost() {
    const pid_t pid = lost_rank_pid();
    ::kill(pid, SIGSTOP);
    SumRows sum{slices, std::string("none")};
    const corun::RunReport report = run(sum);  // completes once rank 2 is declared lost
    check_run_after_loss(sum, report, false);
    check_health_lost();
    ::kill(pid, SIGCONT);  // it hears nothing from rank 0 from now on, and leaves serve()
    check_second_run();
    check_map_on_survivors();
  }
};

}  // namespace

int main(int argc, char** argv) {
  corun::enter_worker_if_spawned(argc, argv);
  g_scenario = argc > 1 ? argv[1] : "";
  // A short heartbeat, so the tests take seconds; the timeout leaves a sanitized build on a
  // loaded machine room to be slow without being declared lost.
  corun::Cluster cluster{argc,
                         argv,
                         {.pool = {.workers = 1, .handshake_timeout = std::chrono::seconds(10)},
                          .heartbeat_interval = std::chrono::milliseconds(100),
                          .failure_timeout = std::chrono::milliseconds(3000)}};
  auto ints =
      corun::DistributedArray<std::int64_t>::create(cluster, {kRows}, {.partitions = kPartitions});
  ints.fill_rows([](std::size_t row, std::int64_t* v) { *v = static_cast<std::int64_t>(row) + 1; });
  if (!cluster.serve()) return 0;
  if (cluster.size() != 3) fail("run with 3 ranks");
  asio::io_context io;
  corun::ClusterPool pool{cluster, io.get_executor()};
  Root root{cluster, io, pool, ints, {}};
  root.slices = corun::DataIterator::over(ints.info(), 50);
  const std::map<std::string, void (Root::*)()> scenarios{{"kill-run", &Root::kill_run},
                                                          {"kill-map", &Root::kill_map},
                                                          {"stop-resume", &Root::stop_resume},
                                                          {"stop-lost", &Root::stop_lost}};
  const auto it = scenarios.find(g_scenario);
  if (it == scenarios.end()) fail("no scenario '" + g_scenario + "'");
  (root.*(it->second))();
  auto down = pool.async_shutdown(asio::use_future);
  corun::test::drive(io, down);
  std::cout << g_scenario << ": ok" << std::endl;
  return 0;
}
