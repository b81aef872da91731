#pragma once
// Running an io_context until one operation completes: the pool keeps reads pending on its
// workers' sockets, so io_context::run() alone would not return while the pool lives.

#include <asio/io_context.hpp>
#include <chrono>
#include <future>

namespace corun::test {

template <class T>
T drive(asio::io_context& io, std::future<T>& future) {
  while (future.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    // A serial pool leaves the loop without work between runs, which stops it.
    if (io.stopped()) io.restart();
    io.run_one();
  }
  return future.get();
}

}  // namespace corun::test
