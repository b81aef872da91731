// The dispatcher's decisions, driven as plain data: which worker gets which task, how deep
// each worker's queue may grow, and where retried tasks go.
#define CATCH_CONFIG_MAIN
#include "pool/dispatcher.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
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

namespace {
/// The tasks next() hands one worker of depth 1, each finished before the next is taken.
std::vector<std::uint64_t> order_of(Dispatcher& d) {
  std::vector<std::uint64_t> order;
  while (auto a = d.next()) {
    order.push_back(a->task);
    d.finished(a->worker, 1us);
  }
  return order;
}
}  // namespace

TEST_CASE("the highest priority goes first, first come first served within a priority",
          "[dispatcher][priority]") {
  Dispatcher d(1, {.min = 1, .max = 1});
  d.set_accepting(0, true);
  d.enqueue(1);
  d.enqueue(2, 0);
  d.enqueue(3, 5);
  d.enqueue(4, 1);
  d.enqueue(5, 5);
  d.enqueue(6, -3);
  d.requeue(7, 1);  // a retry goes first within its priority, not before higher ones
  CHECK(d.waiting() == 7);
  CHECK(order_of(d) == std::vector<std::uint64_t>{3, 5, 7, 4, 1, 2, 6});
  CHECK(d.waiting() == 0);
}

TEST_CASE("a waiting priority gets the next dispatch once max_bypass others passed it",
          "[dispatcher][priority]") {
  Dispatcher d(1, {.min = 1, .max = 1, .max_bypass = 3});
  d.set_accepting(0, true);
  d.enqueue(100);
  d.enqueue(101);
  for (std::uint64_t t = 1; t <= 10; ++t) d.enqueue(t, 1);
  // 100 waits while 1, 2, 3 pass it, then gets the fourth dispatch; 101 likewise after 4, 5, 6.
  CHECK(order_of(d) == std::vector<std::uint64_t>{1, 2, 3, 100, 4, 5, 6, 101, 7, 8, 9, 10});
}

TEST_CASE("with three priorities the one passed over most is due first, the higher on a tie",
          "[dispatcher][priority]") {
  Dispatcher d(1, {.min = 1, .max = 1, .max_bypass = 2});
  d.set_accepting(0, true);
  for (std::uint64_t t = 1; t <= 6; ++t) d.enqueue(t, 2);  // a1..a6 = 1..6
  d.enqueue(21, 1);                                        // b1, b2
  d.enqueue(22, 1);
  d.enqueue(31, 0);  // c1
  // After 1, 2 both lower priorities are due (2 bypasses each): 21 first (higher), then 31
  // (passed 3 times, more than priority 2's 1); 22 again after two more dispatches.
  CHECK(order_of(d) == std::vector<std::uint64_t>{1, 2, 21, 31, 3, 22, 4, 5, 6});
}

TEST_CASE("a priority that empties forgets how often it was passed", "[dispatcher][priority]") {
  Dispatcher d(1, {.min = 1, .max = 1, .max_bypass = 2});
  d.set_accepting(0, true);
  d.enqueue(100);
  d.enqueue(1, 1);
  CHECK(order_of(d) == std::vector<std::uint64_t>{1, 100});  // passed once, then alone
  d.enqueue(101);
  for (std::uint64_t t = 2; t <= 4; ++t) d.enqueue(t, 1);
  // 101 starts from 0 bypasses: two of priority 1 pass it, not one.
  CHECK(order_of(d) == std::vector<std::uint64_t>{2, 3, 101, 4});
  // A cancelled low task leaves its priority empty, and its count goes with it.
  d.enqueue(102);
  d.enqueue(5, 1);
  CHECK(d.next()->task == 5);
  d.finished(0, 1us);
  CHECK(d.remove(102));
  d.enqueue(103);
  for (std::uint64_t t = 6; t <= 7; ++t) d.enqueue(t, 1);
  CHECK(order_of(d) == std::vector<std::uint64_t>{6, 7, 103});
}

TEST_CASE("tasks of many priorities are all dispatched, each exactly once",
          "[dispatcher][priority]") {
  Dispatcher d(2, {.min = 1, .max = 1, .max_bypass = 4});
  d.set_accepting(0, true);
  d.set_accepting(1, true);
  std::uint64_t id = 1;
  for (int p = 0; p < 40; ++p)  // more priorities than levels are kept empty
    for (int i = 0; i < 3; ++i) d.enqueue(id++, p % 2 == 0 ? p : -p);
  CHECK(d.remove(7));
  CHECK(d.waiting() == 119);
  std::vector<std::uint64_t> seen;
  while (auto a = d.next()) {
    seen.push_back(a->task);
    d.finished(a->worker, 1us);
  }
  std::sort(seen.begin(), seen.end());
  CHECK(seen.size() == 119);
  CHECK(std::adjacent_find(seen.begin(), seen.end()) == seen.end());
  CHECK(std::find(seen.begin(), seen.end(), 7) == seen.end());
}

TEST_CASE("max_bypass 0 is rejected by name", "[dispatcher][priority]") {
  CHECK_THROWS_WITH(Dispatcher(1, {.min = 1, .max = 1, .max_bypass = 0}),
                    "corun::Dispatcher: max_bypass = 0: must be at least 1");
}
