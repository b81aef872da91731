#include "jobs.hpp"

#include <asio/bind_cancellation_slot.hpp>
#include <asio/error.hpp>
#include <asio/post.hpp>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/text_serializer.h>
#include <algorithm>
#include <chrono>
#include <cstring>
#include <numeric>
#include <optional>
#include <set>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

namespace corun_server {

// ---- worker types -------------------------------------------------------------------------

using StringRow = corun::FixedUString<12>;  // "foo_99999" fits: concat's n is at most 100'000

/// A count and how long it took.
struct Count {
  std::int64_t value = 0;
  Timing timing;
};

/// A piece of the concatenation, where it starts, and how long it took.
struct Piece {
  std::uint64_t start = 0;
  Timing timing;
  std::string text;
};

namespace {

template <class F>
auto timed(const corun::TaskContext& ctx, F&& work) {
  const auto t0 = std::chrono::steady_clock::now();
  auto value = work();
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  return std::pair{std::move(value), Timing{ns, ctx.worker_id, 0}};
}

bool is_prime(std::int64_t v) {
  if (v < 2) return false;
  if (v % 2 == 0) return v == 2;
  for (std::int64_t d = 3; d * d <= v; d += 2)
    if (v % d == 0) return false;
  return true;
}

}  // namespace

/// Pass 1 of int jobs: writes 1..n into its rows of the output array (the input array
/// itself), in the worker process, so the server's loop never touches the data.
struct FillInts : corun::Worker<FillInts, std::int64_t> {
  using Worker::Worker;
  static Timing process(corun::SliceView<const std::int64_t>, const corun::TaskContext& ctx) {
    return timed(ctx,
                 [&] {
                   auto out = ctx.output<std::int64_t>();
                   std::iota(out.begin(), out.end(),
                             static_cast<std::int64_t>(ctx.slice.start + 1));
                   return 0;
                 })
        .second;
  }
  void process_callback(Timing timing) { job->note_fill(timing); }
  Job* job = nullptr;
};

/// Pass 1 of concat jobs: writes foo_<row> into its rows.
struct FillStrings : corun::Worker<FillStrings, StringRow> {
  using Worker::Worker;
  static Timing process(corun::SliceView<const StringRow>, const corun::TaskContext& ctx) {
    return timed(ctx,
                 [&] {
                   auto out = ctx.output<StringRow>();
                   std::size_t row = ctx.slice.start;
                   for (auto& s : out) s = StringRow("foo_" + std::to_string(row++));
                   return 0;
                 })
        .second;
  }
  void process_callback(Timing timing) { job->note_fill(timing); }
  Job* job = nullptr;
};

/// Adds up counts from the workers; the base of the int compute workers.
template <class Derived>
struct Tally : corun::Worker<Derived, std::int64_t> {
  using corun::Worker<Derived, std::int64_t>::Worker;
  void process_callback(Count c) {
    total += c.value;
    job->note_result(c.timing);
  }
  std::int64_t total = 0;
  Job* job = nullptr;
};

struct SumInts : Tally<SumInts> {
  using Tally::Tally;
  static Count process(corun::SliceView<const std::int64_t> slice, const corun::TaskContext& ctx) {
    auto [sum, timing] =
        timed(ctx, [&] { return std::accumulate(slice.begin(), slice.end(), std::int64_t{0}); });
    return {sum, timing};
  }
};

struct CountPrimes : Tally<CountPrimes> {
  using Tally::Tally;
  static Count process(corun::SliceView<const std::int64_t> slice, const corun::TaskContext& ctx) {
    auto [count, timing] = timed(ctx, [&] {
      return static_cast<std::int64_t>(std::count_if(slice.begin(), slice.end(), is_prime));
    });
    return {count, timing};
  }
};

/// Sums like SumInts, but the slice holding the middle row (value n/2 + 1) throws.
struct SumOrFail : Tally<SumOrFail> {
  using Tally::Tally;
  static Count process(corun::SliceView<const std::int64_t> slice, const corun::TaskContext& ctx) {
    const auto poison = static_cast<std::int64_t>(ctx.iterator.size_of_data / 2 + 1);
    auto [sum, timing] = timed(ctx, [&] {
      std::int64_t s = 0;
      for (std::int64_t v : slice) {
        if (v == poison)
          throw std::domain_error("row value " + std::to_string(v) +
                                  " is poison (kind fail fails on purpose)");
        s += v;
      }
      return s;
    });
    return {sum, timing};
  }
};

/// Concatenates the strings of its slice; the job joins the pieces in slice order.
struct ConcatStrings : corun::Worker<ConcatStrings, StringRow> {
  using Worker::Worker;
  static Piece process(corun::SliceView<const StringRow> slice, const corun::TaskContext& ctx) {
    auto [text, timing] = timed(ctx, [&] {
      std::string s;
      for (const auto& row : slice) s += row.str();
      return s;
    });
    return {ctx.slice.start, timing, std::move(text)};
  }
  void process_callback(Piece piece) {
    job->note_result(piece.timing);
    pieces[piece.start] = std::move(piece.text);
  }
  std::map<std::uint64_t, std::string> pieces;
  Job* job = nullptr;
};

}  // namespace corun_server

// A Piece travels as its start and timing (fixed size), then the text.
template <>
struct corun::codec<corun_server::Piece> {
  static constexpr std::size_t head = sizeof(std::uint64_t) + sizeof(corun_server::Timing);
  static void encode(const corun_server::Piece& p, std::string& out) {
    out.append(reinterpret_cast<const char*>(&p.start), sizeof p.start);
    out.append(reinterpret_cast<const char*>(&p.timing), sizeof p.timing);
    out.append(p.text);
  }
  static corun_server::Piece decode(std::string_view bytes) {
    if (bytes.size() < head) throw std::invalid_argument("corun_server::Piece: truncated");
    corun_server::Piece p;
    std::memcpy(&p.start, bytes.data(), sizeof p.start);
    std::memcpy(&p.timing, bytes.data() + sizeof p.start, sizeof p.timing);
    p.text = std::string(bytes.substr(head));
    return p;
  }
};

CORUN_REGISTER_WORKER(corun_server::FillInts);
CORUN_REGISTER_WORKER(corun_server::FillStrings);
CORUN_REGISTER_WORKER(corun_server::SumInts);
CORUN_REGISTER_WORKER(corun_server::CountPrimes);
CORUN_REGISTER_WORKER(corun_server::SumOrFail);
CORUN_REGISTER_WORKER(corun_server::ConcatStrings);

namespace corun_server {

// ---- requests -----------------------------------------------------------------------------

const char* to_string(Kind kind) noexcept {
  switch (kind) {
    case Kind::sum:
      return "sum";
    case Kind::primes:
      return "primes";
    case Kind::concat:
      return "concat";
    case Kind::fail:
      return "fail";
  }
  return "?";
}

std::uint64_t max_n(Kind kind) noexcept {
  switch (kind) {
    case Kind::sum:
      return 100'000'000;  // 800 MB of /dev/shm; the sum stays below 2^53, exact in JavaScript
    case Kind::primes:
      return 50'000'000;
    case Kind::concat:
      return 100'000;  // the result is returned whole: under 1 MB
    case Kind::fail:
      return 1'000'000;
  }
  return 0;
}

const char* to_string(JobStatus status) noexcept {
  switch (status) {
    case JobStatus::running:
      return "running";
    case JobStatus::cancelling:
      return "cancelling";
    case JobStatus::done:
      return "done";
    case JobStatus::failed:
      return "failed";
    case JobStatus::cancelled:
      return "cancelled";
  }
  return "?";
}

namespace {

constexpr Kind all_kinds[] = {Kind::sum, Kind::primes, Kind::concat, Kind::fail};

/// A positive integer field no larger than `limit`, or the reason it is not one.
std::variant<std::uint64_t, BadRequest> count_field(const nlohmann::json& body, const char* field,
                                                    std::uint64_t limit,
                                                    const std::string& limit_reason) {
  const std::string range = "an integer from 1 to " + std::to_string(limit) + limit_reason;
  const auto it = body.find(field);
  if (it == body.end()) return BadRequest{field, std::string(field) + " is missing: give " + range};
  if (!it->is_number_integer())
    return BadRequest{field, std::string(field) + " must be " + range + ", not " + it->dump()};
  if (it->is_number_unsigned()) {
    const auto v = it->get<std::uint64_t>();
    if (v >= 1 && v <= limit) return v;
  }
  return BadRequest{field,
                    std::string(field) + " = " + it->dump() + " is out of range: give " + range};
}

}  // namespace

std::optional<std::string> not_utf8(std::string_view text) {
  try {
    // nlohmann's serialiser checks UTF-8 and names the first bad byte and its index.
    (void)nlohmann::json(std::string(text)).dump();
    return std::nullopt;
  } catch (const nlohmann::json::type_error& e) {
    const std::string what = e.what();
    const auto at = what.find("invalid UTF-8");
    return "not UTF-8 (" + (at == what.npos ? what : what.substr(at)) + ")";
  }
}

std::variant<JobRequest, BadRequest> parse_job_request(std::string_view body,
                                                       const Limits& limits) {
  if (body.size() > limits.max_body_bytes)
    return BadRequest{"body", "the body is " + std::to_string(body.size()) +
                                  " bytes; the limit is " + std::to_string(limits.max_body_bytes)};
  if (auto bad = not_utf8(body)) return BadRequest{"body", "the body is " + *bad};
  if (body.substr(0, 3) == "\xef\xbb\xbf")
    return BadRequest{"body", "the body starts with a UTF-8 byte order mark; send plain JSON"};
  // nlohmann keeps the last of duplicated keys silently: track each object's keys.
  std::vector<std::set<std::string>> keys;
  std::string duplicate;
  // Which top-level field is being parsed, so that a number nlohmann cannot hold names it.
  using Event = nlohmann::json::parse_event_t;
  std::vector<Event> open;  // object_start or array_start, outermost first
  std::string top_field;
  const nlohmann::json::parser_callback_t find_duplicates = [&](int, Event event,
                                                                nlohmann::json& parsed) {
    if (event == Event::object_start || event == Event::array_start) open.push_back(event);
    if ((event == Event::object_end || event == Event::array_end) && !open.empty()) open.pop_back();
    if (event == Event::object_start) keys.emplace_back();
    if (event == Event::object_end && !keys.empty()) keys.pop_back();
    if (event == Event::key && open.size() == 1 && open.front() == Event::object_start)
      top_field = parsed.get<std::string>();
    if (event == Event::key && !keys.empty() &&
        !keys.back().insert(parsed.get<std::string>()).second && duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(body, find_duplicates);
  } catch (const nlohmann::json::parse_error& e) {
    return BadRequest{"body", std::string("malformed JSON: ") + e.what()};
  } catch (const nlohmann::json::out_of_range& e) {
    if (!open.empty() && open.front() == Event::object_start && !top_field.empty())
      return BadRequest{top_field, top_field + " is a number beyond a double's range: " + e.what()};
    return BadRequest{"body",
                      std::string("the body holds a number beyond a double's range: ") + e.what()};
  }
  if (!duplicate.empty())
    return BadRequest{duplicate, "field \"" + duplicate + "\" is given more than once"};
  if (!json.is_object())
    return BadRequest{"body", "the body must be a JSON object {\"kind\", \"n\", \"partitions\"}"};
  for (const auto& [key, value] : json.items())
    if (key != "kind" && key != "n" && key != "partitions")
      return BadRequest{key, "unknown field \"" + key + "\": expected kind, n, partitions"};

  std::string kinds;
  for (Kind k : all_kinds) kinds += std::string(kinds.empty() ? "" : ", ") + to_string(k);
  const auto kind_it = json.find("kind");
  if (kind_it == json.end()) return BadRequest{"kind", "kind is missing: one of " + kinds};
  if (!kind_it->is_string())
    return BadRequest{"kind",
                      "kind must be a string, one of " + kinds + ", not " + kind_it->dump()};
  JobRequest request;
  const auto name = kind_it->get<std::string>();
  const auto* found = std::find_if(std::begin(all_kinds), std::end(all_kinds),
                                   [&](Kind k) { return name == to_string(k); });
  if (found == std::end(all_kinds))
    return BadRequest{"kind", "unknown kind " + kind_it->dump() + ": one of " + kinds};
  request.kind = *found;

  auto n = count_field(json, "n", max_n(request.kind), " for kind " + name);
  if (auto* bad = std::get_if<BadRequest>(&n)) return std::move(*bad);
  request.n = std::get<std::uint64_t>(n);
  const std::uint64_t max_parts = std::min(limits.max_partitions, request.n);
  auto parts = count_field(
      json, "partitions", max_parts,
      max_parts == request.n && request.n < limits.max_partitions ? " (at most n)" : "");
  if (auto* bad = std::get_if<BadRequest>(&parts)) return std::move(*bad);
  request.partitions = std::get<std::uint64_t>(parts);
  return request;
}

// ---- jobs ---------------------------------------------------------------------------------

namespace {
constexpr JobStatus all_statuses[] = {JobStatus::running, JobStatus::cancelling, JobStatus::done,
                                      JobStatus::failed, JobStatus::cancelled};
}  // namespace

Stats::Stats(std::size_t workers)
    : tasks_done_(prometheus::BuildCounter()
                      .Name("corun_tasks_done_total")
                      .Help("Slices whose result reached the server (fill and compute passes of "
                            "every job).")
                      .Register(registry_)
                      .Add({})),
      tasks_failed_(prometheus::BuildCounter()
                        .Name("corun_tasks_failed_total")
                        .Help("Slices that failed: exception, crash or timeout.")
                        .Register(registry_)
                        .Add({})),
      tasks_in_flight_(prometheus::BuildGauge()
                           .Name("corun_tasks_in_flight")
                           .Help("Slices submitted to the pool and not finished yet.")
                           .Register(registry_)
                           .Add({})),
      busy_family_(prometheus::BuildCounter()
                       .Name("corun_worker_busy_seconds_total")
                       .Help("Seconds each worker process spent in process(), by pool slot.")
                       .Register(registry_)),
      workers_(prometheus::BuildGauge()
                   .Name("corun_workers")
                   .Help("Worker processes in the pool.")
                   .Register(registry_)
                   .Add({})),
      submitted_(prometheus::BuildCounter()
                     .Name("corun_jobs_submitted_total")
                     .Help("Jobs accepted by POST /jobs.")
                     .Register(registry_)
                     .Add({})) {
  auto& by_status = prometheus::BuildGauge()
                        .Name("corun_jobs")
                        .Help("Jobs the server remembers, by status.")
                        .Register(registry_);
  for (JobStatus status : all_statuses)
    jobs_.push_back(&by_status.Add({{"status", to_string(status)}}));
  for (std::size_t w = 0; w < workers; ++w)
    busy_.push_back(&busy_family_.Add({{"worker", std::to_string(w)}}));
}

void Stats::record(const Timing& timing) {
  tasks_done_.Increment();
  const auto slot = static_cast<std::size_t>(std::max(timing.worker_id, 0));
  while (busy_.size() <= slot)
    busy_.push_back(&busy_family_.Add({{"worker", std::to_string(busy_.size())}}));
  busy_[slot]->Increment(static_cast<double>(timing.busy_ns) * 1e-9);
}

void Stats::record_failed(std::size_t n) {
  tasks_failed_.Increment(static_cast<double>(n));
}

void Stats::record_submitted() {
  submitted_.Increment();
}

prometheus::Gauge& Stats::jobs(JobStatus status) {
  return *jobs_.at(static_cast<std::size_t>(status));
}

std::uint64_t Stats::tasks_done() const {
  return static_cast<std::uint64_t>(tasks_done_.Value());
}

std::uint64_t Stats::tasks_failed() const {
  return static_cast<std::uint64_t>(tasks_failed_.Value());
}

std::vector<double> Stats::busy_seconds() const {
  std::vector<double> seconds;
  for (const prometheus::Counter* c : busy_) seconds.push_back(c->Value());
  return seconds;
}

std::string Stats::text(std::size_t in_flight, std::size_t workers) {
  tasks_in_flight_.Set(static_cast<double>(in_flight));
  workers_.Set(static_cast<double>(workers));
  return prometheus::TextSerializer().Serialize(registry_.Collect());
}

Job::Job(std::uint64_t id, JobRequest request, corun::ProcessPool& pool, Stats& stats)
    : pool_(pool),
      stats_(stats),
      id_(id),
      request_(request),
      slices_(static_cast<std::size_t>(std::min(request.partitions, request.n))) {}

Job::~Job() = default;

bool Job::finished() const noexcept {
  return status_ == JobStatus::done || status_ == JobStatus::failed ||
         status_ == JobStatus::cancelled;
}

corun::OrchestratorOptions Job::pass_options() const {
  // A window of one pipeline per worker: enough to keep every worker busy, and short enough
  // that the pool's queue interleaves the slices of jobs of one priority running at the same
  // time. A request-sized job's slices go ahead of a batch job's (see priority()).
  return {.on_error = corun::ErrorPolicy::fail_fast,
          .max_tasks_active = pool_.size() * pool_.options().pipeline_depth,
          .record_tasks = false,
          .priority = priority()};
}

Progress Job::progress() const {
  Progress p{done_before_, failed_before_, 2 * slices_, 0};
  if (pass_running_ && orch_ && orch_->progress()) {
    const auto& run = *orch_->progress();
    const std::size_t done = run.done.load(), failed = run.failed.load();
    p.done += done;
    p.failed += failed;
    p.in_flight =
        std::min(pass_options().max_tasks_active, slices_ - std::min(slices_, done + failed));
  }
  return p;
}

void Job::note_fill(const Timing& timing) {
  stats_.record(timing);
}

void Job::note_result(const Timing& timing) {
  stats_.record(timing);
  last_result_ = ++stats_.results;
  if (first_result_ == 0) first_result_ = last_result_;
}

void Job::start(std::function<void()> on_finished) {
  stats_.jobs(status_).Increment();
  on_finished_ = std::move(on_finished);
  started_ = std::chrono::steady_clock::now();
  run_pass(0);
}

void Job::run_pass(std::size_t i) {
  pass_ = i;
  orch_ = make_pass(i);
  pass_running_ = true;
  // The handler holds the job: it, its array and its worker objects outlive the run.
  orch_->async_run(asio::bind_cancellation_slot(
      cancel_.slot(), [self = shared_from_this(), i](std::exception_ptr e, corun::RunReport r) {
        self->pass_done(i, std::move(e), std::move(r));
      }));
}

void Job::cancel(asio::cancellation_type type) {
  if (finished() || cancel_requested_) return;
  cancel_requested_ = true;
  set_status(JobStatus::cancelling);
  cancel_.emit(type);
}

void Job::pass_done(std::size_t i, std::exception_ptr error, corun::RunReport report) {
  pass_running_ = false;
  done_before_ += report.tasks_done;
  failed_before_ += report.tasks_failed;
  stats_.record_failed(report.tasks_failed);
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const corun::RunError& e) {
      for (const corun::TaskError& t : e.errors())
        errors_.push_back({{"kind", corun::to_string(t.kind)},
                           {"worker", t.worker},
                           {"slice", {t.slice.start, t.slice.end}},
                           {"pid", t.pid},
                           {"exception_type", t.exception_type},
                           {"message", t.message},
                           {"signal", t.signal},
                           {"exit_code", t.exit_code},
                           {"attempts", t.attempts},
                           {"description", t.describe()}});
      return finish(JobStatus::failed);
    } catch (const std::system_error& e) {
      if (e.code() == asio::error::operation_aborted) return finish(JobStatus::cancelled);
      errors_.push_back({{"kind", "run"}, {"message", e.what()}});
    } catch (const std::exception& e) {
      errors_.push_back({{"kind", "run"}, {"message", e.what()}});
    }
    return finish(JobStatus::failed);
  }
  // A cancellation that reached the run too late to stop it: do not start the next pass.
  if (cancel_requested_) return finish(JobStatus::cancelled);
  if (i == 0) return run_pass(1);
  result_ = take_result();
  finish(JobStatus::done);
}

void Job::set_status(JobStatus status) {
  stats_.jobs(status_).Decrement();
  status_ = status;
  stats_.jobs(status_).Increment();
}

void Job::finish(JobStatus status) {
  set_status(status);
  elapsed_ = std::chrono::steady_clock::now() - started_;
  // Free the array once the run that used it has fully unwound.
  asio::post(pool_.get_executor(), [self = shared_from_this()] { self->release(); });
  if (on_finished_) std::exchange(on_finished_, nullptr)();
  for (auto& f : std::exchange(waiters_, {})) f();
}

void Job::when_finished(std::function<void()> f) {
  if (finished())
    f();
  else
    waiters_.push_back(std::move(f));
}

nlohmann::json Job::to_json(bool full) const {
  const Progress p = progress();
  const auto elapsed = finished() ? elapsed_ : std::chrono::steady_clock::now() - started_;
  nlohmann::json j = {
      {"id", id_},
      {"kind", to_string(request_.kind)},
      {"n", request_.n},
      {"partitions", request_.partitions},
      {"priority", priority()},
      {"status", to_string(status_)},
      {"phase", pass_ == 0 ? "fill" : "compute"},
      {"progress", {{"done", p.done}, {"failed", p.failed}, {"total", p.total}}},
      {"percent", p.total == 0 ? 0 : p.done * 100 / p.total},
      {"seconds", std::chrono::duration<double>(elapsed).count()},
  };
  if (status_ == JobStatus::done) {
    if (result_.is_string() && !full) {
      const auto& s = result_.get_ref<const std::string&>();
      j["result_length"] = s.size();
      j["result_preview"] = s.size() <= 60 ? s : s.substr(0, 60) + "...";
    } else {
      j["result"] = result_;
      if (result_.is_string()) j["result_length"] = result_.get_ref<const std::string&>().size();
    }
  }
  if (!errors_.empty()) j["errors"] = errors_;
  return j;
}

namespace {

/// sum, primes and fail: an int64 array 1..n, filled by FillInts, then Compute.
template <class Compute>
class IntJob final : public Job {
 public:
  IntJob(std::uint64_t id, JobRequest request, corun::ProcessPool& pool, Stats& stats)
      : Job(id, request, pool, stats),
        ints_(corun::SharedArray<std::int64_t>::create({request.n})),
        fill_(corun::DataIterator::partitioned(*ints_, request.partitions), ints_->info()),
        compute_(corun::DataIterator::partitioned(*ints_, request.partitions)) {
    fill_.job = this;
    compute_.job = this;
  }

 protected:
  std::unique_ptr<corun::WorkerOrchestrator> make_pass(std::size_t i) override {
    if (i == 0)
      return std::make_unique<corun::WorkerOrchestrator>(
          pool_, std::vector<corun::WorkerRef>{&fill_}, pass_options());
    return std::make_unique<corun::WorkerOrchestrator>(
        pool_, std::vector<corun::WorkerRef>{&compute_}, pass_options());
  }
  nlohmann::json take_result() override { return compute_.total; }
  void release() override { ints_.reset(); }

 private:
  std::optional<corun::SharedArray<std::int64_t>> ints_;
  FillInts fill_;
  Compute compute_;
};

/// concat: a string array foo_0..foo_{n-1}, filled by FillStrings, then ConcatStrings.
class ConcatJob final : public Job {
 public:
  ConcatJob(std::uint64_t id, JobRequest request, corun::ProcessPool& pool, Stats& stats)
      : Job(id, request, pool, stats),
        strings_(corun::SharedArray<StringRow>::create({request.n})),
        fill_(corun::DataIterator::partitioned(*strings_, request.partitions), strings_->info()),
        concat_(corun::DataIterator::partitioned(*strings_, request.partitions)) {
    fill_.job = this;
    concat_.job = this;
  }

 protected:
  std::unique_ptr<corun::WorkerOrchestrator> make_pass(std::size_t i) override {
    if (i == 0)
      return std::make_unique<corun::WorkerOrchestrator>(
          pool_, std::vector<corun::WorkerRef>{&fill_}, pass_options());
    return std::make_unique<corun::WorkerOrchestrator>(
        pool_, std::vector<corun::WorkerRef>{&concat_}, pass_options());
  }
  nlohmann::json take_result() override {
    std::string joined;
    for (const auto& [start, text] : concat_.pieces) joined += text;
    concat_.pieces.clear();
    return joined;
  }
  void release() override { strings_.reset(); }

 private:
  std::optional<corun::SharedArray<StringRow>> strings_;
  FillStrings fill_;
  ConcatStrings concat_;
};

std::shared_ptr<Job> make_job(std::uint64_t id, const JobRequest& request, corun::ProcessPool& pool,
                              Stats& stats) {
  switch (request.kind) {
    case Kind::sum:
      return std::make_shared<IntJob<SumInts>>(id, request, pool, stats);
    case Kind::primes:
      return std::make_shared<IntJob<CountPrimes>>(id, request, pool, stats);
    case Kind::fail:
      return std::make_shared<IntJob<SumOrFail>>(id, request, pool, stats);
    case Kind::concat:
      return std::make_shared<ConcatJob>(id, request, pool, stats);
  }
  throw std::invalid_argument("unknown job kind");
}

}  // namespace

// ---- the table ----------------------------------------------------------------------------

JobTable::JobTable(corun::ProcessPool& pool, Limits limits)
    : pool_(pool), limits_(limits), stats_(pool.size()) {}

std::size_t JobTable::running() const {
  return static_cast<std::size_t>(std::count_if(
      jobs_.begin(), jobs_.end(), [](const auto& kv) { return !kv.second->finished(); }));
}

std::shared_ptr<Job> JobTable::submit(const JobRequest& request, std::string& refusal) {
  if (stopping_) {
    refusal = "the server is shutting down";
    return nullptr;
  }
  if (running() >= limits_.max_running_jobs) {
    refusal = "too many jobs running: the limit is " + std::to_string(limits_.max_running_jobs);
    return nullptr;
  }
  auto job = make_job(next_id_, request, pool_, stats_);
  jobs_.emplace(next_id_++, job);
  stats_.record_submitted();
  job->start([this] { job_finished(); });
  return job;
}

std::shared_ptr<Job> JobTable::find(std::uint64_t id) const {
  const auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : it->second;
}

void JobTable::job_finished() {
  // Forget the oldest finished jobs beyond the limit.
  std::size_t finished = jobs_.size() - running();
  for (auto it = jobs_.begin(); it != jobs_.end() && finished > limits_.max_kept_jobs;) {
    if (it->second->finished()) {
      stats_.jobs(it->second->status()).Decrement();
      it = jobs_.erase(it);
      --finished;
    } else {
      ++it;
    }
  }
  if (stopping_ && on_idle_ && running() == 0)
    asio::post(pool_.get_executor(), std::exchange(on_idle_, nullptr));
}

void JobTable::stop(asio::cancellation_type type, std::function<void()> then) {
  stopping_ = true;
  on_idle_ = std::move(then);
  for (const auto& [id, job] : jobs_) job->cancel(type);
  if (running() == 0 && on_idle_)
    asio::post(pool_.get_executor(), std::exchange(on_idle_, nullptr));
}

nlohmann::json JobTable::to_json() const {
  nlohmann::json list = nlohmann::json::array();
  for (auto it = jobs_.rbegin(); it != jobs_.rend(); ++it)
    list.push_back(it->second->to_json(false));
  return {{"jobs", std::move(list)}};
}

std::string JobTable::metrics() {
  // In flight: each running pass keeps min(its window, its slices left) at the pool. The
  // orchestrator does not say when it submits a slice, so this gauge is read from the passes.
  std::size_t in_flight = 0;
  for (const auto& [id, job] : jobs_)
    if (!job->finished()) in_flight += job->progress().in_flight;
  return stats_.text(in_flight, pool_.worker_pids().size());
}

}  // namespace corun_server
