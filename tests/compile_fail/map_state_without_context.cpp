// Must not compile: corun::map_function gives f a State, but f takes no TaskContext, so it could
// never reach it (ctx.state<State>()). The error says f must take a const TaskContext& last.
// expect: f must take a const corun::TaskContext& last
#include <corun/map.hpp>

#include <cstdint>
#include <vector>

struct Table {
  std::int64_t offset = 0;
};
Table build(const corun::WorkerInfo&) {
  return {};
}
#ifdef CORUN_COMPILE_FAIL_CONTROL
std::int64_t shift(const std::int64_t& x, const corun::TaskContext& ctx) {
  return x + ctx.state<Table>().offset;
}
#else
std::int64_t shift(const std::int64_t& x) {
  return x;
}
#endif

void start(corun::ProcessPool& pool, const std::vector<std::int64_t>& inputs) {
  corun::async_map<corun::map_function<&shift, &build>>(pool, inputs, corun::MapOptions<>{},
                                                        [](std::exception_ptr, auto) {});
}
