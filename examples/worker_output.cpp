// Shows PoolOptions::worker_output and corun::set_diagnostics_handler: what worker processes
// print, and corun's own messages, routed into the program's log (here a vector it prints)
// instead of going straight to the terminal. Each line says which worker wrote it.
#include <corun/corun.hpp>

#include <asio/io_context.hpp>
#include <asio/use_future.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <iostream>
#include <numeric>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

struct Report : corun::Worker<Report, std::int64_t> {
  using Worker::Worker;
  static void process(corun::SliceView<const std::int64_t> slice, const corun::TaskContext& ctx) {
    std::printf("rows %lld..%lld\n", static_cast<long long>(slice(0)),
                static_cast<long long>(slice(slice.size() - 1)));      // stdout
    if (ctx.worker_id == 0) std::fprintf(stderr, "worker 0 warns\n");  // stderr
  }
};

void cleanup_fails(const corun::WorkerInfo&) {
  throw std::runtime_error("cannot flush cache");  // corun reports it on the worker's stderr
}

int main(int argc, char** argv) {
  corun::enter_worker_if_spawned(argc, argv);
  std::vector<std::string> log;
  corun::set_diagnostics_handler(
      [&](std::string_view m) { log.push_back("corun: " + std::string(m)); });

  auto ints = corun::SharedArray<std::int64_t>::create({8});
  std::iota(ints.begin(), ints.end(), std::int64_t{1});
  const auto rows = corun::DataIterator::over(ints, 4);
  asio::io_context io;
  corun::ProcessPool pool{
      io.get_executor(),
      {.workers = 2,
       .worker_exit = &cleanup_fails,
       .worker_output = [&](const corun::WorkerOutputLine& l) {
         log.push_back("[worker " + std::to_string(l.worker_id) + " pid " + std::to_string(l.pid) +
                       (l.stream == corun::OutputStream::out ? " out] " : " err] ") +
                       std::string(l.text));
       }}};
  auto ready = pool.async_wait_ready(asio::use_future);  // so that both workers get a slice
  while (ready.wait_for(std::chrono::seconds(0)) != std::future_status::ready) io.run_one();
  auto first = pool.async_execute<Report>(rows, corun::Slice{0, 4}, asio::use_future);
  auto second = pool.async_execute<Report>(rows, corun::Slice{4, 8}, asio::use_future);
  auto shutdown = pool.async_shutdown(asio::use_future);  // all output is in when it completes
  io.run();
  first.get();
  second.get();
  shutdown.get();
  corun::set_diagnostics_handler({});

  std::size_t rows_lines = 0, warnings = 0, hook_messages = 0;
  for (const auto& line : log) {
    std::cout << line << '\n';
    rows_lines += line.find(" out] rows ") != std::string::npos;
    warnings += line.find(" err] worker 0 warns") != std::string::npos;
    hook_messages += line.find(" err] corun worker ") != std::string::npos &&
                     line.find(": worker_exit threw: cannot flush cache") != std::string::npos;
  }
  return rows_lines == 2 && warnings == 1 && hook_messages == 2 && log.size() == 5 ? EXIT_SUCCESS
                                                                                   : EXIT_FAILURE;
}
