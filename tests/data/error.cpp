// Error codes, their category, and the exceptions that carry task failures.
#include <corun/error.hpp>

#include <catch2/catch.hpp>

#include <set>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

using corun::errc;

TEST_CASE("errc values convert to std::error_code", "[error]") {
  STATIC_REQUIRE(std::is_error_code_enum_v<errc>);
  std::error_code ec = corun::errc::task_timeout;
  CHECK(ec.value() == static_cast<int>(errc::task_timeout));
  CHECK(ec.category() == corun::error_category());
  CHECK(std::string(ec.category().name()) == "corun");
  CHECK(ec.message() == "task timed out");
  CHECK(ec == errc::task_timeout);
  CHECK(ec != errc::worker_crashed);
  CHECK(static_cast<bool>(ec));
  CHECK(corun::make_error_code(errc::segment_not_found).message() ==
        "shared-memory segment not found");
  // Not to be confused with the generic category's codes of the same value.
  CHECK(ec != std::error_code(ec.value(), std::generic_category()));
}

TEST_CASE("every errc value has its own message", "[error]") {
  const errc all[] = {
      errc::segment_not_found, errc::segment_too_small, errc::not_enough_shared_memory,
      errc::segment_exists,    errc::dtype_mismatch,    errc::worker_not_registered,
      errc::protocol_error,    errc::result_too_large,  errc::task_exception,
      errc::worker_crashed,    errc::task_timeout,      errc::worker_start_failed,
      errc::pool_closed,       errc::permission_denied, errc::no_cpu_samples,
      errc::memory_exceeded,   errc::rank_lost,
  };
  std::set<std::string> messages;
  for (errc e : all) {
    const std::error_code ec = e;
    INFO("value " << ec.value());
    CHECK(ec.value() != 0);
    CHECK_FALSE(ec.message().empty());
    CHECK(ec.message().find("unknown") == std::string::npos);
    messages.insert(ec.message());
  }
  CHECK(messages.size() == std::size(all));
  CHECK(static_cast<int>(errc::segment_not_found) == 1);
  CHECK(corun::error_category().message(999) == "unknown corun error 999");
}

TEST_CASE("corun::Error carries its code and message", "[error]") {
  const corun::Error e(errc::segment_exists, "segment 'x' exists");
  CHECK(e.code() == errc::segment_exists);
  CHECK_THAT(e.what(), Catch::Contains("segment 'x' exists"));
  const std::system_error& base = e;
  CHECK(base.code().category() == corun::error_category());
  try {
    throw corun::Error(errc::dtype_mismatch, "bad type");
  } catch (const std::system_error& caught) {
    CHECK(caught.code() == errc::dtype_mismatch);
  }
}

namespace {
corun::TaskError sample_error() {
  corun::TaskError e;
  e.kind = corun::TaskErrorKind::exception;
  e.worker = "AddInts";
  e.slice = {4, 8};
  e.pid = 4242;
  e.exception_type = "std::runtime_error";
  e.message = "boom";
  return e;
}
}  // namespace

TEST_CASE("TaskError::describe names the kind, worker, slice and cause", "[error]") {
  corun::TaskError e = sample_error();
  CHECK(e.describe() ==
        "exception in worker AddInts slice [4, 8) (pid 4242): std::runtime_error: boom");
  e.attempts = 3;
  CHECK_THAT(e.describe(), Catch::EndsWith("boom (after 3 attempts)"));

  corun::TaskError crash;
  crash.kind = corun::TaskErrorKind::crashed;
  crash.worker = "Crasher";
  crash.slice = {0, 1};
  crash.signal = 11;
  crash.message = "killed by signal 11";
  CHECK(crash.describe() == "crashed in worker Crasher slice [0, 1): killed by signal 11");

  CHECK(std::string(corun::to_string(corun::TaskErrorKind::exception)) == "exception");
  CHECK(std::string(corun::to_string(corun::TaskErrorKind::crashed)) == "crashed");
  CHECK(std::string(corun::to_string(corun::TaskErrorKind::timeout)) == "timeout");
  CHECK(std::string(corun::to_string(corun::TaskErrorKind::protocol)) == "protocol");
}

TEST_CASE("TaskFailed carries the task error and a matching code", "[error]") {
  const corun::TaskFailed failed(sample_error());
  CHECK(failed.code() == errc::task_exception);
  CHECK(failed.error().worker == "AddInts");
  CHECK(failed.error().slice == corun::Slice{4, 8});
  CHECK_THAT(failed.what(),
             Catch::Contains("AddInts") && Catch::Contains("[4, 8)") && Catch::Contains("boom"));
  corun::TaskError e = sample_error();
  e.kind = corun::TaskErrorKind::crashed;
  CHECK(corun::TaskFailed(e).code() == errc::worker_crashed);
  e.kind = corun::TaskErrorKind::timeout;
  CHECK(corun::TaskFailed(e).code() == errc::task_timeout);
  e.kind = corun::TaskErrorKind::protocol;
  CHECK(corun::TaskFailed(e).code() == errc::protocol_error);
  const corun::Error& as_error = failed;
  CHECK(as_error.code() == errc::task_exception);
}

TEST_CASE("RunError carries its errors and says how many failed", "[error]") {
  corun::TaskError second = sample_error();
  second.slice = {8, 12};
  second.message = "bang";
  const corun::RunError run({sample_error(), second});
  REQUIRE(run.errors().size() == 2);
  CHECK(run.errors()[0].message == "boom");
  CHECK(run.errors()[1].slice == corun::Slice{8, 12});
  CHECK_THAT(run.what(), Catch::StartsWith("2 task(s) failed") && Catch::Contains("boom"));
  const std::runtime_error& base = run;
  CHECK_THAT(base.what(), Catch::Contains("2 task(s) failed"));
  const corun::RunError none({});
  CHECK(none.errors().empty());
  CHECK(std::string(none.what()) == "0 task(s) failed");
}
