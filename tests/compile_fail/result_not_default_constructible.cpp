// Must not compile: the result type has no default constructor. Before corun checked it on the
// orchestrator path, the error came from deep inside codec.hpp.
// expect: must be default constructible
#include <corun/orchestrator.hpp>

#include <cstdint>

struct Partial {
#ifdef CORUN_COMPILE_FAIL_CONTROL
  Partial() = default;
#endif
  explicit Partial(std::int64_t v) : value(v) {}
  std::int64_t value;
};

struct Sum : corun::Worker<Sum, std::int64_t> {
  using Worker::Worker;
  static Partial process(corun::SliceView<const std::int64_t> slice);
  void process_callback(Partial partial) { total += partial.value; }
  std::int64_t total = 0;
};

corun::WorkerRef take(Sum* sum) {
  return sum;
}
