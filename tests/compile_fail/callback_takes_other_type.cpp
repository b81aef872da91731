// Must not compile: process returns a string, process_callback takes a vector.
// expect: cannot take the result R of its process
#include <corun/orchestrator.hpp>

#include <cstdint>
#include <string>
#include <vector>

struct Names : corun::Worker<Names, std::int64_t> {
  using Worker::Worker;
  static std::string process(corun::SliceView<const std::int64_t> slice);
#ifdef CORUN_COMPILE_FAIL_CONTROL
  void process_callback(std::string&& name) {
    names.push_back(std::move(name));
  }
#else
  void process_callback(std::vector<int> ids) {
    (void)ids;
  }
#endif
  std::vector<std::string> names;
};

corun::WorkerRef take(Names* names) {
  return names;
}
