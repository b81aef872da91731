// Must not compile: the worker's Params type has a std::string member, so it is not trivially
// copyable, and it has no corun::codec and no cereal function: nothing could send it to a
// worker process. The error names the three ways to fix it.
// expect: this Params type cannot be sent to worker processes
#include <corun/orchestrator.hpp>

#include <cstdint>
#include <string>

struct Options {
#ifdef CORUN_COMPILE_FAIL_CONTROL
  char label[16];
#else
  std::string label;
#endif
  double threshold = 0.5;
};

struct Count : corun::Worker<Count, std::int64_t, Options> {
  using Worker::Worker;
  static std::int64_t process(corun::SliceView<const std::int64_t> slice, const Options& p);
};

corun::WorkerRef take(Count* count) {
  return count;
}
