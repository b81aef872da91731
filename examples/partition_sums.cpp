// Shows the shared-memory data model: create an int64 array in /dev/shm, cut it into
// partitions with DataIterator, and read each slice through an xtensor view.
#include <corun/corun.hpp>

#include <cstdlib>
#include <iostream>
#include <numeric>
#include <string>
#include <xtensor/xmath.hpp>

int main(int argc, char** argv) {
  const std::size_t n = argc > 1 ? std::stoull(argv[1]) : 1'000'000;
  const std::size_t parts = argc > 2 ? std::stoull(argv[2]) : 8;

  auto ints = corun::SharedArray<std::int64_t>::create({n});
  std::iota(ints.begin(), ints.end(), std::int64_t{1});
  const auto data = corun::DataIterator::partitioned(ints, parts);

  std::cout << "array " << ints.name() << ": " << n << " x " << data.data_type.str() << ", "
            << data.slice_count() << " slices\n";
  std::int64_t total = 0;
  for (corun::Slice slice : data) {
    const auto view = corun::view_slice<const std::int64_t>(data, slice);
    const std::int64_t sum = xt::sum(view)();
    std::cout << "slice " << slice << " sum=" << sum << '\n';
    total += sum;
  }
  std::cout << "total=" << total << '\n';
  return total == static_cast<std::int64_t>(n) * static_cast<std::int64_t>(n + 1) / 2
             ? EXIT_SUCCESS
             : EXIT_FAILURE;
}
