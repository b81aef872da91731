#pragma once
// The job table behind examples/http_server.cpp: how a POST /jobs body becomes a job, and how
// jobs share one ProcessPool on the server's event loop. Everything here runs on that loop
// (the pool's executor), so nothing is locked.

#include <corun/corun.hpp>

#include <asio/cancellation_signal.hpp>
#include <asio/cancellation_type.hpp>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace corun_server {

/// What a request is checked against. Each bound is documented in the README.
struct Limits {
  std::size_t max_body_bytes = 4096;      ///< a larger POST /jobs body is a 400 ("body")
  std::uint64_t max_partitions = 10'000;  ///< slices per pass
  std::size_t max_running_jobs = 16;      ///< more at once: 503
  std::size_t max_kept_jobs = 256;        ///< finished jobs remembered for GET /jobs/{id}
};

/// A job of at most this many slices per pass is request-sized: someone waits for its answer,
/// so its slices run at priority 1, ahead of batch jobs' (priority 0) in the pool's queue.
inline constexpr std::size_t interactive_slices = 64;

/// What a job computes over the array 1..n (or, for concat, the strings foo_0..foo_{n-1}).
enum class Kind {
  sum,     ///< the sum of 1..n, exactly n(n+1)/2
  primes,  ///< how many of 1..n are prime, by trial division: CPU-bound
  concat,  ///< the strings foo_0 .. foo_{n-1}, concatenated in order
  fail,    ///< sums, but the slice holding the middle row throws: shows how failures look
};
const char* to_string(Kind kind) noexcept;
/// The largest n a kind accepts.
std::uint64_t max_n(Kind kind) noexcept;

struct JobRequest {
  Kind kind = Kind::sum;
  std::uint64_t n = 0;
  std::uint64_t partitions = 0;
};

/// Why a request was refused: the field at fault ("body" for the body itself) and a message.
struct BadRequest {
  std::string field;
  std::string message;
  nlohmann::json to_json() const { return {{"error", message}, {"field", field}}; }
};

/// Why `text` is not valid UTF-8 ("not UTF-8 (invalid UTF-8 byte at index ...)"), or nothing.
std::optional<std::string> not_utf8(std::string_view text);

/// Parses and checks a POST /jobs body `{"kind": ..., "n": ..., "partitions": ...}`.
std::variant<JobRequest, BadRequest> parse_job_request(std::string_view body, const Limits& limits);

enum class JobStatus { running, cancelling, done, failed, cancelled };
const char* to_string(JobStatus status) noexcept;

/// What every task result carries besides its value: how long `process` ran and in which pool
/// slot, so the server can account busy time per worker as results arrive.
struct Timing {
  std::int64_t busy_ns = 0;
  std::int32_t worker_id = 0;
  std::int32_t reserved = 0;
};

/// The server's counters, in a prometheus-cpp Registry: its core library only (metric
/// families and the text format); GET /metrics is served by RESTinio like every other route,
/// not by prometheus-cpp's civetweb exposer, so the one loop keeps all sockets. Everything is
/// counted on the loop as it happens (results by the workers' process_callback); the few
/// values that are state rather than events are set when the metrics are read.
class Stats {
 public:
  explicit Stats(std::size_t workers);
  Stats(const Stats&) = delete;
  Stats& operator=(const Stats&) = delete;

  /// A slice's result arrived: one more task done, and its busy time for its worker.
  void record(const Timing& timing);
  /// A pass ended with `n` failed slices (exception, crash or timeout).
  void record_failed(std::size_t n);
  /// POST /jobs accepted a job.
  void record_submitted();
  /// Jobs remembered by status (corun_jobs{status}): count one in, or one out.
  prometheus::Gauge& jobs(JobStatus status);

  std::uint64_t tasks_done() const;
  std::uint64_t tasks_failed() const;
  /// Seconds each worker spent in `process`, by pool slot.
  std::vector<double> busy_seconds() const;

  /// The Prometheus text exposition (format 0.0.4) of every metric, names prefixed corun_;
  /// `in_flight` and `workers` are the gauges of state, set now.
  std::string text(std::size_t in_flight, std::size_t workers);

  std::uint64_t results = 0;  ///< sequence number of the latest result, over all jobs

 private:
  prometheus::Registry registry_;
  prometheus::Counter& tasks_done_;
  prometheus::Counter& tasks_failed_;
  prometheus::Gauge& tasks_in_flight_;
  prometheus::Family<prometheus::Counter>& busy_family_;
  std::vector<prometheus::Counter*> busy_;  // by pool slot
  prometheus::Gauge& workers_;
  std::vector<prometheus::Gauge*> jobs_;  // by JobStatus
  prometheus::Counter& submitted_;
};

/// Slices done, failed and in all, over both passes of a job.
struct Progress {
  std::size_t done = 0;
  std::size_t failed = 0;
  std::size_t total = 0;
  std::size_t in_flight = 0;  ///< submitted to the pool and not finished (window-bounded)
};

/// One job: its shared array, its worker objects, and the orchestrator of its current pass.
/// A job runs two passes over one SharedArray: `fill` (the workers write 1..n, or the
/// strings, into their rows in place) and `compute` (the kind's work). The table and the
/// running pass's completion handler both hold it, so it outlives its run.
class Job : public std::enable_shared_from_this<Job> {
 public:
  Job(std::uint64_t id, JobRequest request, corun::ProcessPool& pool, Stats& stats);
  virtual ~Job();
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  std::uint64_t id() const noexcept { return id_; }
  const JobRequest& request() const noexcept { return request_; }
  JobStatus status() const noexcept { return status_; }
  bool finished() const noexcept;
  Progress progress() const;
  /// Sequence numbers (Stats::results) of this job's first and last compute results: two
  /// jobs whose ranges overlap had their slices interleaved on the pool.
  std::uint64_t first_result() const noexcept { return first_result_; }
  std::uint64_t last_result() const noexcept { return last_result_; }

  /// The job as GET /jobs/{id} shows it; `full` false leaves out a long text result.
  nlohmann::json to_json(bool full = true) const;

  /// Starts the first pass; `on_finished` runs on the loop once the job has ended.
  void start(std::function<void()> on_finished);
  /// Calls `f` on the loop once the job has ended (at once if it has).
  void when_finished(std::function<void()> f);
  /// Cancels through Asio's per-operation cancellation: `terminal` kills the workers running
  /// this job's slices (the pool replaces them), `total` lets those slices finish.
  void cancel(asio::cancellation_type type);

  /// Called by the job's workers, on the loop, as each fill or compute result arrives.
  void note_fill(const Timing& timing);
  void note_result(const Timing& timing);

 protected:
  /// The orchestrator of pass `i` (0: fill, 1: compute).
  virtual std::unique_ptr<corun::WorkerOrchestrator> make_pass(std::size_t i) = 0;
  /// The result of a job whose passes all succeeded (called once).
  virtual nlohmann::json take_result() = 0;
  /// Frees the array and the worker objects once the job has ended.
  virtual void release() = 0;
  corun::OrchestratorOptions pass_options() const;
  /// 1 for a request-sized job (interactive_slices), 0 for a batch job.
  int priority() const noexcept { return slices_ <= interactive_slices ? 1 : 0; }

  corun::ProcessPool& pool_;
  Stats& stats_;

 private:
  void run_pass(std::size_t i);
  void set_status(JobStatus status);
  void pass_done(std::size_t i, std::exception_ptr error, corun::RunReport report);
  void finish(JobStatus status);

  std::uint64_t id_;
  JobRequest request_;
  JobStatus status_ = JobStatus::running;
  std::size_t pass_ = 0;
  bool pass_running_ = false;
  std::size_t slices_ = 0;       // per pass
  std::size_t done_before_ = 0;  // slices of earlier passes
  std::size_t failed_before_ = 0;
  std::unique_ptr<corun::WorkerOrchestrator> orch_;
  asio::cancellation_signal cancel_;
  bool cancel_requested_ = false;
  nlohmann::json errors_ = nlohmann::json::array();
  nlohmann::json result_;
  std::function<void()> on_finished_;
  std::vector<std::function<void()>> waiters_;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::duration elapsed_{};
  std::uint64_t first_result_ = 0, last_result_ = 0;
};

/// The jobs of one server, by id.
class JobTable {
 public:
  JobTable(corun::ProcessPool& pool, Limits limits = {});

  const Limits& limits() const noexcept { return limits_; }
  const Stats& stats() const noexcept { return stats_; }

  /// Starts a job. Returns null and sets `refusal` when it cannot start now (too many
  /// running, shutting down); throws corun::Error when /dev/shm has no room for its array.
  std::shared_ptr<Job> submit(const JobRequest& request, std::string& refusal);
  /// The job of that id, or null (unknown, or forgotten: only max_kept_jobs are kept).
  std::shared_ptr<Job> find(std::uint64_t id) const;
  std::size_t running() const;

  /// Refuses new jobs, cancels the running ones, and calls `then` on the loop once none runs.
  void stop(asio::cancellation_type type, std::function<void()> then);
  bool stopping() const noexcept { return stopping_; }

  /// `{"jobs": [...]}`, newest first, without long text results.
  nlohmann::json to_json() const;
  /// Prometheus text exposition, names prefixed corun_ (Stats::text).
  std::string metrics();

 private:
  void job_finished();

  corun::ProcessPool& pool_;
  Limits limits_;
  Stats stats_;
  std::map<std::uint64_t, std::shared_ptr<Job>> jobs_;
  std::uint64_t next_id_ = 1;
  bool stopping_ = false;
  std::function<void()> on_idle_;
};

}  // namespace corun_server
