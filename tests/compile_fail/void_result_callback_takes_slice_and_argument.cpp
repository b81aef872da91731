// Must not compile: process returns void, so process_callback takes the Slice alone.
// expect: cannot take the result R of its process
#include <corun/orchestrator.hpp>

#include <cstdint>

struct Touch : corun::Worker<Touch, std::int64_t> {
  using Worker::Worker;
  static void process(corun::SliceView<const std::int64_t> slice);
#ifdef CORUN_COMPILE_FAIL_CONTROL
  void process_callback(corun::Slice slice) {
    rows += slice.size();
  }
#else
  void process_callback(int n, corun::Slice slice) {
    rows += slice.size() + static_cast<std::size_t>(n);
  }
#endif
  std::size_t rows = 0;
};

corun::WorkerRef take(Touch* touch) {
  return touch;
}
