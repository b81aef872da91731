#include <corun/worker.hpp>

#include "drive.hpp"
#include "workers.hpp"

#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <type_traits>

using namespace corun;
using corun::test::iota_array;

TEST_CASE("the result type of process is deduced with or without TaskContext", "[worker]") {
  STATIC_REQUIRE(std::is_same_v<detail::worker_result_t<test::AddInts>, std::int64_t>);
  STATIC_REQUIRE(std::is_same_v<detail::worker_result_t<test::ConcatStr>, test::Piece>);
  STATIC_REQUIRE(std::is_same_v<detail::worker_result_t<test::Square>, void>);
  STATIC_REQUIRE(std::is_same_v<detail::worker_result_t<test::Blob>, std::vector<char>>);
}

TEST_CASE("registered workers are found by their stable name", "[worker]") {
  CHECK(std::string(detail::require_registered(typeid(test::AddInts))) == "corun::test::AddInts");
  CHECK(detail::find_invoker("corun::test::AddInts") != nullptr);
  CHECK(detail::find_invoker("NoSuchWorker") == nullptr);
  CHECK(detail::registered_name(typeid(int)) == nullptr);
}

TEST_CASE("a worker checks the element type of its array when constructed", "[worker][failure]") {
  auto doubles = SharedArray<double>::create({8});
  try {
    test::AddInts add{DataIterator::over(doubles, 4)};
    FAIL("expected dtype_mismatch");
  } catch (const Error& e) {
    CHECK(e.code() == errc::dtype_mismatch);
    CHECK_THAT(e.what(), Catch::Contains("<f8") && Catch::Contains("<i8"));
  }
}

TEST_CASE("process can be unit-tested in process with a serial pool", "[worker]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.start_method = StartMethod::serial}};
  CHECK(pool.size() == 1);
  CHECK(pool.worker_pids().empty());
  auto in = iota_array(6);
  auto out = SharedArray<std::int64_t>::create({6});
  test::Square square{DataIterator::over(in, 4), out.info()};
  auto first = pool.async_execute(square, Slice{0, 4}, asio::use_future);
  test::drive(io, first);
  auto second = pool.async_execute(square, Slice{4, 6}, asio::use_future);
  test::drive(io, second);
  CHECK(std::vector<std::int64_t>(out.begin(), out.end()) ==
        std::vector<std::int64_t>{1, 4, 9, 16, 25, 36});
}

TEST_CASE("TaskContext::output without an output array is a logic error naming the fix",
          "[worker][failure]") {
  asio::io_context io;
  ProcessPool pool{io.get_executor(), {.start_method = StartMethod::serial}};
  auto in = iota_array(4);
  test::Square square{DataIterator::over(in, 4)};  // no output array
  auto future = pool.async_execute(square, Slice{0, 4}, asio::use_future);
  try {
    test::drive(io, future);
    FAIL("expected TaskFailed");
  } catch (const TaskFailed& e) {
    CHECK(e.error().exception_type == "std::logic_error");
    CHECK_THAT(e.error().message, Catch::Contains("constructed without an output array"));
  }
}
