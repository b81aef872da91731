// A program that creates a spawn pool but forgot corun::enter_worker_if_spawned in main: it
// must get a clear error, not a hang. Exits 0 when it did.
#include <corun/corun.hpp>

#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <iostream>

struct Sum : corun::Worker<Sum, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(corun::SliceView<const std::int64_t> s) {
    return s.size() ? s(0) : 0;
  }
};
CORUN_REGISTER_WORKER(Sum);

int main() {
  asio::io_context io;
  corun::ProcessPool pool{io.get_executor(), {.workers = 2}};
  auto ints = corun::SharedArray<std::int64_t>::create({4});
  auto future =
      pool.async_execute<Sum>(corun::DataIterator::over(ints, 2), {0, 2}, asio::use_future);
  while (future.wait_for(std::chrono::seconds(0)) != std::future_status::ready) io.run_one();
  try {
    future.get();
  } catch (const corun::Error& e) {
    std::cout << e.what() << '\n';
    const bool clear = e.code() == corun::errc::worker_start_failed &&
                       std::string(e.what()).find("enter_worker_if_spawned") != std::string::npos;
    return clear ? 0 : 1;
  }
  std::cout << "the task ran although workers never entered worker mode\n";
  return 1;
}
