// Shows a map from one shared array to another without copying large data: each task reads
// its slice of the input and writes the same rows of the output through TaskContext::output.
// Only the slice bounds travel to the worker processes; nothing travels back.
#include <corun/corun.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <cmath>
#include <exception>
#include <iostream>
#include <xtensor/xmath.hpp>
#include <xtensor/xview.hpp>

struct Hypot : corun::Worker<Hypot, double> {
  using Worker::Worker;
  // Input rows are (x, y) pairs; the output gets sqrt(x^2 + y^2) for each row.
  static void process(corun::SliceView<const double> xy, const corun::TaskContext& ctx) {
    auto out = ctx.output<double>();  // this task's rows of the output array, mapped in place
    out = xt::sqrt(xt::view(xy, xt::all(), 0) * xt::view(xy, xt::all(), 0) +
                   xt::view(xy, xt::all(), 1) * xt::view(xy, xt::all(), 1));
  }
};
CORUN_REGISTER_WORKER(Hypot);

int main(int argc, char** argv) {
  corun::enter_worker_if_spawned(argc, argv);
  const std::size_t rows = 10'000'000;
  auto points = corun::SharedArray<double>::create({rows, 2});
  for (std::size_t i = 0; i < rows; ++i) {
    points[2 * i] = 3.0 * static_cast<double>(i);
    points[2 * i + 1] = 4.0 * static_cast<double>(i);
  }
  auto lengths = corun::SharedArray<double>::create({rows});
  Hypot hypot{corun::DataIterator::over(points, 250'000), lengths.info()};

  asio::io_context io;
  corun::ProcessPool pool{io.get_executor(), {.workers = 2}};
  corun::WorkerOrchestrator orch{pool, {&hypot}};
  std::exception_ptr failure;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        const corun::RunReport report = co_await orch.run();
        co_await pool.async_shutdown(asio::use_awaitable);
        std::cout << report.tasks_done << " tasks in " << report.wall_seconds() << " s\n";
      },
      [&](std::exception_ptr e) {  // never asio::detached: it would swallow a failure
        if (e) pool.terminate();   // else the idle pool would keep io.run() going
        failure = e;
      });
  io.run();
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      std::cerr << "map_arrays: " << e.what() << '\n';
      return 1;
    }
  }
  // 3-4-5 triangles: row i has length 5 i.
  for (std::size_t i : {std::size_t{0}, std::size_t{1}, rows - 1})
    std::cout << "lengths[" << i << "] = " << lengths[i] << '\n';
  return lengths[rows - 1] == 5.0 * static_cast<double>(rows - 1) ? 0 : 1;
}
