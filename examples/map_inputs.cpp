// async_map, async_imap and imap_unordered over plain inputs (no arrays): word lengths of a
// list of words, computed in worker processes. Checks its own output; exits 1 on a mismatch.
#include <corun/corun.hpp>
#include <corun/map.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <cstddef>
#include <iostream>
#include <string>
#include <vector>

// A free function: no registration, no worker class.
std::size_t letters(const std::string& word) {
  return word.size();
}

int main(int argc, char** argv) {
  corun::enter_worker_if_spawned(argc, argv);
  const std::vector<std::string> words{"shared", "memory", "is", "faster", "than", "pipes"};
  const std::vector<std::size_t> expected{6, 6, 2, 6, 4, 5};
  asio::io_context io;
  corun::ProcessPool pool{io.get_executor(), {.workers = 2}};
  bool ok = false;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        // map: the results in input order.
        const auto lengths =
            co_await corun::async_map<&letters>(pool, words, {}, asio::use_awaitable);
        // imap: (index, result) pairs as they arrive, here in input order...
        std::vector<std::size_t> in_order;
        co_await corun::async_imap<&letters>(
            pool, words, corun::MapOptions<>{.chunk_size = 1},
            [&](std::size_t i, std::size_t n) {
              std::cout << words[i] << ' ' << n << '\n';
              in_order.push_back(i);
            },
            asio::use_awaitable);
        // ...or in completion order (imap_unordered): each index still arrives once.
        std::vector<std::size_t> unordered(words.size());
        co_await corun::async_imap<&letters>(
            pool, words, corun::MapOptions<>{.chunk_size = 1, .ordered = false},
            [&](std::size_t i, std::size_t n) { unordered[i] = n; }, asio::use_awaitable);
        ok = lengths == expected && unordered == expected &&
             in_order == std::vector<std::size_t>{0, 1, 2, 3, 4, 5};
        co_await pool.async_shutdown(asio::use_awaitable);
      },
      [&](std::exception_ptr e) {
        if (e) pool.terminate();
      });
  io.run();
  std::cout << (ok ? "ok\n" : "MISMATCH\n");
  return ok ? 0 : 1;
}
