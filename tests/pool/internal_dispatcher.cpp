// The dispatcher's decisions, driven as plain data: which worker gets which task, how deep
// each worker's queue may grow, and where retried tasks go.
#define CATCH_CONFIG_MAIN
#include "pool/dispatcher.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <stdexcept>
#include <utility>
#include <vector>

using corun::detail::Dispatcher;
using namespace std::chrono_literals;

namespace {
/// Every assignment next() makes until it makes none, as (task, worker) pairs.
std::vector<std::pair<std::uint64_t, std::size_t>> drain(Dispatcher& d) {
  std::vector<std::pair<std::uint64_t, std::size_t>> out;
  while (auto a = d.next()) out.emplace_back(a->task, a->worker);
  return out;
}
}  // namespace

TEST_CASE("tasks go to the least loaded accepting worker, the lowest index on ties",
          "[dispatcher]") {
  Dispatcher d(3, {.min = 2, .max = 2});
  for (std::uint64_t t = 1; t <= 7; ++t) d.enqueue(t);
  CHECK(drain(d).empty());  // no worker accepts yet
  d.set_accepting(0, true);
  d.set_accepting(2, true);
  using P = std::pair<std::uint64_t, std::size_t>;
  CHECK(drain(d) == std::vector<P>{{1, 0}, {2, 2}, {3, 0}, {4, 2}});
  CHECK(d.waiting() == 3);
  CHECK(d.at_worker(0) == 2);
  CHECK(d.at_worker(1) == 0);
  d.set_accepting(1, true);
  CHECK(drain(d) == std::vector<P>{{5, 1}, {6, 1}});
  d.finished(2, 1ms);
  CHECK(drain(d) == std::vector<P>{{7, 2}});
  CHECK(d.waiting() == 0);
}

TEST_CASE("short tasks deepen a worker's queue up to max, long ones keep it at min",
          "[dispatcher]") {
  Dispatcher d(2, {.min = 2, .max = 32, .queued_work = 250us});
  CHECK(d.depth(0) == 2);  // no history yet
  d.set_accepting(0, true);
  d.set_accepting(1, true);
  for (int i = 0; i < 50; ++i) d.finished(0, 10us);  // 250 us / 10 us = 25
  CHECK(d.depth(0) == 25);
  for (int i = 0; i < 50; ++i) d.finished(0, 0us);  // floor of 1 us: 250, clamped
  CHECK(d.depth(0) == 32);
  for (int i = 0; i < 50; ++i) d.finished(1, 5ms);
  CHECK(d.depth(1) == 2);
  for (std::uint64_t t = 1; t <= 40; ++t) d.enqueue(t);
  drain(d);
  CHECK(d.at_worker(0) == 32);
  CHECK(d.at_worker(1) == 2);
  CHECK(d.waiting() == 6);
}

TEST_CASE("the moving average follows recent task times", "[dispatcher]") {
  Dispatcher d(1, {.min = 1, .max = 1000, .queued_work = 1ms});
  d.finished(0, 100us);
  CHECK(d.depth(0) == 10);
  d.finished(0, 900us);  // (100 * 7 + 900) / 8 = 200 us
  CHECK(d.depth(0) == 5);
}

TEST_CASE("a retried task goes first; tasks behind a lost one keep their order", "[dispatcher]") {
  Dispatcher d(1, {.min = 1, .max = 1});
  d.set_accepting(0, true);
  d.enqueue(1);
  d.enqueue(2);
  d.enqueue(3);
  CHECK(d.next()->task == 1);
  // Task 1 failed and is retried: it runs before 2 and 3.
  d.finished(0, 1us);
  d.requeue(1);
  CHECK(d.next()->task == 1);
  // The worker died with 1 running: it is replaced, 1 goes back first.
  d.reset(0);
  CHECK_FALSE(d.next().has_value());  // the new worker is not ready yet
  d.requeue(1);
  d.set_accepting(0, true);
  std::vector<std::uint64_t> order;
  while (auto a = d.next()) {
    order.push_back(a->task);
    d.finished(0, 1us);
  }
  CHECK(order == std::vector<std::uint64_t>{1, 2, 3});
}

TEST_CASE("a cancelled task leaves the queue; unknown ones are reported", "[dispatcher]") {
  Dispatcher d(1, {.min = 4, .max = 4});
  for (std::uint64_t t = 1; t <= 3; ++t) d.enqueue(t);
  CHECK(d.remove(2));
  CHECK_FALSE(d.remove(2));
  CHECK_FALSE(d.remove(99));
  d.set_accepting(0, true);
  using P = std::pair<std::uint64_t, std::size_t>;
  CHECK(drain(d) == std::vector<P>{{1, 0}, {3, 0}});
  d.enqueue(4);
  d.clear_waiting();
  CHECK(d.waiting() == 0);
  CHECK_FALSE(d.next().has_value());
}

TEST_CASE("a worker that stops accepting gets no more tasks", "[dispatcher]") {
  Dispatcher d(2, {.min = 8, .max = 8});
  d.set_accepting(0, true);
  d.set_accepting(1, true);
  d.set_accepting(0, false);
  for (std::uint64_t t = 1; t <= 3; ++t) d.enqueue(t);
  for (const auto& [task, worker] : drain(d)) CHECK(worker == 1);
  CHECK(d.at_worker(1) == 3);
}

TEST_CASE("an empty depth range is rejected by its numbers", "[dispatcher]") {
  CHECK_THROWS_WITH(Dispatcher(1, {.min = 0, .max = 4}),
                    "corun::Dispatcher: depth [0, 4] is empty");
  CHECK_THROWS_WITH(Dispatcher(1, {.min = 5, .max = 4}),
                    "corun::Dispatcher: depth [5, 4] is empty");
}
