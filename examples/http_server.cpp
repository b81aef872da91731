// corun inside an event-driven HTTP server: RESTinio, a ProcessPool, the jobs' orchestrators and
// a CpuMonitor share one io_context, run by one thread. Slices run in worker processes; the
// loop only routes requests and collects results, so GET /health answers at once whatever runs.
//
//   http_server [--port 8080] [--workers N] [--worker-nice 10] [--start-attempts 5]
//               [--spin-us 0]
//   (binds 127.0.0.1; --port 0 picks a free port; workers default to one per core; after
//   --start-attempts failed worker starts in a row the pool gives up and GET /health answers
//   503 "failed"; until then it retries with a backoff and answers "degraded"; --spin-us N
//   makes the pool spin N us before it sleeps, PoolOptions::wait)
//
//   POST   /jobs       {"kind": "sum"|"primes"|"concat"|"fail", "n": ..., "partitions": ...}
//   GET    /jobs       all jobs;   GET /jobs/{id}: status, progress, result or errors
//   DELETE /jobs/{id}  cancels through Asio cancellation
//   GET    /health     GET /cpu (per-PU utilisation, JSON)     GET /metrics (Prometheus)
//   GET    /           the live dashboard
//
// SIGTERM or SIGINT: stop accepting connections, cancel the running jobs (slices already at a
// worker finish), shut the pool down gracefully, exit 0. A second signal kills the workers at
// once.
#include "cli.hpp"
#include "http_server/dashboard.hpp"
#include "http_server/jobs.hpp"

#include <corun/corun.hpp>
#include <corun/cpu_monitor.hpp>

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <restinio/all.hpp>

#include <sys/resource.h>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace {

using Router = restinio::router::express_router_t<>;
using Traits =
    restinio::single_thread_traits_t<restinio::asio_timer_manager_t, restinio::null_logger_t>;
using restinio::request_handle_t;
using restinio::request_handling_status_t;

struct Options {
  std::uint16_t port = 8080;
  std::size_t workers = 0;  // one per core
  int worker_nice = 10;
  unsigned start_attempts = corun::PoolOptions{}.start_attempts;
  unsigned spin_us = 0;  // 0: the workers and the loop sleep while they wait (blocking)
};

// Worker processes run at a lower priority (nice 10 unless --worker-nice says otherwise): when
// every core runs a worker, the event loop still gets a core as soon as a request arrives. A
// hook is a plain function (a spawned worker is this program re-executed), so the value
// travels in the environment, which workers inherit.
constexpr const char* worker_nice_env = "CORUN_SERVER_WORKER_NICE";

void lower_worker_priority(const corun::WorkerInfo&) {
  if (const char* nice = std::getenv(worker_nice_env))
    ::setpriority(PRIO_PROCESS, 0, std::atoi(nice));
}

Options parse_args(int argc, char** argv) {
  Options options;
  CLI::App app{"corun embedded in an HTTP server (RESTinio) on 127.0.0.1"};
  app.add_option("--port", options.port, "port to listen on (0: a free one)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--workers", options.workers, "worker processes (0: one per core)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  app.add_option("--worker-nice", options.worker_nice, "nice value of the worker processes")
      ->check(CLI::Range(0, 19))
      ->capture_default_str();
  app.add_option("--start-attempts", options.start_attempts,
                 "failed worker starts in a row before the pool gives up (retried with a "
                 "backoff of 10 ms doubling to 1 s until then)")
      ->check(CLI::Range(1u, 1'000'000u))
      ->capture_default_str();
  app.add_option("--spin-us", options.spin_us,
                 "PoolOptions::wait: spin this many microseconds on shared memory before "
                 "sleeping, for the lowest latency per request (0: blocking, no CPU while idle)")
      ->check(CLI::Range(0u, 1'000'000u))
      ->capture_default_str();
  corun_cli::parse_or_exit(app, argc, argv);
  return options;
}

request_handling_status_t reply(const request_handle_t& req, restinio::http_status_line_t status,
                                std::string body, const char* type = "application/json") {
  return req->create_response(std::move(status))
      .append_header(restinio::http_field::content_type, type)
      .append_header(restinio::http_field::cache_control, "no-store")
      .set_body(std::move(body))
      .done();
}

request_handling_status_t reply(const request_handle_t& req, restinio::http_status_line_t status,
                                const nlohmann::json& body) {
  // Replace, never throw: a message may quote bytes of a request that are not UTF-8.
  return reply(req, std::move(status),
               body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

nlohmann::json error_json(const std::string& message) {
  return {{"error", message}};
}

/// The pool's own share of the CPU: the workers' cumulative busy seconds (carried by every
/// result), sampled on the CPU monitor's interval from the same start, so the dashboard can
/// draw it over the monitor's per-core curves, which count everything running on the machine.
class BusySampler {
 public:
  BusySampler(asio::io_context& io, const corun_server::JobTable& jobs,
              std::chrono::milliseconds interval)
      : timer_(io), jobs_(jobs), interval_(interval) {}

  void start() {
    start_ = std::chrono::steady_clock::now();
    timer_.expires_at(start_);
    tick();
  }
  void stop() {
    stopped_ = true;
    timer_.cancel();
  }
  /// Sets `"pool_times"` and `"pool_busy_seconds"` of `out` to the last `max_samples` samples.
  void add_to(nlohmann::ordered_json& out, std::size_t max_samples) const {
    const std::size_t first = samples_.size() > max_samples ? samples_.size() - max_samples : 0;
    auto& times = out["pool_times"] = nlohmann::ordered_json::array();
    auto& busy = out["pool_busy_seconds"] = nlohmann::ordered_json::array();
    for (std::size_t i = first; i < samples_.size(); ++i) {
      times.push_back(samples_[i].first);
      busy.push_back(samples_[i].second);
    }
  }

 private:
  void tick() {
    timer_.expires_at(timer_.expiry() + interval_);
    timer_.async_wait([this](const std::error_code& ec) {
      if (ec || stopped_) return;
      const std::vector<double> b = jobs_.stats().busy_seconds();
      samples_.emplace_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(),
          std::accumulate(b.begin(), b.end(), 0.0));
      if (samples_.size() > 600) samples_.pop_front();
      tick();
    });
  }

  asio::steady_timer timer_;
  const corun_server::JobTable& jobs_;
  std::chrono::milliseconds interval_;
  std::chrono::steady_clock::time_point start_;
  std::deque<std::pair<double, double>> samples_;
  bool stopped_ = false;
};

/// Everything the routes use; lives in main for the whole run of the loop.
struct App {
  static constexpr unsigned max_wait_seconds = 60;

  asio::io_context& io;
  corun::ProcessPool& pool;
  corun::CpuMonitor& monitor;
  BusySampler& busy;
  corun_server::JobTable& jobs;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  /// "ok", "degraded" (workers missing: crashed or restarting after failed starts; jobs still
  /// run), "failed" (the pool gave up starting workers: answered 503) or "stopping".
  nlohmann::json health() const {
    nlohmann::json pids = nlohmann::json::array();
    for (pid_t pid : pool.worker_pids()) pids.push_back(pid);
    const corun::PoolHealth state = pool.health();
    const char* status = jobs.stopping()    ? "stopping"
                         : state.failed     ? "failed"
                         : state.degraded() ? "degraded"
                                            : "ok";
    return {{"status", status},
            {"workers", pool.size()},
            {"workers_ready", state.ready},
            {"failed_starts", state.failed_starts},
            {"worker_pids", std::move(pids)},
            {"jobs_running", jobs.running()},
            {"worker_busy_seconds", jobs.stats().busy_seconds()},
            {"uptime_seconds",
             std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()}};
  }

  /// The monitor's `{"pus", "cores" (the core of each PU), "times", "busy"}` of the last 300
  /// samples (CpuSeries::to_json's text, read back in order: the library keeps nlohmann private),
  /// plus the pool's share (BusySampler) over the same times.
  std::string cpu() const {
    auto j = nlohmann::ordered_json::parse(monitor.series().to_json(300));
    j["pool_workers"] = pool.size();
    busy.add_to(j, 300);
    return j.dump();
  }

  std::optional<std::uint64_t> job_id(const restinio::router::route_params_t& params) const {
    try {
      return restinio::cast_to<std::uint64_t>(params["id"]);
    } catch (const std::exception&) {
      return std::nullopt;  // digits, but too many
    }
  }

  request_handling_status_t post_job(const request_handle_t& req) {
    auto parsed = corun_server::parse_job_request(req->body(), jobs.limits());
    if (const auto* bad = std::get_if<corun_server::BadRequest>(&parsed))
      return reply(req, restinio::status_bad_request(), bad->to_json());
    std::string refusal;
    std::shared_ptr<corun_server::Job> job;
    try {
      job = jobs.submit(std::get<corun_server::JobRequest>(parsed), refusal);
    } catch (const corun::Error& e) {  // /dev/shm has no room for the array
      return reply(req, restinio::status_insufficient_storage(), error_json(e.what()));
    }
    if (!job) return reply(req, restinio::status_service_unavailable(), error_json(refusal));
    const std::string href = "/jobs/" + std::to_string(job->id());
    return req->create_response(restinio::status_accepted())
        .append_header(restinio::http_field::content_type, "application/json")
        .append_header(restinio::http_field::location, href)
        .set_body(nlohmann::json{{"id", job->id()}, {"href", href}}.dump())
        .done();
  }

  /// Replies with the job when it ends or when `limit` expires, whichever comes first.
  request_handling_status_t answer_when_finished(const request_handle_t& req,
                                                 const std::shared_ptr<corun_server::Job>& job,
                                                 std::chrono::seconds limit) {
    auto timer = std::make_shared<asio::steady_timer>(io, limit);
    auto answered = std::make_shared<bool>(false);
    auto answer = [req, weak = std::weak_ptr(job), timer, answered] {
      if (std::exchange(*answered, true)) return;
      timer->cancel();
      if (const auto j = weak.lock())
        reply(req, restinio::status_ok(), j->to_json());
      else
        reply(req, restinio::status_not_found(), error_json("the job was forgotten"));
    };
    job->when_finished(answer);
    timer->async_wait([answer](const std::error_code& ec) {
      if (!ec) answer();
    });
    return restinio::request_accepted();
  }

  /// The router, behind a check it cannot make: its route matching throws on a path whose
  /// percent-decoding is not UTF-8 (and RESTinio then closes the connection without a reply).
  restinio::default_request_handler_t handler() {
    return [router = std::shared_ptr<Router>(router())](const request_handle_t& req) {
      const std::string path{req->header().path()};
      // RESTinio's decoder checks UTF-8 as it goes: its failure is the router's.
      auto decoded =
          restinio::utils::try_unescape_percent_encoding<restinio::utils::relaxed_unescape_traits>(
              path);
      if (!decoded)
        return reply(req, restinio::status_bad_request(),
                     error_json("the path is not UTF-8 once percent-decoded (or not "
                                "percent-encoded): " +
                                decoded.error().giveout_description()));
      return (*router)(req);
    };
  }

  std::unique_ptr<Router> router() {
    auto r = std::make_unique<Router>();
    r->http_get("/", [](const request_handle_t& req, auto) {
      return reply(req, restinio::status_ok(), std::string(corun_server::dashboard_html),
                   "text/html; charset=utf-8");
    });
    r->http_get("/health", [this](const request_handle_t& req, auto) {
      nlohmann::json state = health();
      const bool failed = state.at("status") == "failed";
      return reply(req, failed ? restinio::status_service_unavailable() : restinio::status_ok(),
                   std::move(state));
    });
    r->http_get("/cpu", [this](const request_handle_t& req, auto) {
      return reply(req, restinio::status_ok(), cpu());
    });
    r->http_get("/metrics", [this](const request_handle_t& req, auto) {
      return reply(req, restinio::status_ok(), jobs.metrics(), "text/plain; version=0.0.4");
    });
    r->http_get("/jobs", [this](const request_handle_t& req, auto) {
      return reply(req, restinio::status_ok(), jobs.to_json());
    });
    r->http_post("/jobs", [this](const request_handle_t& req, auto) { return post_job(req); });
    r->http_get(R"(/jobs/:id(\d+))", [this](const request_handle_t& req, auto params) {
      const auto id = job_id(params);
      const auto job = id ? jobs.find(*id) : nullptr;
      if (!job) return reply(req, restinio::status_not_found(), error_json("no such job"));
      // ?wait=S: answer when the job ends, or after S seconds, whichever comes first.
      unsigned wait = 0;
      try {
        const auto query = restinio::parse_query(req->header().query());
        if (query.has("wait")) wait = restinio::cast_to<unsigned>(query["wait"]);
      } catch (const std::exception&) {
        wait = max_wait_seconds + 1;
      }
      if (wait > max_wait_seconds)
        return reply(req, restinio::status_bad_request(),
                     corun_server::BadRequest{"wait",
                                              "wait must be a whole number of seconds "
                                              "from 0 to " +
                                                  std::to_string(max_wait_seconds)}
                         .to_json());
      if (wait == 0 || job->finished()) return reply(req, restinio::status_ok(), job->to_json());
      return answer_when_finished(req, job, std::chrono::seconds(wait));
    });
    r->http_delete(R"(/jobs/:id(\d+))", [this](const request_handle_t& req, auto params) {
      const auto id = job_id(params);
      const auto job = id ? jobs.find(*id) : nullptr;
      if (!job) return reply(req, restinio::status_not_found(), error_json("no such job"));
      if (job->finished()) {
        auto body = error_json("job " + std::to_string(*id) + " is already " +
                               corun_server::to_string(job->status()));
        body["job"] = job->to_json(false);
        return reply(req, restinio::status_conflict(), body);
      }
      // terminal: the workers running its slices are killed (the pool replaces them), so a
      // cancelled job stops using the CPU at once.
      job->cancel(asio::cancellation_type::terminal);
      return reply(req, restinio::status_accepted(), job->to_json(false));
    });
    r->non_matched_request_handler([](const request_handle_t& req) {
      const std::string path{req->header().path()};
      const std::string what = std::string(req->header().method().c_str()) + " " + path;
      // /jobs/<digits> is a job, which some methods do not take; anything else there is none.
      if (path.rfind("/jobs/", 0) == 0) {
        const std::string id = path.substr(6);
        if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
          return reply(req, restinio::status_not_found(),
                       error_json("no such job: " + what + " (a job id is a whole number)"));
      }
      const bool known = path == "/" || path == "/health" || path == "/cpu" || path == "/metrics" ||
                         path == "/jobs" || path.rfind("/jobs/", 0) == 0;
      return known ? reply(req, restinio::status_method_not_allowed(),
                           error_json("method not allowed: " + what))
                   : reply(req, restinio::status_not_found(), error_json("no route for " + what));
    });
    return r;
  }
};

}  // namespace

int main(int argc, char** argv) {
  corun::enter_worker_if_spawned(argc, argv);  // worker processes are this program re-executed
  const Options options = parse_args(argc, argv);
  ::setenv(worker_nice_env, std::to_string(options.worker_nice).c_str(), 1);

  asio::io_context io{1};
  corun::ProcessPool pool{
      io.get_executor(),
      {.workers = options.workers,
       .start_attempts = options.start_attempts,
       .worker_init = &lower_worker_priority,
       .wait = corun::WaitMode::spin(std::chrono::microseconds(options.spin_us))}};
  corun::CpuMonitor monitor{io.get_executor(), std::chrono::milliseconds(200)};
  corun_server::JobTable jobs{pool};
  BusySampler busy{io, jobs, monitor.interval()};
  App app{io, pool, monitor, busy, jobs};

  std::uint16_t port = 0;
  restinio::http_server_t<Traits> server{
      restinio::external_io_context(io),
      restinio::server_settings_t<Traits>{}
          .address("127.0.0.1")
          .port(options.port)
          .request_handler(app.handler())
          // GET /jobs/{id}?wait=60 may keep a request open for a minute.
          .handle_request_timeout(std::chrono::seconds(App::max_wait_seconds + 5))
          // A body larger than 1 MiB closes the connection; up to it, POST /jobs answers 400
          // when the body is over Limits::max_body_bytes.
          .incoming_http_msg_limits(restinio::incoming_http_msg_limits_t{}.max_body_size(1 << 20))
          .acceptor_post_bind_hook(
              [&port](asio::ip::tcp::acceptor& a) { port = a.local_endpoint().port(); })};

  int exit_code = 0;
  auto stop_loop = [&](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        std::cerr << "http_server: pool shutdown failed: " << x.what() << '\n';
      }
      exit_code = 1;
    }
    io.stop();
  };

  asio::post(io, [&] {
    try {
      server.open_sync();
    } catch (const std::exception& e) {
      std::cerr << "http_server: cannot listen on 127.0.0.1:" << options.port << ": " << e.what()
                << '\n';
      exit_code = 1;
      pool.async_shutdown(stop_loop);
      return;
    }
    monitor.start();
    busy.start();
    std::cout << "http_server: listening on http://127.0.0.1:" << port << "/ with " << pool.size()
              << " workers" << std::endl;
  });

  asio::signal_set signals{io, SIGINT, SIGTERM};
  signals.async_wait([&](const std::error_code& ec, int signo) {
    if (ec) return;
    std::cout << "http_server: " << ::strsignal(signo) << ": stopping" << std::endl;
    server.close_sync();  // no new connections; open ones are served until the loop stops
    signals.async_wait([&](const std::error_code& ec2, int) {
      if (ec2) return;
      std::cout << "http_server: second signal: killing the workers" << std::endl;
      pool.terminate();
      io.stop();
    });
    jobs.stop(asio::cancellation_type::total, [&] {
      monitor.stop();
      busy.stop();
      pool.async_shutdown(stop_loop);
    });
  });

  io.run();
  // A signal from now on must not end the process before its pool, arrays and server are torn
  // down (a second SIGTERM just after the first ran its course would): the signal_set, when it
  // goes, restores the default actions, so the signals are blocked first and then ignored.
  sigset_t stopping;
  sigemptyset(&stopping);
  sigaddset(&stopping, SIGINT);
  sigaddset(&stopping, SIGTERM);
  ::pthread_sigmask(SIG_BLOCK, &stopping, nullptr);
  signals.clear();
  std::signal(SIGINT, SIG_IGN);
  std::signal(SIGTERM, SIG_IGN);
  ::pthread_sigmask(SIG_UNBLOCK, &stopping, nullptr);
  std::cout << "http_server: stopped" << std::endl;
  return exit_code;
}
