// The HTTP embedding example: its job table driven in-process (exact results, fairness,
// cancellation), then the http_server program itself over loopback (the API, bad input,
// /health under load, /health of a pool whose worker starts fail, a /dev/shm too small for a
// job, SIGTERM).
#include "http_server/jobs.hpp"

#include "support/http_support.hpp"
#include "support/support.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <algorithm>
#include <asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using corun::test::HttpClient;
using corun::test::HttpResponse;
using corun::test::ServerProcess;
using corun_server::BadRequest;
using corun_server::JobRequest;
using corun_server::JobStatus;
using corun_server::JobTable;
using corun_server::Kind;
using nlohmann::json;

namespace {

std::int64_t triangle(std::int64_t n) {
  return n * (n + 1) / 2;
}

std::string foos(std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s += "foo_" + std::to_string(i);
  return s;
}

template <class Pred>
void run_until(asio::io_context& io, Pred done) {
  while (!done()) io.run_one();
}

std::shared_ptr<corun_server::Job> submit(JobTable& table, Kind kind, std::uint64_t n,
                                          std::uint64_t partitions) {
  std::string refusal;
  auto job = table.submit({kind, n, partitions}, refusal);
  INFO(refusal);
  REQUIRE(job);
  return job;
}

json json_of(const HttpResponse& r) {
  INFO("body: " << r.body);
  REQUIRE(r.headers.count("content-type"));
  CHECK(r.headers.at("content-type") == "application/json");
  return json::parse(r.body);
}

std::uint64_t start_job(HttpClient& client, const std::string& body) {
  const HttpResponse r = client.post("/jobs", body);
  INFO(body << " -> " << r.status << ' ' << r.body);
  REQUIRE(r.status == 202);
  const auto id = json_of(r).at("id").get<std::uint64_t>();
  CHECK(r.headers.at("location") == "/jobs/" + std::to_string(id));
  return id;
}

/// GET /jobs/{id}?wait=60 until the job has ended (each answer comes when it ends, or after
/// 60 s: a bounded number of tries).
json wait_job(HttpClient& client, std::uint64_t id) {
  for (int tries = 0; tries < 10; ++tries) {
    const HttpResponse r = client.get("/jobs/" + std::to_string(id) + "?wait=60");
    REQUIRE(r.status == 200);
    json job = json_of(r);
    const auto status = job.at("status").get<std::string>();
    if (status != "running" && status != "cancelling") return job;
  }
  FAIL("job " << id << " did not end within 10 minutes");
  return {};
}

/// GET /health until `done(status, body)` holds. The pool changes state on the server's loop
/// (a worker reaped, a start retried after its backoff) and nothing tells a client when, so the
/// test asks again every 10 ms, at most 6000 times (a minute), and fails if it never holds.
template <class Pred>
std::pair<int, json> health_when(HttpClient& client, Pred done) {
  for (int tries = 0; tries < 6000; ++tries) {
    const HttpResponse r = client.get("/health");
    if (done(r.status, json::parse(r.body))) return {r.status, json_of(r)};
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  FAIL("GET /health never reached the state the test waits for");
  return {};
}

/// The worker pids once every worker is ready (so the one a test kills had started).
std::vector<pid_t> ready_worker_pids(HttpClient& client) {
  const auto [status, health] = health_when(client, [](int, const json& h) {
    return h.at("status") == "ok" && h.at("workers_ready") == h.at("workers");
  });
  return health.at("worker_pids").get<std::vector<pid_t>>();
}

/// The server's descriptor limit lowered to 0 (soft; the hard limit stays) for the life of the
/// object: no new descriptor can be made in that process, so a worker it starts fails at its
/// first step, the socketpair (EMFILE), and the pool retries with its backoff. Requests on an
/// open keep-alive connection need no new descriptor: GET /health still answers.
class NoNewDescriptors {
 public:
  explicit NoNewDescriptors(pid_t pid) : pid_(pid) {
    REQUIRE(::prlimit(pid_, RLIMIT_NOFILE, nullptr, &saved_) == 0);
    const rlimit lowered{0, saved_.rlim_max};
    REQUIRE(::prlimit(pid_, RLIMIT_NOFILE, &lowered, nullptr) == 0);
  }
  ~NoNewDescriptors() { restore(); }
  NoNewDescriptors(const NoNewDescriptors&) = delete;
  NoNewDescriptors& operator=(const NoNewDescriptors&) = delete;

  void restore() {
    if (std::exchange(restored_, true)) return;
    ::prlimit(pid_, RLIMIT_NOFILE, &saved_, nullptr);
  }

 private:
  pid_t pid_;
  rlimit saved_{};
  bool restored_ = false;
};

/// Bodies that must be refused, and the field the refusal must name.
struct BadCase {
  std::string body;
  std::string field;
};

std::vector<BadCase> bad_cases(const corun_server::Limits& limits) {
  const std::string over_sum = std::to_string(corun_server::max_n(Kind::sum) + 1);
  const std::string over_parts = std::to_string(limits.max_partitions + 1);
  return {
      {"", "body"},
      {"{", "body"},
      {"\xff", "body"},
      {R"({"kind": "sum\xff", "n": 10, "partitions": 3})", "body"},
      {"\xef\xbb\xbf"
       R"({"kind": "sum", "n": 10, "partitions": 3})",
       "body"},
      {R"({"kind": "sum", "n": 10, "n": 11, "partitions": 3})", "n"},
      {"{\"kind\": \"sum\", \"n\": 10, \"partitions\": 3", "body"},
      {"[1, 2]", "body"},
      {"42", "body"},
      {"\"sum\"", "body"},
      {R"({"kind": "sum", "n": 10, "partitions": 3, "colour": "red"})", "colour"},
      {R"({"n": 10, "partitions": 3})", "kind"},
      {R"({"kind": 5, "n": 10, "partitions": 3})", "kind"},
      {R"({"kind": "nope", "n": 10, "partitions": 3})", "kind"},
      {R"({"kind": "sum", "partitions": 3})", "n"},
      {R"({"kind": "sum", "n": 0, "partitions": 3})", "n"},
      {R"({"kind": "sum", "n": -5, "partitions": 3})", "n"},
      {R"({"kind": "sum", "n": 1.5, "partitions": 3})", "n"},
      {R"({"kind": "sum", "n": "10", "partitions": 3})", "n"},
      {R"({"kind": "sum", "n": null, "partitions": 3})", "n"},
      {R"({"kind": "sum", "n": 1e30, "partitions": 3})", "n"},
      {R"({"kind": "sum", "n": 99999999999999999999999, "partitions": 3})", "n"},
      // Numbers beyond a double's range: nlohmann throws out_of_range, not parse_error.
      {R"({"kind": "sum", "n": 1e400, "partitions": 1})", "n"},
      {R"({"kind": "sum", "n": -1e999, "partitions": 1})", "n"},
      {R"({"kind": "sum", "n": )" + std::string(400, '9') + R"(, "partitions": 1})", "n"},
      {R"({"kind": "sum", "n": [1e400], "partitions": 1})", "n"},
      {R"({"kind": "sum", "n": 10, "partitions": 1e400})", "partitions"},
      {R"({"kind": 1e400, "n": 10, "partitions": 1})", "kind"},
      {"[1e400]", "body"},
      {R"([{"n": 1e400}])", "body"},
      {R"({"kind": "sum", "n": )" + over_sum + R"(, "partitions": 3})", "n"},
      {R"({"kind": "concat", "n": 100001, "partitions": 3})", "n"},
      {R"({"kind": "sum", "n": 10})", "partitions"},
      {R"({"kind": "sum", "n": 10, "partitions": 0})", "partitions"},
      {R"({"kind": "sum", "n": 10, "partitions": -1})", "partitions"},
      {R"({"kind": "sum", "n": 10, "partitions": 11})", "partitions"},
      {R"({"kind": "sum", "n": 1000000, "partitions": )" + over_parts + "}", "partitions"},
      {R"({"kind": "sum", "n": 10, "partitions": 3})" + std::string(limits.max_body_bytes, ' '),
       "body"},
  };
}

}  // namespace

// ---- the job table, in-process --------------------------------------------------------------

TEST_CASE("a job request is parsed, and each bad one names the field at fault", "[http][jobs]") {
  const corun_server::Limits limits;
  auto good =
      corun_server::parse_job_request(R"({"kind": "primes", "n": 100, "partitions": 7})", limits);
  REQUIRE(std::holds_alternative<JobRequest>(good));
  CHECK(std::get<JobRequest>(good).kind == Kind::primes);
  CHECK(std::get<JobRequest>(good).n == 100);
  CHECK(std::get<JobRequest>(good).partitions == 7);

  for (const BadCase& c : bad_cases(limits)) {
    INFO("body: " << c.body.substr(0, 120));
    auto parsed = corun_server::parse_job_request(c.body, limits);
    REQUIRE(std::holds_alternative<BadRequest>(parsed));
    CHECK(std::get<BadRequest>(parsed).field == c.field);
    CHECK_FALSE(std::get<BadRequest>(parsed).message.empty());
  }
}

TEST_CASE("jobs of every kind reach their exact result, with 1, 2 and 3 workers", "[http][jobs]") {
  const std::size_t workers = GENERATE(1u, 2u, 3u);
  asio::io_context io;
  corun::ProcessPool pool{io.get_executor(), {.workers = workers}};
  JobTable table{pool};
  auto sum = submit(table, Kind::sum, 100'000, 7);
  auto primes = submit(table, Kind::primes, 100'000, 5);
  auto concat = submit(table, Kind::concat, 1000, 6);
  auto fail = submit(table, Kind::fail, 1000, 4);
  run_until(io, [&] { return table.running() == 0; });

  INFO("workers=" << workers);
  CHECK(sum->status() == JobStatus::done);
  CHECK(sum->to_json().at("result") == triangle(100'000));
  CHECK(sum->progress().done == 14);
  CHECK(sum->progress().total == 14);
  CHECK(primes->to_json().at("result") == 9592);  // primes up to 10^5
  CHECK(concat->to_json().at("result") == foos(1000));
  CHECK(concat->to_json(false).at("result_length") == foos(1000).size());

  REQUIRE(fail->status() == JobStatus::failed);
  const json errors = fail->to_json().at("errors");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].at("kind") == "exception");
  CHECK(errors[0].at("exception_type") == "std::domain_error");
  CHECK(errors[0].at("slice") == json::array({500, 750}));  // holds row value 501
  CHECK(errors[0].at("worker") == "corun_server::SumOrFail");
  CHECK_FALSE(fail->to_json().contains("result"));

  CHECK(table.stats().busy_seconds().size() == workers);
  CHECK(table.stats().tasks_done() >= 14 + 10 + 12);
  CHECK(table.stats().tasks_failed() == 1);
}

TEST_CASE("two jobs submitted together interleave their slices and each gets its own result",
          "[http][jobs][fair]") {
  asio::io_context io;
  corun::ProcessPool pool{io.get_executor(), {.workers = 2}};
  JobTable table{pool};
  auto a = submit(table, Kind::sum, 200'000, 200);
  auto b = submit(table, Kind::sum, 300'000, 200);
  run_until(io, [&] { return table.running() == 0; });
  CHECK(a->to_json().at("result") == triangle(200'000));
  CHECK(b->to_json().at("result") == triangle(300'000));
  // The pool's queue is FIFO and each job keeps a short window of slices in it, so neither
  // job's results all came before the other's first.
  INFO("a: " << a->first_result() << ".." << a->last_result() << ", b: " << b->first_result()
             << ".." << b->last_result());
  CHECK(a->first_result() < b->last_result());
  CHECK(b->first_result() < a->last_result());
}

TEST_CASE("a cancelled job ends as cancelled and the pool runs the next job",
          "[http][jobs][cancel]") {
  const auto type = GENERATE(asio::cancellation_type::total, asio::cancellation_type::terminal);
  asio::io_context io;
  corun::ProcessPool pool{io.get_executor(), {.workers = 2}};
  JobTable table{pool};
  auto heavy = submit(table, Kind::primes, 20'000'000, 2000);
  // Cancel once compute results arrive (the run is under way).
  run_until(io, [&] { return heavy->first_result() != 0; });
  heavy->cancel(type);
  CHECK(heavy->status() == JobStatus::cancelling);
  run_until(io, [&] { return heavy->finished(); });
  CHECK(heavy->status() == JobStatus::cancelled);
  CHECK(heavy->progress().done < heavy->progress().total);
  CHECK(pool.worker_pids().size() == 2);

  auto next = submit(table, Kind::sum, 50'000, 5);
  run_until(io, [&] { return next->finished(); });
  CHECK(next->to_json().at("result") == triangle(50'000));
}

TEST_CASE("a request-sized job runs at a higher priority and overtakes a running batch job",
          "[http][jobs][priority]") {
  asio::io_context io;
  corun::ProcessPool pool{io.get_executor(), {.workers = 2}};
  JobTable table{pool};
  auto batch = submit(table, Kind::primes, 20'000'000, 2000);
  run_until(io, [&] { return batch->first_result() != 0; });
  auto request = submit(table, Kind::sum, 50'000, 5);
  CHECK(batch->to_json().at("priority") == 0);
  CHECK(request->to_json().at("priority") == 1);
  const std::size_t batch_at_submit = batch->progress().done;
  run_until(io, [&] { return request->finished(); });
  const std::size_t batch_while = batch->progress().done - batch_at_submit;
  CHECK(request->to_json().at("result") == triangle(50'000));
  INFO("batch slices done while the request ran: " << batch_while);
  CHECK(batch_while < 400);  // under 10% of the batch job's 4000 slices
  CHECK_FALSE(batch->finished());
  batch->cancel(asio::cancellation_type::total);
  run_until(io, [&] { return batch->finished(); });
}

TEST_CASE("a stopping table refuses new jobs and reports when the last one has ended",
          "[http][jobs][cancel]") {
  asio::io_context io;
  corun::ProcessPool pool{io.get_executor(), {.workers = 2}};
  JobTable table{pool};
  auto heavy = submit(table, Kind::primes, 20'000'000, 2000);
  run_until(io, [&] { return heavy->first_result() != 0; });
  bool idle = false;
  table.stop(asio::cancellation_type::total, [&] { idle = true; });
  std::string refusal;
  CHECK_FALSE(table.submit({Kind::sum, 10, 1}, refusal));
  CHECK(refusal == "the server is shutting down");
  run_until(io, [&] { return idle; });
  CHECK(heavy->status() == JobStatus::cancelled);
  CHECK(table.running() == 0);
}

TEST_CASE("a table refuses a job beyond max_running_jobs and takes one again later",
          "[http][jobs]") {
  asio::io_context io;
  corun::ProcessPool pool{io.get_executor(), {.workers = 1}};
  JobTable table{pool, {.max_running_jobs = 1}};
  auto first = submit(table, Kind::sum, 1000, 2);
  std::string refusal;
  CHECK_FALSE(table.submit({Kind::sum, 10, 1}, refusal));
  CHECK(refusal == "too many jobs running: the limit is 1");
  run_until(io, [&] { return first->finished(); });
  auto second = submit(table, Kind::sum, 10, 1);
  run_until(io, [&] { return second->finished(); });
  CHECK(second->to_json().at("result") == 55);
}

// ---- the http_server program, over loopback -------------------------------------------------

TEST_CASE("over HTTP, jobs reach their exact results and every endpoint answers",
          "[http][server]") {
  // Blocking, and spinning on the frame rings (--spin-us, PoolOptions::wait).
  const std::string spin_us = GENERATE("0", "200");
  INFO("--spin-us " << spin_us);
  ServerProcess server{{"--port", "0", "--workers", "2", "--spin-us", spin_us}};
  HttpClient client{server.port()};

  const auto sum_id = start_job(client, R"({"kind": "sum", "n": 1000000, "partitions": 16})");
  const auto concat_id = start_job(client, R"({"kind": "concat", "n": 5000, "partitions": 9})");
  const auto fail_id = start_job(client, R"({"kind": "fail", "n": 1000, "partitions": 4})");

  const json sum = wait_job(client, sum_id);
  CHECK(sum.at("status") == "done");
  CHECK(sum.at("result") == triangle(1'000'000));
  CHECK(sum.at("progress") == json{{"done", 32}, {"failed", 0}, {"total", 32}});
  CHECK(sum.at("percent") == 100);

  const json concat = wait_job(client, concat_id);
  CHECK(concat.at("status") == "done");
  CHECK(concat.at("result") == foos(5000));

  const json fail = wait_job(client, fail_id);
  CHECK(fail.at("status") == "failed");
  REQUIRE(fail.at("errors").size() == 1);
  CHECK(fail.at("errors")[0].at("exception_type") == "std::domain_error");
  CHECK(fail.at("errors")[0].at("message") ==
        "row value 501 is poison (kind fail fails on purpose)");

  const json list = json_of(client.get("/jobs"));
  REQUIRE(list.at("jobs").size() == 3);
  CHECK(list.at("jobs")[0].at("id") == fail_id);  // newest first
  CHECK(list.at("jobs")[1].at("result_length") == foos(5000).size());

  const json health = json_of(client.get("/health"));
  CHECK(health.at("status") == "ok");
  CHECK(health.at("workers") == 2);
  CHECK(health.at("worker_pids").size() == 2);
  CHECK(health.at("workers_ready") == 2);
  CHECK(health.at("failed_starts") == 0);
  CHECK(health.at("jobs_running") == 0);

  const HttpResponse metrics = client.get("/metrics");
  REQUIRE(metrics.status == 200);
  CHECK(metrics.headers.at("content-type").rfind("text/plain", 0) == 0);
  CHECK_THAT(metrics.body, Catch::Contains("# TYPE corun_tasks_done_total counter"));
  CHECK_THAT(metrics.body, Catch::Contains("corun_tasks_failed_total 1\n"));
  CHECK_THAT(metrics.body, Catch::Contains("corun_tasks_in_flight 0\n"));
  CHECK_THAT(metrics.body, Catch::Contains("corun_worker_busy_seconds_total{worker=\"0\"} "));
  CHECK_THAT(metrics.body, Catch::Contains("corun_worker_busy_seconds_total{worker=\"1\"} "));
  CHECK_THAT(metrics.body, Catch::Contains("corun_jobs{status=\"done\"} 2\n"));
  CHECK_THAT(metrics.body, Catch::Contains("corun_jobs_submitted_total 3\n"));

  const json cpu = json_of(client.get("/cpu"));
  CHECK_FALSE(cpu.at("pus").empty());
  CHECK(cpu.at("cores").size() == cpu.at("pus").size());
  CHECK(cpu.at("busy").size() == cpu.at("times").size());

  const HttpResponse page = client.get("/");
  REQUIRE(page.status == 200);
  CHECK(page.headers.at("content-type") == "text/html; charset=utf-8");
  CHECK_THAT(page.body, Catch::Contains("<canvas id=\"cpu-chart\""));

  CHECK(client.get("/nowhere").status == 404);
  CHECK(client.request("PUT", "/jobs").status == 405);
  CHECK(client.get("/jobs/999").status == 404);
  CHECK(client.get("/jobs/99999999999999999999999").status == 404);
  const HttpResponse again = client.del("/jobs/" + std::to_string(sum_id));
  CHECK(again.status == 409);  // already done
  CHECK(json_of(again).at("job").at("status") == "done");

  server.signal(SIGTERM);
  CHECK(server.wait() == 0);
}

TEST_CASE("over HTTP, each bad input is a 400 with a JSON error naming the field",
          "[http][server]") {
  ServerProcess server{{"--port", "0", "--workers", "1"}};
  HttpClient client{server.port()};
  for (const BadCase& c : bad_cases(corun_server::Limits{})) {
    INFO("body: " << c.body.substr(0, 120));
    const HttpResponse r = client.post("/jobs", c.body);
    CHECK(r.status == 400);
    const json error = json_of(r);
    CHECK(error.at("field") == c.field);
    CHECK_FALSE(error.at("error").get<std::string>().empty());
  }
  // A path that is not UTF-8 is a 400 with a JSON error too, not an empty reply.
  for (const char* path : {"/%FF", "/jobs/%FF", "/\xff"}) {
    INFO("path " << path);
    const HttpResponse r = client.get(path);
    CHECK(r.status == 400);
    CHECK_THAT(json_of(r).at("error").get<std::string>(), Catch::Contains("not UTF-8"));
  }
  const auto id = start_job(client, R"({"kind": "sum", "n": 10, "partitions": 2})");
  const HttpResponse bad_wait = client.get("/jobs/" + std::to_string(id) + "?wait=lots");
  CHECK(bad_wait.status == 400);
  CHECK(json_of(bad_wait).at("field") == "wait");
  // Nothing crashed: the server still computes.
  CHECK(wait_job(client, id).at("result") == 55);
  CHECK(json_of(client.get("/jobs")).at("jobs").size() == 1);
  server.signal(SIGTERM);
  CHECK(server.wait() == 0);
}

TEST_CASE("over HTTP, a number beyond a double's range is a 400 naming its field",
          "[http][server]") {
  ServerProcess server{{"--port", "0", "--workers", "1"}};
  HttpClient client{server.port()};
  struct Case {
    std::string body, field, number;
  };
  const std::string digits(400, '7');
  for (const Case& c : {
           Case{R"({"kind":"sum","n":1e400,"partitions":1})", "n", "1e400"},
           Case{R"({"kind":"sum","n":-1e999,"partitions":1})", "n", "-1e999"},
           Case{R"({"kind":"sum","n":)" + digits + R"(,"partitions":1})", "n", digits},
           Case{R"({"kind":"sum","n":10,"partitions":1e400})", "partitions", "1e400"},
       }) {
    INFO("body: " << c.body.substr(0, 120));
    const HttpResponse r = client.post("/jobs", c.body);
    CHECK(r.status == 400);
    const json error = json_of(r);
    CHECK(error.at("field") == c.field);
    CHECK(error.at("error") == c.field +
                                   " is a number beyond a double's range: "
                                   "[json.exception.out_of_range.406] number overflow parsing '" +
                                   c.number + "'");
  }
  const HttpResponse top = client.post("/jobs", "[1e400]");
  CHECK(top.status == 400);
  CHECK(json_of(top).at("field") == "body");
  CHECK(json_of(top).at("error") ==
        "the body holds a number beyond a double's range: [json.exception.out_of_range.406] "
        "number overflow parsing '1e400'");
  // The server still computes.
  const auto id = start_job(client, R"({"kind": "sum", "n": 10, "partitions": 2})");
  CHECK(wait_job(client, id).at("result") == 55);
  server.signal(SIGTERM);
  CHECK(server.wait() == 0);
}

TEST_CASE("over HTTP, a job path whose id is not a whole number is 404 for every method",
          "[http][server]") {
  ServerProcess server{{"--port", "0", "--workers", "1"}};
  HttpClient client{server.port()};
  for (const std::string id : {"abc", "-1", "1.5", "1e3", "12/34"}) {
    for (const std::string method : {"GET", "DELETE", "PUT"}) {
      INFO(method << " /jobs/" << id);
      const HttpResponse r = client.request(method, "/jobs/" + id);
      CHECK(r.status == 404);
      CHECK(json_of(r).at("error") ==
            "no such job: " + method + " /jobs/" + id + " (a job id is a whole number)");
    }
  }
  // A job path with digits is a resource: a method it does not take is 405, an unknown id 404;
  // /jobs/ is the list of jobs, as /jobs is.
  CHECK(client.request("PUT", "/jobs/7").status == 405);
  CHECK(client.get("/jobs/7").status == 404);
  CHECK(client.del("/jobs/7").status == 404);
  server.signal(SIGTERM);
  CHECK(server.wait() == 0);
}

// Its own meson test (http_server_507, running "[shm_full]"), hidden from the default run: it
// exits 77, meson's skip, where it cannot make its mount namespace.
TEST_CASE("over HTTP, a job whose array does not fit /dev/shm is a 507, not a worker SIGBUS",
          "[http][server][failure][.shm_full]") {
  // The server runs in its own mount namespace with a 64 MiB tmpfs on /dev/shm (unshare -m
  // needs CAP_SYS_ADMIN: root). The probe is the same command without the server.
  const std::string mount_small_shm = "mount -t tmpfs -o size=64m tmpfs /dev/shm";
  if (std::system(("/usr/bin/unshare -m sh -c '" + mount_small_shm + "' 2>/dev/null").c_str()) !=
      0) {
    std::fputs(
        "skipping: cannot mount a tmpfs on /dev/shm in a private mount namespace here "
        "(unshare -m needs CAP_SYS_ADMIN: run as root)\n",
        stderr);
    std::_Exit(77);  // Catch2 2.13 has no SKIP; nothing was started yet
  }
  ServerProcess server{{"-m", "sh", "-c", mount_small_shm + " && exec \"$0\" --port 0 --workers 1",
                        ServerProcess::default_exe()},
                       "/usr/bin/unshare"};
  HttpClient client{server.port()};
  // A long job holds a 40 MiB array; a second 40 MiB array does not fit beside it.
  const auto primes = start_job(client, R"({"kind": "primes", "n": 5242880, "partitions": 64})");
  const HttpResponse r = client.post("/jobs", R"({"kind": "sum", "n": 5242880, "partitions": 4})");
  CHECK(r.status == 507);
  CHECK_THAT(json_of(r).at("error").get<std::string>(),
             Catch::Contains("needs 41943040 bytes but /dev/shm has 25165824 bytes free"));
  CHECK(client.del("/jobs/" + std::to_string(primes)).status == 202);
  CHECK(wait_job(client, primes).at("status") == "cancelled");
  // Its array released, the same job fits and reaches its exact result.
  const auto sum = start_job(client, R"({"kind": "sum", "n": 5242880, "partitions": 4})");
  CHECK(wait_job(client, sum).at("result") == 13743897968640);
  server.signal(SIGTERM);
  CHECK(server.wait() == 0);
}

TEST_CASE("200 health requests all answer while a heavy job keeps every worker busy",
          "[http][server][health]") {
  ServerProcess server{{"--port", "0", "--workers", "2"}};
  HttpClient client{server.port()};
  // About 25 CPU-seconds of trial division in 1000 slices: far longer than 200 requests take.
  const auto id = start_job(client, R"({"kind": "primes", "n": 50000000, "partitions": 1000})");
  const std::string job_path = "/jobs/" + std::to_string(id);
  // Measure during the compute pass (the fill pass before it takes a fraction of a second).
  // Polled every 10 ms, at most 3000 times: a tight loop would take the cores from the workers.
  for (int tries = 0; json_of(client.get(job_path)).at("phase") != "compute"; ++tries) {
    REQUIRE(tries < 3000);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  std::vector<double> latencies_us;
  for (int i = 0; i < 200; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const HttpResponse r = client.get("/health");
    latencies_us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    REQUIRE(r.status == 200);
    REQUIRE(json_of(r).at("status") == "ok");
  }
  // The measurement happened under load: the job was still running, slices at every worker.
  const json job = json_of(client.get(job_path));
  CHECK(job.at("status") == "running");
  CHECK_THAT(client.get("/metrics").body, !Catch::Contains("corun_tasks_in_flight 0\n"));
  std::cout << "GET /health under a heavy job, 200 requests: p50 "
            << corun::test::quantile(latencies_us, 0.5) << " us, p99 "
            << corun::test::quantile(latencies_us, 0.99) << " us, max "
            << corun::test::quantile(latencies_us, 1.0) << " us (job at "
            << job.at("percent").get<int>() << "%)\n";

  const HttpResponse cancel = client.del(job_path);
  CHECK(cancel.status == 202);
  CHECK(wait_job(client, id).at("status") == "cancelled");
  server.signal(SIGTERM);
  CHECK(server.wait() == 0);
}

TEST_CASE("over HTTP, a pool whose worker starts fail is degraded, then ok once they succeed",
          "[http][server][health][failure]") {
  // The server retries a failed start with its backoff (at most 1 s apart) and gives up only
  // after 1000 in a row: the degraded state lasts while the fault does.
  ServerProcess server{{"--port", "0", "--workers", "2", "--start-attempts", "1000"}};
  HttpClient client{server.port()};
  const auto pids = ready_worker_pids(client);
  REQUIRE(pids.size() == 2);

  NoNewDescriptors fault{server.pid()};
  REQUIRE(::kill(pids[1], SIGKILL) == 0);
  // Degraded once its replacement failed to start twice: the pool keeps retrying.
  const auto [status, degraded] = health_when(client, [](int, const json& h) {
    return h.at("status") != "ok" && h.at("failed_starts").get<unsigned>() >= 2;
  });
  INFO(degraded.dump());
  CHECK(status == 200);
  CHECK(degraded.at("status") == "degraded");
  CHECK(degraded.at("workers") == 2);
  CHECK(degraded.at("workers_ready") == 1);
  CHECK(degraded.at("worker_pids") == json::array({pids[0]}));
  CHECK(degraded.at("jobs_running") == 0);

  // The fault gone, the next start succeeds: ok again, with a new worker beside the old one.
  fault.restore();
  const auto [ok_status, ok] =
      health_when(client, [](int, const json& h) { return h.at("status") == "ok"; });
  INFO(ok.dump());
  CHECK(ok_status == 200);
  CHECK(ok.at("workers_ready") == 2);
  CHECK(ok.at("failed_starts") == 0);
  const auto now = ok.at("worker_pids").get<std::vector<pid_t>>();
  REQUIRE(now.size() == 2);
  CHECK(std::count(now.begin(), now.end(), pids[0]) == 1);
  CHECK(std::count(now.begin(), now.end(), pids[1]) == 0);
  // And it computes.
  const auto id = start_job(client, R"({"kind": "sum", "n": 100000, "partitions": 8})");
  CHECK(wait_job(client, id).at("result") == triangle(100'000));

  server.signal(SIGTERM);
  CHECK(server.wait() == 0);
  for (pid_t pid : now) {
    INFO("worker pid " << pid);
    CHECK(::kill(pid, 0) == -1);
  }
  CHECK(corun::test::segments_of_pid(server.pid()).empty());
}

TEST_CASE("over HTTP, a pool that gave up starting workers is failed, answered 503",
          "[http][server][health][failure]") {
  // The default: the pool gives up after 5 failed starts in a row (about 150 ms of backoff).
  ServerProcess server{{"--port", "0", "--workers", "2"}};
  HttpClient client{server.port()};
  const auto pids = ready_worker_pids(client);
  REQUIRE(pids.size() == 2);

  NoNewDescriptors fault{server.pid()};
  REQUIRE(::kill(pids[1], SIGKILL) == 0);
  const auto [status, failed] =
      health_when(client, [](int, const json& h) { return h.at("status") == "failed"; });
  INFO(failed.dump());
  CHECK(status == 503);
  CHECK(failed.at("workers") == 2);
  CHECK(failed.at("workers_ready") == 0);
  CHECK(failed.at("failed_starts") == 5);
  CHECK(failed.at("worker_pids") == json::array());  // the pool killed the survivor too
  CHECK(failed.at("jobs_running") == 0);
  for (pid_t pid : pids) {
    INFO("worker pid " << pid);
    CHECK(::kill(pid, 0) == -1);
  }

  // It stays failed when the fault is gone; a job fails with the pool's reason, and the server
  // still answers and stops cleanly.
  fault.restore();
  const auto id = start_job(client, R"({"kind": "sum", "n": 1000, "partitions": 2})");
  const json job = wait_job(client, id);
  INFO(job.dump());
  CHECK(job.at("status") == "failed");
  REQUIRE(job.at("errors").size() == 1);
  const auto message = job.at("errors")[0].at("message").get<std::string>();
  CHECK_THAT(message, Catch::Contains("socketpair for a worker: Too many open files"));
  CHECK_THAT(message, Catch::Contains("(5 consecutive worker starts failed; the pool gives up)"));
  CHECK(client.get("/health").status == 503);

  server.signal(SIGTERM);
  CHECK(server.wait() == 0);
  CHECK(corun::test::segments_of_pid(server.pid()).empty());
}

TEST_CASE("SIGTERM or SIGINT with a job running: exit 0, no worker and no segment left",
          "[http][server][signal]") {
  const int sig = GENERATE(SIGTERM, SIGINT);
  const bool spin = GENERATE(false, true);
  INFO((spin ? "spinning" : "blocking"));
  ServerProcess server{{"--port", "0", "--workers", "2", "--spin-us", spin ? "200" : "0"}};
  HttpClient client{server.port()};
  const auto id = start_job(client, R"({"kind": "primes", "n": 50000000, "partitions": 1000})");
  const json health = json_of(client.get("/health"));
  const auto pids = health.at("worker_pids").get<std::vector<pid_t>>();
  REQUIRE(pids.size() == 2);
  REQUIRE(json_of(client.get("/jobs/" + std::to_string(id))).at("status") == "running");
  // The job's array, and a spinning pool's two workers' rings, made when each worker says hello
  // (a worker's pid is known from its launch, before that).
  REQUIRE(corun::test::wait_until(
      [&] { return json_of(client.get("/health")).at("workers_ready") == 2; }));
  REQUIRE(corun::test::segments_of_pid(server.pid()).size() == (spin ? 3u : 1u));

  server.signal(sig);
  CHECK(server.wait() == 0);
  CHECK_THAT(server.output(), Catch::Contains("stopping"));
  CHECK_THAT(server.output(), Catch::Contains("http_server: stopped"));
  for (pid_t pid : pids) {
    INFO("worker pid " << pid);
    CHECK(::kill(pid, 0) == -1);
    CHECK(errno == ESRCH);
  }
  CHECK(corun::test::segments_of_pid(server.pid()).empty());
}

TEST_CASE("over HTTP, two SIGTERMs under running jobs end the server with exit 0 and no segment",
          "[http][server][signals]") {
  // The second signal kills the workers and stops the loop with the jobs' runs in flight: their
  // handlers own the jobs' arrays, and must be destroyed with the io_context.
  for (const int gap_ms : {5, 300}) {
    INFO("second SIGTERM " << gap_ms << " ms after the first");
    ServerProcess server{{"--port", "0", "--workers", "2"}};
    HttpClient client{server.port()};
    std::vector<std::uint64_t> ids;
    for (int i = 0; i < 4; ++i)
      ids.push_back(start_job(client, R"({"kind": "primes", "n": 20000000, "partitions": 10})"));
    // Each job's array exists and its run is under way before the signals come.
    for (const auto id : ids)
      REQUIRE(json_of(client.get("/jobs/" + std::to_string(id))).at("status") == "running");
    CHECK(corun::test::segments_of_pid(server.pid()).size() == 4);
    server.signal(SIGTERM);
    // The gap is the attack's pattern, not a synchronisation: any gap must end the same way.
    std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms));
    server.signal(SIGTERM);
    CHECK(server.wait() == 0);
    CHECK(corun::test::segments_of_pid(server.pid()).empty());
    for (const auto& name : corun::test::segments_of_pid(server.pid())) ::shm_unlink(name.c_str());
  }
}
