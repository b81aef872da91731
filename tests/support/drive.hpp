#pragma once
// Running an io_context until one operation completes: the pool keeps reads pending on its
// workers' sockets, so io_context::run() alone would not return while the pool lives.

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <chrono>
#include <exception>
#include <future>
#include <memory>

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

/// Whether a handler was called, and whether it (with all it owned) was destroyed.
struct HandlerFate {
  bool called = false;
  bool destroyed = false;
};

/// Starts an operation once `pool` is ready (`start(pool, handler)`), stops the loop right
/// after, then destroys the pool and then the io_context without running the loop again, as a
/// program that leaves on io.stop() does. The handler owns `owned`; Asio's contract is that it
/// is destroyed, never called.
template <class Pool, class Owned, class Start>
HandlerFate stop_loop_with_operation_in_flight(Pool&& make_pool, std::shared_ptr<Owned> owned,
                                               Start start) {
  HandlerFate fate;
  auto flag = std::make_shared<bool>(false);
  std::weak_ptr<bool> watch = flag;
  std::weak_ptr<Owned> watch_owned = owned;
  {
    auto io = std::make_unique<asio::io_context>();
    auto pool = make_pool(io->get_executor());
    pool->async_wait_ready(
        [&, flag = std::move(flag), owned = std::move(owned)](std::exception_ptr) mutable {
          start(*pool, [&fate, flag = std::move(flag), owned = std::move(owned)](auto&&...) {
            fate.called = true;
          });
          asio::post(*io, [&io] { io->stop(); });
        });
    io->run();
    pool.reset();
  }
  fate.destroyed = watch.expired() && watch_owned.expired();
  return fate;
}

}  // namespace corun::test
