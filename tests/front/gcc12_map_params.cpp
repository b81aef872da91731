// The README's recommended form for maps with parameters that own memory, under g++ and
// use_awaitable: MapOptions<std::string> (and a capturing on_result) built in named locals, then
// passed to async_map, async_imap and async_map_reduce inside a coroutine started by co_spawn.
// GCC 12 frees a std::string member twice when the same options are written as a temporary
// inside the co_await expression (tests/interop/gcc12_co_await_temporaries.cpp); this form must
// run cleanly, at the build's -O level and under the sanitizers, with exact results.
// Exits 0 when every result is exact, 1 (saying which) otherwise, 77 when not built by g++.
#include <corun/corun.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include <cstddef>
#include <exception>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#if defined(__GNUC__) && !defined(__clang__)
namespace {

// Longer than std::string's in-object buffer, so that a second free is a real double free.
const std::string tag = "a tag long enough to be allocated on the heap: ";

std::string tagged(const std::string& word, const std::string& prefix) {
  return prefix + word;
}
std::size_t tagged_length(const std::string& word, const std::string& prefix) {
  return prefix.size() + word.size();
}

}  // namespace
#endif

int main(int argc, char** argv) {
#if !defined(__GNUC__) || defined(__clang__)
  (void)argc;
  (void)argv;
  std::cout << "skipping: this test is about g++'s coroutines (GCC 12 and temporaries in "
               "co_await); this build's compiler is not g++\n";
  return 77;
#else
  corun::enter_worker_if_spawned(argc, argv);
  std::vector<std::string> words;
  for (int i = 0; i < 40; ++i) words.push_back("word number " + std::to_string(i) + " of forty");

  std::vector<std::string> expected_tagged;
  std::string expected_joined;
  for (const auto& w : words) {
    expected_tagged.push_back(tag + w);
    expected_joined += tag + w;
  }

  asio::io_context io;
  corun::ProcessPool pool{io.get_executor(), {.workers = 2}};
  std::vector<std::string> mapped;
  std::vector<std::size_t> lengths(words.size(), 0);
  std::size_t callbacks = 0;
  std::string joined;
  std::exception_ptr failure;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        // async_map: the options moved in from a named local.
        corun::MapOptions<std::string> map_options{.chunk_size = 3, .params = tag};
        mapped = co_await corun::async_map<&tagged>(pool, words, std::move(map_options),
                                                    asio::use_awaitable);
        // async_imap: the options copied from a named local; on_result a named lambda that
        // holds a std::string by copy (a capturing lambda is an aggregate too).
        const corun::MapOptions<std::string> imap_options{
            .chunk_size = 5, .ordered = false, .params = tag};
        auto on_result = [&, label = std::string(tag)](std::size_t i, std::size_t n) {
          lengths[i] = n - label.size();
          ++callbacks;
        };
        co_await corun::async_imap<&tagged_length>(pool, words, imap_options, std::move(on_result),
                                                   asio::use_awaitable);
        // async_map_reduce: named options, and a named initial value.
        corun::MapOptions<std::string> reduce_options{.params = tag};
        std::string init;
        joined = co_await corun::async_map_reduce<&tagged>(
            pool, words, std::move(init), corun::reduce::concat{}, std::move(reduce_options),
            asio::use_awaitable);
        co_await pool.async_shutdown(asio::use_awaitable);
      },
      [&](std::exception_ptr e) {
        if (e) pool.terminate();  // else the idle pool keeps io.run() going
        failure = e;
      });
  io.run();
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      std::cerr << "gcc12_map_params: " << e.what() << '\n';
      return 1;
    }
  }
  bool ok = true;
  if (mapped != expected_tagged) {
    std::cerr << "async_map: wrong results\n";
    ok = false;
  }
  for (std::size_t i = 0; i < words.size(); ++i)
    if (lengths[i] != words[i].size()) {
      std::cerr << "async_imap: input " << i << " gave " << lengths[i] << ", expected "
                << words[i].size() << '\n';
      ok = false;
    }
  if (callbacks != words.size()) {
    std::cerr << "async_imap: " << callbacks << " callbacks for " << words.size() << " inputs\n";
    ok = false;
  }
  if (joined != expected_joined) {
    std::cerr << "async_map_reduce: wrong concatenation (" << joined.size() << " chars, expected "
              << expected_joined.size() << ")\n";
    ok = false;
  }
  std::cout << "mapped=" << mapped.size() << " imap_callbacks=" << callbacks
            << " joined_chars=" << joined.size() << '\n';
  return ok ? 0 : 1;
#endif
}
