#pragma once
// Worker types the pool and orchestrator tests share. Registered in workers.cpp, which every
// test executable that starts processes links.

#include <corun/corun.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace corun::test {

/// Sums its slice; the partials add up in process_callback.
struct AddInts : Worker<AddInts, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(SliceView<const std::int64_t> slice);
  void process_callback(std::int64_t partial) {
    total += partial;
    ++callbacks;
  }
  std::int64_t total = 0;
  int callbacks = 0;
};

/// A piece of text and where it starts, so the parent can put pieces in slice order.
struct Piece {
  std::size_t start = 0;
  std::string text;
};

/// Concatenates the strings of its slice; the parent orders pieces by TaskContext::slice.
struct ConcatStr : Worker<ConcatStr, FixedUString<8>> {
  using Worker::Worker;
  static Piece process(SliceView<const FixedUString<8>> slice, const TaskContext& ctx);
  void process_callback(Piece piece) { pieces[piece.start] = std::move(piece.text); }
  std::string joined() const;
  std::map<std::size_t, std::string> pieces;
};

/// Fails on purpose when its slice contains a row whose value says how:
/// -1 throws std::runtime_error, -2 raises SIGSEGV, -3 aborts, -4 calls std::exit(7),
/// -5 blocks forever, -8 spins for 600 ms of CPU time from its start. Otherwise sums like
/// AddInts.
struct Faulty : Worker<Faulty, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(SliceView<const std::int64_t> slice);
  void process_callback(std::int64_t partial) { total += partial; }
  std::int64_t total = 0;
};

/// Returns (worker_id, pid, value set by the worker_init hook) of the process that ran it.
struct WhoAmI : Worker<WhoAmI, std::int64_t> {
  using Worker::Worker;
  static std::vector<std::int64_t> process(SliceView<const std::int64_t>, const TaskContext& ctx);
  void process_callback(std::vector<std::int64_t> v) { seen.push_back(std::move(v)); }
  std::vector<std::vector<std::int64_t>> seen;
};

/// Writes the square of each input element into the output array: a map without copies.
struct Square : Worker<Square, std::int64_t> {
  using Worker::Worker;
  static void process(SliceView<const std::int64_t> in, const TaskContext& ctx);
};

/// Returns 1 KiB per row of its slice.
struct Blob : Worker<Blob, std::int64_t> {
  using Worker::Worker;
  static std::vector<char> process(SliceView<const std::int64_t> slice) {
    return std::vector<char>(slice.size() * 1024, 'x');
  }
};

/// Returns nothing; counts its callbacks.
struct Empty : Worker<Empty, std::int64_t> {
  using Worker::Worker;
  static void process(SliceView<const std::int64_t>) {}
  void process_callback() { ++callbacks; }
  std::size_t callbacks = 0;
};

/// Blocks on a named FIFO (path in CORUN_TEST_FIFO) when its slice holds the value -7; its
/// first callback opens the FIFO and writes the byte that releases it. So that task cannot
/// finish before a callback ran. Records the threads callbacks ran on.
struct Gate : Worker<Gate, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(SliceView<const std::int64_t> slice);
  void process_callback(std::int64_t rows);
  ~Gate();
  int fifo_writer = -1;
  std::int64_t rows_seen = 0;
  std::vector<std::thread::id> threads;
};

/// Per-process state and hooks of a worker type, with params (a base added to results).
/// process returns {pid, tasks this process ran of this worker object (its State), base +
/// params, worker_init calls in this process when it ran, the params worker_init last saw};
/// worker_exit writes the task count to
/// <CORUN_TEST_HOOK_DIR>/state_<pid> and counts its calls in `exits` (serial pools).
struct PerProcess : Worker<PerProcess, std::int64_t, std::int64_t> {
  using Worker::Worker;
  struct State {
    std::int64_t tasks = 0;
    std::int64_t base = 0;
  };
  static State init_state(const std::int64_t& base, const WorkerInfo& info);
  static void worker_init(const std::int64_t& base, const WorkerInfo& info);
  static void worker_exit(State& state, const std::int64_t& base, const WorkerInfo& info);
  static std::vector<std::int64_t> process(SliceView<const std::int64_t> slice,
                                           const std::int64_t& base, const TaskContext& ctx);
  void process_callback(std::vector<std::int64_t> v) { seen.push_back(std::move(v)); }
  std::vector<std::vector<std::int64_t>> seen;
  static inline int inits = 0;
  static inline int exits = 0;
  static inline std::int64_t init_params = -1;
};

/// worker_init / worker_exit hooks: init sets a value WhoAmI reports; exit writes a file
/// <CORUN_TEST_HOOK_DIR>/exit_<worker_id>.
void init_hook(const WorkerInfo& info);
void exit_hook(const WorkerInfo& info);

/// A worker_init hook that throws the first time it runs in any process: it creates the file
/// named by CORUN_TEST_FLAKY_MARKER exclusively and throws when it could.
void flaky_init(const WorkerInfo& info);

/// An int64 array holding 1..n.
SharedArray<std::int64_t> iota_array(std::size_t n);

}  // namespace corun::test

template <>
struct corun::codec<corun::test::Piece> {
  static void encode(const corun::test::Piece& p, std::string& out);
  static corun::test::Piece decode(std::string_view bytes);
};
