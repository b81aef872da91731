// Must not compile: process_callback takes the Slice by non-const reference, as if it could
// change which rows the task had.
// expect: cannot take the result R of its process
#include <corun/orchestrator.hpp>

#include <cstdint>

struct Sum : corun::Worker<Sum, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(corun::SliceView<const std::int64_t> slice);
#ifdef CORUN_COMPILE_FAIL_CONTROL
  void process_callback(std::int64_t partial, const corun::Slice& slice) {
#else
  void process_callback(std::int64_t partial, corun::Slice& slice) {
#endif
    total += partial;
    rows += slice.size();
  }
  std::int64_t total = 0;
  std::size_t rows = 0;
};

corun::WorkerRef take(Sum* sum) {
  return sum;
}
