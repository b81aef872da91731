/// \file
/// The `result` frame a rank sends rank 0: how a task ended, its record (times as offsets, since
/// two nodes' clocks are not comparable), its error and its payload. (A `spec` frame is the
/// spec's own encoding, lib/seam/spec_codec.cpp.)
/// Side: every rank.
#include "cluster/cluster_state.hpp"

#include "base/wire.hpp"

#include <corun/error.hpp>

#include <corun/retry.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

namespace corun::detail {

namespace {
using Clock = std::chrono::steady_clock;

std::int64_t ns_since(Clock::time_point t, Clock::time_point origin) {
  if (t == Clock::time_point{}) return INT64_MIN;
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t - origin).count();
}
Clock::time_point after(Clock::time_point origin, std::int64_t ns) {
  if (ns == INT64_MIN) return {};
  return origin + std::chrono::nanoseconds(ns);
}

void put_error(ByteWriter& w, const TaskError& e) {
  w.put(static_cast<std::uint8_t>(e.kind));
  w.put(static_cast<std::int32_t>(e.pid));
  w.str(e.exception_type);
  w.str(e.message);
  w.put(static_cast<std::int32_t>(e.signal));
  w.put(static_cast<std::int32_t>(e.exit_code));
  w.put(static_cast<std::int32_t>(e.attempts));
}

TaskError get_error(ByteReader& r) {
  TaskError e;
  const auto kind = r.get<std::uint8_t>("error.kind");
  if (kind > static_cast<std::uint8_t>(TaskErrorKind::memory_exceeded))
    r.fail("error.kind", std::to_string(kind));
  e.kind = static_cast<TaskErrorKind>(kind);
  e.pid = r.get<std::int32_t>("error.pid");
  e.exception_type = std::string(r.str("error.exception_type", 1u << 16));
  e.message = std::string(r.str("error.message", 1u << 24));
  e.signal = r.get<std::int32_t>("error.signal");
  e.exit_code = r.get<std::int32_t>("error.exit_code");
  e.attempts = r.get<std::int32_t>("error.attempts");
  return e;
}
}  // namespace

// ---- frames ----

std::string encode_result(std::uint64_t id, const TaskResult& result) {
  std::string out;
  ByteWriter w(out);
  w.put(id);
  const TaskRecord& t = result.record;
  ResultStatus status = ResultStatus::ok;
  std::string error_message;
  std::int32_t error_code = static_cast<std::int32_t>(errc::pool_closed);
  if (result.error) {
    if (result.task_error) {
      status = ResultStatus::task_error;
    } else if (is_aborted(result.error)) {
      status = ResultStatus::aborted;
    } else {
      status = ResultStatus::error;
      try {
        std::rethrow_exception(result.error);
      } catch (const Error& e) {
        error_code = e.code().value();
        error_message = e.what();
      } catch (const std::exception& e) {
        error_message = e.what();
      } catch (...) {
        error_message = "unknown exception";
      }
    }
  }
  w.put(static_cast<std::uint8_t>(status));
  w.put(static_cast<std::int32_t>(t.worker_id));
  w.put(static_cast<std::int32_t>(t.pid));
  w.put(static_cast<std::int32_t>(t.cpu_start));
  w.put(static_cast<std::int32_t>(t.cpu_end));
  w.put(ns_since(t.started, t.submitted));
  w.put(ns_since(t.finished, t.submitted));
  w.put(static_cast<std::int64_t>(t.cpu_time.count()));
  w.put(static_cast<std::uint8_t>(t.outcome));
  w.put(static_cast<std::int32_t>(t.attempts));
  if (status == ResultStatus::task_error) put_error(w, *result.task_error);
  if (status == ResultStatus::error) {
    w.put(error_code);
    w.str(error_message);
  }
  w.str(status == ResultStatus::ok ? std::string_view(result.payload) : std::string_view());
  return out;
}

TaskResult decode_result(std::string_view bytes, std::uint64_t& id, int rank,
                         const std::string& worker, Slice slice, Clock::time_point submitted) {
  ByteReader r(bytes, "corun cluster result");
  id = r.get<std::uint64_t>("id");
  const auto status = r.get<std::uint8_t>("status");
  if (status > static_cast<std::uint8_t>(ResultStatus::error))
    r.fail("status", std::to_string(status));
  TaskResult out;
  TaskRecord& t = out.record;
  t.worker = worker;
  t.slice = slice;
  t.rank = rank;
  t.submitted = submitted;
  t.worker_id = r.get<std::int32_t>("worker_id");
  t.pid = r.get<std::int32_t>("pid");
  t.cpu_start = r.get<std::int32_t>("cpu_start");
  t.cpu_end = r.get<std::int32_t>("cpu_end");
  t.started = after(submitted, r.get<std::int64_t>("started"));
  t.finished = after(submitted, r.get<std::int64_t>("finished"));
  t.cpu_time = std::chrono::nanoseconds(r.get<std::int64_t>("cpu_time"));
  const auto outcome = r.get<std::uint8_t>("outcome");
  if (outcome > static_cast<std::uint8_t>(TaskOutcome::memory_exceeded))
    r.fail("outcome", std::to_string(outcome));
  t.outcome = static_cast<TaskOutcome>(outcome);
  t.attempts = r.get<std::int32_t>("attempts");
  switch (static_cast<ResultStatus>(status)) {
    case ResultStatus::ok:
      break;
    case ResultStatus::task_error: {
      TaskError e = get_error(r);
      e.worker = worker;
      e.slice = slice;
      e.rank = rank;
      out.error = std::make_exception_ptr(TaskFailed(e));
      out.task_error = std::move(e);
      break;
    }
    case ResultStatus::aborted:
      out.error = aborted_error();
      break;
    case ResultStatus::error: {
      const auto code = r.get<std::int32_t>("error.code");
      const std::string message(r.str("error.message", 1u << 24));
      out.error = std::make_exception_ptr(
          Error(static_cast<errc>(code), "corun: rank " + std::to_string(rank) + ": " + message));
      break;
    }
  }
  out.payload = std::string(r.str("payload", std::size_t{1} << 31));
  r.expect_end();
  return out;
}

void globalize(TaskResult& result, int rank, Slice slice) {
  result.record.rank = rank;
  result.record.slice = slice;
  if (result.task_error) {
    result.task_error->rank = rank;
    result.task_error->slice = slice;
    result.error = std::make_exception_ptr(TaskFailed(*result.task_error));
  }
}

void put_task_options(std::string& frame, const TaskOptions& options) {
  ByteWriter w(frame);
  w.put<std::int32_t>(options.priority);
  w.put<std::int64_t>(options.delay.count());
  w.put<std::uint8_t>(options.retry ? 1 : 0);
  if (!options.retry) return;
  const RetryPolicy& p = *options.retry;
  w.put<std::int32_t>(p.attempts);
  w.put<std::int64_t>(p.backoff.initial.count());
  w.put<double>(p.backoff.factor);
  w.put<std::int64_t>(p.backoff.max.count());
  w.put<std::uint32_t>(static_cast<std::uint32_t>(p.retry_on.kinds.size()));
  for (const TaskErrorKind kind : p.retry_on.kinds) w.put(static_cast<std::uint8_t>(kind));
  w.put<std::uint32_t>(static_cast<std::uint32_t>(p.retry_on.exception_types.size()));
  for (const std::string& type : p.retry_on.exception_types) w.str(type);
}

TaskOptions get_task_options(ByteReader& r) {
  TaskOptions options;
  options.priority = r.get<std::int32_t>("priority");
  options.delay = std::chrono::milliseconds(r.get<std::int64_t>("delay"));
  if (r.get<std::uint8_t>("has retry") == 0) return options;
  RetryPolicy p;
  p.attempts = r.get<std::int32_t>("attempts");
  p.backoff.initial = std::chrono::milliseconds(r.get<std::int64_t>("backoff initial"));
  p.backoff.factor = r.get<double>("backoff factor");
  p.backoff.max = std::chrono::milliseconds(r.get<std::int64_t>("backoff max"));
  const auto kinds = r.get<std::uint32_t>("kinds");
  if (kinds > 16) r.fail("kinds", std::to_string(kinds) + " kinds");
  p.retry_on.kinds.clear();
  for (std::uint32_t i = 0; i < kinds; ++i)
    p.retry_on.kinds.push_back(static_cast<TaskErrorKind>(r.get<std::uint8_t>("kind")));
  const auto types = r.get<std::uint32_t>("exception types");
  if (types > r.remaining()) r.fail("exception types", std::to_string(types) + " types");
  for (std::uint32_t i = 0; i < types; ++i)
    p.retry_on.exception_types.emplace_back(r.str("exception type", 4096));
  try {
    p.validate();  // rank 0 validated it; a mangled frame must not make a nonsense policy
  } catch (const std::invalid_argument& e) {
    r.fail("retry", e.what());
  }
  options.retry = std::make_shared<const RetryPolicy>(std::move(p));
  return options;
}

}  // namespace corun::detail
