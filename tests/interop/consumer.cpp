// A tiny program built by tests/install_consumer.sh against an installed (and an uninstalled)
// corun through pkg-config: creates a shared array, partitions it, and sums it slice by slice.
#include <corun/corun.hpp>

#include <cstdint>
#include <iostream>
#include <numeric>
#include <xtensor/xmath.hpp>

int main() {
  auto ints = corun::SharedArray<std::int64_t>::create({1000});
  std::iota(ints.begin(), ints.end(), std::int64_t{1});
  const auto data = corun::DataIterator::partitioned(ints, 7);
  std::int64_t total = 0;
  for (corun::Slice slice : data)
    total += xt::sum(corun::view_slice<const std::int64_t>(data, slice))();
  std::cout << "slices=" << data.slice_count() << " sum=" << total << '\n';
}
