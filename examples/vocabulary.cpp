// Shows corun::map_function: a per-process State for a map. Each worker process builds a
// vocabulary of 50,000 words (word -> id) once, from the map's params, in init_state; then
// 1,000,000 words are mapped to their ids there, twice, with no second build: the State lives
// across maps of the same function and params, and its exit hook runs when the worker exits.
// The hooks print a line each, which PoolOptions::worker_output counts. Exits 1 on a wrong id.
#include <corun/corun.hpp>

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

/// Where the vocabulary comes from: the map's params, sent once to each worker process.
struct Source {
  std::uint64_t seed = 0;
  std::uint32_t words = 0;
  friend bool operator==(const Source&, const Source&) = default;  // States are kept per value
};

/// Word i of the vocabulary: four letters, distinct for every i below 26^4.
std::string word(const Source& source, std::uint32_t i) {
  std::uint64_t code = (std::uint64_t{i} * 7919 + source.seed) % (26 * 26 * 26 * 26);
  std::string w(4, 'a');
  for (char& c : w) c = static_cast<char>('a' + code % 26), code /= 26;
  return w;
}

/// The State: built once per worker process.
struct Vocabulary {
  std::unordered_map<std::string, std::int32_t> ids;
};

Vocabulary load_vocabulary(const Source& source, const corun::WorkerInfo& info) {
  Vocabulary v;
  v.ids.reserve(source.words);
  for (std::uint32_t i = 0; i < source.words; ++i) v.ids.emplace(word(source, i), i);
  std::printf("worker %d loaded %zu words\n", info.worker_id, v.ids.size());
  return v;
}

void release_vocabulary(Vocabulary& v, const Source&, const corun::WorkerInfo& info) {
  std::printf("worker %d released %zu words\n", info.worker_id, v.ids.size());
}

/// The map function: the word's id, or -1 for a word the vocabulary lacks.
std::int32_t lookup(const std::string& w, const Source&, const corun::TaskContext& ctx) {
  const auto& ids = ctx.state<Vocabulary>().ids;
  const auto it = ids.find(w);
  return it == ids.end() ? -1 : it->second;
}

int main(int argc, char** argv) {
  corun::enter_worker_if_spawned(argc, argv);
  const Source source{2026, 50'000};
  // Every 20th word is not in the vocabulary (it has a digit); the others are word k * 31337.
  auto expected_id = [](std::size_t k) {
    return k % 20 == 19 ? -1 : static_cast<std::int32_t>(k * 31337 % 50'000);
  };
  std::vector<std::string> text(1'000'000);
  for (std::size_t k = 0; k < text.size(); ++k)
    text[k] = k % 20 == 19 ? "zz" + std::to_string(k % 7)
                           : word(source, static_cast<std::uint32_t>(expected_id(k)));

  int loads = 0, releases = 0;
  asio::io_context io;
  corun::ProcessPool pool{io.get_executor(),
                          {.workers = 2, .worker_output = [&](const corun::WorkerOutputLine& l) {
                             const std::string_view text_line = l.text;
                             loads += text_line.find(" loaded ") != std::string_view::npos;
                             releases += text_line.find(" released ") != std::string_view::npos;
                           }}};
  std::vector<std::int32_t> ids, again;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        co_await pool.async_wait_ready(asio::use_awaitable);
        corun::MapOptions<Source> options{.params = source};
        constexpr auto vocabulary_lookup =
            corun::map_function<&lookup, &load_vocabulary, &release_vocabulary>;
        ids =
            co_await corun::async_map<vocabulary_lookup>(pool, text, options, asio::use_awaitable);
        again =
            co_await corun::async_map<vocabulary_lookup>(pool, text, options, asio::use_awaitable);
        co_await pool.async_shutdown(asio::use_awaitable);  // the exit hooks' lines are in
      },
      [&](std::exception_ptr e) {
        if (!e) return;
        pool.terminate();
        std::rethrow_exception(e);
      });
  io.run();

  std::size_t known = 0, wrong = 0;
  for (std::size_t k = 0; k < text.size(); ++k) {
    known += ids[k] >= 0;
    wrong += ids[k] != expected_id(k);
  }
  std::cout << "vocabulary: " << source.words << " words (seed " << source.seed << ")\n"
            << "mapped " << ids.size() << " words: " << known << " known, " << ids.size() - known
            << " unknown\n"
            << "mapped them again: " << (again == ids ? "the same ids" : "OTHER ids") << '\n'
            << "vocabulary loads: " << loads << ", releases: " << releases
            << " (one each per worker process)\n";
  const bool ok = wrong == 0 && again == ids && loads == 2 && releases == 2;
  std::cout << (ok ? "ok\n" : "MISMATCH\n");
  return ok ? 0 : 1;
}
