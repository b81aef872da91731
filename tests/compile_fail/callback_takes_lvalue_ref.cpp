// Must not compile: process_callback takes the result by non-const reference, which a result
// (a temporary) cannot bind to; before corun checked it, the callback was silently skipped.
// expect: cannot take the result R of its process
#include <corun/orchestrator.hpp>

#include <cstdint>

struct Sum : corun::Worker<Sum, std::int64_t> {
  using Worker::Worker;
  static std::int64_t process(corun::SliceView<const std::int64_t> slice);
#ifdef CORUN_COMPILE_FAIL_CONTROL
  void process_callback(const std::int64_t& partial) {
    total += partial;
  }
#else
  void process_callback(std::int64_t& partial) {
    total += partial;
  }
#endif
  std::int64_t total = 0;
};

corun::WorkerRef take(Sum* sum) {
  return sum;
}
