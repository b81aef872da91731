// Must not compile: process_callback takes the Slice first; the Slice comes after the result.
// expect: cannot take the result R of its process
#include <corun/orchestrator.hpp>

#include <cstdint>

struct Sum : corun::Worker<Sum, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(corun::SliceView<const std::int64_t> slice);
#ifdef CORUN_COMPILE_FAIL_CONTROL
  void process_callback(std::int64_t partial, corun::Slice slice) {
    total += partial + static_cast<std::int64_t>(slice.size());
  }
#else
  void process_callback(corun::Slice slice, std::int64_t partial) {
    total += partial + static_cast<std::int64_t>(slice.size());
  }
#endif
  std::int64_t total = 0;
};

corun::WorkerRef take(Sum* sum) {
  return sum;
}
