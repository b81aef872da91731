// GET /health latency of examples/http_server, on loopback over one keep-alive connection:
// first with the pool idle (the baseline), then while a heavy job keeps every worker busy.
// The server's loop routes requests and collects results; the work runs in worker processes,
// so the second number should stay close to the first. Then the latency of a request-sized
// job (POST a sum of 1,000 in 2 slices, then GET it with ?wait, which answers when it ends),
// with the server's pool blocking and then spinning (--spin-us), in the same run.
//
//   http_health_bench <http_server program> [--requests N] [--workers N] [--worker-nice N]
//                     [--spin-us N] [--json]
//
// --json adds one JSON object on the last line: health_p50_us_idle, health_p99_us_idle,
// health_p50_us_busy, health_p99_us_busy, job_p50_us_blocking, job_p99_us_blocking,
// job_p50_us_spin, job_p99_us_spin (and a few facts about the run).
#include "cli.hpp"
#include "support/http_support.hpp"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

namespace {

using corun::test::HttpClient;
using corun::test::quantile;

std::vector<double> measure(HttpClient& client, int requests) {
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(requests));
  for (int i = 0; i < requests; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = client.get("/health");
    us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    if (r.status != 200)
      throw std::runtime_error("GET /health answered " + std::to_string(r.status));
  }
  return us;
}

nlohmann::json get_json(HttpClient& client, const std::string& target) {
  return nlohmann::json::parse(client.get(target).body);
}

/// A request-sized job, `jobs` times: POST it, then GET it with ?wait (answered when it ends).
std::vector<double> measure_jobs(HttpClient& client, int jobs) {
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(jobs));
  for (int i = 0; i < jobs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto posted = client.post("/jobs", R"({"kind": "sum", "n": 1000, "partitions": 2})");
    if (posted.status != 202)
      throw std::runtime_error("POST /jobs answered " + std::to_string(posted.status));
    const auto id = nlohmann::json::parse(posted.body).at("id").get<int>();
    const auto done = get_json(client, "/jobs/" + std::to_string(id) + "?wait=10");
    us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    if (done.at("status") != "done" || done.at("result") != 500500)
      throw std::runtime_error("a request-sized job ended as " + done.dump());
  }
  return us;
}

/// Job latencies from a fresh server whose pool waits as `spin_us` says.
std::vector<double> job_latencies(const std::string& program, const std::string& workers,
                                  const std::string& nice, const std::string& spin_us, int jobs) {
  corun::test::ServerProcess server{
      {"--port", "0", "--workers", workers, "--worker-nice", nice, "--spin-us", spin_us}, program};
  HttpClient client{server.port()};
  measure_jobs(client, std::max(20, jobs / 10));  // warm up
  auto us = measure_jobs(client, jobs);
  server.signal(SIGTERM);
  if (server.wait() != 0) throw std::runtime_error("the server did not exit cleanly");
  return us;
}

}  // namespace

int run(int argc, char** argv) {
  std::string server_program;
  int requests = 2000;
  std::string workers = "0";  // one per core: the deployment the server is made for
  std::string nice = "10";    // the server's default
  bool json = false;
  CLI::App app{"GET /health latency of examples/http_server, idle and with a heavy job"};
  app.add_option("http_server", server_program, "the http_server program")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--requests", requests, "requests per measurement")
      ->check(CLI::Range(10, 10'000'000))
      ->capture_default_str();
  app.add_option("--workers", workers, "the server's --workers")->capture_default_str();
  app.add_option("--worker-nice", nice, "the server's --worker-nice")->capture_default_str();
  std::string spin_us = "200";
  app.add_option("--spin-us", spin_us, "the spinning server's --spin-us")->capture_default_str();
  app.add_flag("--json", json, "add one JSON object on the last line");
  corun_cli::parse_or_exit(app, argc, argv);

  corun::test::ServerProcess server{{"--port", "0", "--workers", workers, "--worker-nice", nice},
                                    server_program};
  HttpClient client{server.port()};
  const auto pool_size = get_json(client, "/health").at("workers").get<int>();

  measure(client, 200);  // warm up the connection and the server's allocator
  const std::vector<double> idle = measure(client, requests);

  // About 25 CPU-seconds of trial division in 2000 slices: every worker stays busy for the
  // whole measurement.
  const auto job = nlohmann::json::parse(
      client.post("/jobs", R"({"kind": "primes", "n": 50000000, "partitions": 2000})").body);
  const std::string job_path = "/jobs/" + std::to_string(job.at("id").get<int>());
  // Measure during the compute pass (the fill pass before it takes a fraction of a second).
  for (int tries = 0; get_json(client, job_path).at("phase") != "compute"; ++tries) {
    if (tries == 3000) throw std::runtime_error("the job did not reach its compute pass in 30 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // leave the cores to the fill
  }
  const std::vector<double> busy = measure(client, requests);
  const auto state = get_json(client, job_path);
  const bool still_running = state.at("status") == "running";
  client.del(job_path);
  server.signal(SIGTERM);
  const int exit_code = server.wait();

  // A request-sized job against a fresh server of each wait mode, the modes in turn.
  const int jobs = std::max(100, requests / 4);
  std::vector<double> blocking_jobs, spin_jobs;
  for (int round = 0; round < 2; ++round) {
    const auto b = job_latencies(server_program, workers, nice, "0", jobs / 2);
    const auto s = job_latencies(server_program, workers, nice, spin_us, jobs / 2);
    blocking_jobs.insert(blocking_jobs.end(), b.begin(), b.end());
    spin_jobs.insert(spin_jobs.end(), s.begin(), s.end());
  }

  const double p50_idle = quantile(idle, 0.5), p99_idle = quantile(idle, 0.99);
  const double p50_busy = quantile(busy, 0.5), p99_busy = quantile(busy, 0.99);
  std::cout << std::fixed << std::setprecision(0) << "GET /health on loopback, one keep-alive "
            << "connection, " << requests << " requests each, " << pool_size << " workers at nice "
            << nice << "\n"
            << "  idle pool:             p50 " << p50_idle << " us   p99 " << p99_idle
            << " us   max " << quantile(idle, 1.0) << " us\n"
            << "  heavy job on all cores: p50 " << p50_busy << " us   p99 " << p99_busy
            << " us   max " << quantile(busy, 1.0) << " us   (primes job at "
            << state.at("percent").get<int>() << "%, "
            << (still_running ? "still running" : "ENDED") << ")\n";
  std::cout << "  request-sized job (sum of 1,000 in 2 slices, POST then GET ?wait), " << jobs
            << " each:\n"
            << "    blocking pool:        p50 " << quantile(blocking_jobs, 0.5) << " us   p99 "
            << quantile(blocking_jobs, 0.99) << " us\n"
            << "    spinning pool (" << spin_us << " us): p50 " << quantile(spin_jobs, 0.5)
            << " us   p99 " << quantile(spin_jobs, 0.99) << " us\n";
  if (!still_running)
    std::cout << "warning: the heavy job ended before the measurement did; raise its n\n";
  if (json) {
    const nlohmann::json out = {{"health_p50_us_idle", p50_idle},
                                {"health_p99_us_idle", p99_idle},
                                {"health_p50_us_busy", p50_busy},
                                {"health_p99_us_busy", p99_busy},
                                {"requests", requests},
                                {"workers", pool_size},
                                {"worker_nice", std::stoi(nice)},
                                {"busy_job_running_throughout", still_running},
                                {"job_p50_us_blocking", quantile(blocking_jobs, 0.5)},
                                {"job_p99_us_blocking", quantile(blocking_jobs, 0.99)},
                                {"job_p50_us_spin", quantile(spin_jobs, 0.5)},
                                {"job_p99_us_spin", quantile(spin_jobs, 0.99)},
                                {"spin_us", std::stoi(spin_us)}};
    std::cout << out.dump() << '\n';
  }
  return exit_code == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {  // unwinds, so the server is stopped
    std::cerr << "http_health_bench: " << e.what() << '\n';
    return 1;
  }
}
