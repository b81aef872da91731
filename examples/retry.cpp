// Shows RetryPolicy: a flaky service (here, a file that counts calls) fails the first two calls
// of every slice with a Transient exception, so each slice runs three times, 100 ms and then
// 200 ms apart; a std::logic_error is a bug, not bad luck, and is not retried. Exits 1 unless
// the sum is exact and every slice ran exactly three times.
#include <corun/corun.hpp>

#include <asio/io_context.hpp>
#include <asio/use_future.hpp>

#include <fcntl.h>
#include <unistd.h>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>
#include <xtensor/xmath.hpp>

namespace app {
struct Transient : std::runtime_error {  // worth another try
  using std::runtime_error::runtime_error;
};
}  // namespace app

/// Calls so far for `slice_start` (its runs are in different worker processes: a file counts).
int count_call(const std::string& dir, std::size_t slice_start) {
  const std::string path = dir + "/" + std::to_string(slice_start);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (fd < 0 || ::write(fd, "x", 1) != 1) throw std::logic_error("cannot write " + path);
  ::close(fd);
  return static_cast<int>(std::filesystem::file_size(path));
}

struct FlakySum : corun::Worker<FlakySum, std::int64_t, std::string> {
  using Worker::Worker;
  static std::int64_t process(corun::SliceView<const std::int64_t> slice, const std::string& dir,
                              const corun::TaskContext& ctx) {
    if (count_call(dir, ctx.slice.start) < 3) throw app::Transient("service busy");
    return xt::sum(slice)();
  }
  void process_callback(std::int64_t partial) { total += partial; }
  std::int64_t total = 0;
};

int main(int argc, char** argv) {
  corun::enter_worker_if_spawned(argc, argv);
  using namespace std::chrono_literals;
  char dir[] = "/tmp/corun_retry_example_XXXXXX";
  if (!::mkdtemp(dir)) return 1;

  auto ints = corun::SharedArray<std::int64_t>::create({1000});
  for (std::size_t i = 0; i < ints.size(); ++i) ints[i] = static_cast<std::int64_t>(i + 1);
  FlakySum sum{corun::DataIterator::partitioned(ints, 4), std::string(dir)};

  asio::io_context io;
  corun::ProcessPool pool{io.get_executor(), {.workers = 2}};
  corun::WorkerOrchestrator orch{
      pool,
      {&sum},
      {.retry = corun::RetryPolicy{.attempts = 3,
                                   .backoff = {.initial = 100ms, .factor = 2, .max = 1s},
                                   .retry_on = {.kinds = {corun::TaskErrorKind::exception},
                                                .exception_types = {"app::Transient"}}}}};
  const auto began = std::chrono::steady_clock::now();
  auto run = orch.async_run(asio::use_future);
  auto shutdown = pool.async_shutdown(asio::use_future);
  io.run();
  const corun::RunReport report = run.get();
  shutdown.get();
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - began);

  bool ok = sum.total == 500'500 && report.failures.empty();
  for (const corun::TaskRecord& task : report.tasks) {
    std::cout << "slice [" << task.slice.start << ", " << task.slice.end
              << ") succeeded on attempt " << task.attempts << '\n';
    ok &= task.attempts == 3;
  }
  std::cout << "sum = " << sum.total << " after " << took.count()
            << " ms (each slice waited 100 + 200 ms between its attempts)\n";
  std::filesystem::remove_all(dir);
  return ok && took >= 300ms ? 0 : 1;
}
