/// \file
/// The frames ranks exchange that carry more than a few fields: a task spec in global terms (what
/// a rank needs to translate it to its own segments) and a task's result.
#include "cluster_state.hpp"

#include "wire.hpp"

#include <corun/error.hpp>

#include <cstdint>
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
  if (kind > static_cast<std::uint8_t>(TaskErrorKind::protocol))
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

std::string encode_global_spec(const TaskSpec& spec) {
  std::string out;
  ByteWriter w(out);
  w.str(spec.worker_name);
  w.put<std::uint8_t>(spec.reads_array);
  if (spec.reads_array) w.str(spec.iterator.encode());
  w.put<std::uint8_t>(spec.output.has_value());
  if (spec.output) w.str(DataIterator::over(*spec.output, 1).encode());
  w.str(spec.params);
  return out;
}

GlobalSpec decode_global_spec(std::string_view bytes) {
  ByteReader r(bytes, "corun cluster spec");
  GlobalSpec g;
  g.worker = std::string(r.str("worker", 1024));
  const auto reads_array = r.get<std::uint8_t>("reads_array");
  if (reads_array > 1) r.fail("reads_array", std::to_string(reads_array));
  g.reads_array = reads_array != 0;
  if (g.reads_array) g.iterator = DataIterator::decode(r.str("iterator", 1u << 16));
  const auto has_output = r.get<std::uint8_t>("has_output");
  if (has_output > 1) r.fail("has_output", std::to_string(has_output));
  if (has_output) g.output = DataIterator::decode(r.str("output", 1u << 16)).info();
  g.params = std::string(r.str("params", std::size_t{64} << 20));
  r.expect_end();
  return g;
}

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
  if (outcome > static_cast<std::uint8_t>(TaskOutcome::cancelled))
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

}  // namespace corun::detail
