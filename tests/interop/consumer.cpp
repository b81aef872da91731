// A tiny program built by tests/interop/install_consumer.sh against an installed (and an
// uninstalled) corun through pkg-config: creates a shared array, partitions it, and sums it slice
// by slice; exits 1 when the installed version header and the library it loaded disagree.
#include <corun/corun.hpp>

#include <cstdint>
#include <cstring>
#include <iostream>
#include <numeric>
#include <xtensor/xmath.hpp>

int main() {
  if (std::strcmp(corun::version(), CORUN_VERSION) != 0) {
    std::cerr << "headers say corun " << CORUN_VERSION << ", the library " << corun::version()
              << '\n';
    return 1;
  }
  auto ints = corun::SharedArray<std::int64_t>::create({1000});
  std::iota(ints.begin(), ints.end(), std::int64_t{1});
  const auto data = corun::DataIterator::partitioned(ints, 7);
  std::int64_t total = 0;
  for (corun::Slice slice : data)
    total += xt::sum(corun::view_slice<const std::int64_t>(data, slice))();
  std::cout << "slices=" << data.slice_count() << " sum=" << total << '\n';
}
