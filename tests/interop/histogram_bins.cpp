// Bins values with corun::reduce::histogram, for histogram_numpy.py to compare with
// numpy.histogram. Each line of stdin is one case, `lo hi bins v1 v2 ...` (numbers as Python's
// repr writes them); each line of stdout answers it: `invalid: <message>` when the histogram
// cannot be made, else `bins:` and each value's bin (`-` when it is not counted), then on the
// next line `counts:` and the counts of all the values folded in two halves and merged.
#include <corun/reduce.hpp>

#include <cstdlib>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {
double number(const std::string& text) {
  char* end = nullptr;
  const double x = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) throw std::runtime_error("not a number: " + text);
  return x;
}

using Counts = corun::reduce::histogram::value_type;

Counts fold(const corun::reduce::histogram& h, const std::vector<double>& values, std::size_t from,
            std::size_t to) {
  Counts acc = h.identity({});
  for (std::size_t i = from; i < to; ++i) acc = h(std::move(acc), values[i]);
  return acc;
}
}  // namespace

int main() {
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string lo, hi;
    std::size_t bins = 0;
    in >> lo >> hi >> bins;
    std::vector<double> values;
    for (std::string v; in >> v;) values.push_back(number(v));
    corun::reduce::histogram h;
    try {
      h = corun::reduce::histogram(number(lo), number(hi), bins);
    } catch (const std::invalid_argument& e) {
      std::cout << "invalid: " << e.what() << '\n';
      continue;
    }
    std::cout << "bins:";
    for (const double v : values) {
      const Counts one = h(h.identity({}), v);
      std::string at = "-";
      for (std::size_t b = 0; b < one.size(); ++b)
        if (one[b] != 0) at = std::to_string(b);
      std::cout << ' ' << at;
    }
    const std::size_t half = values.size() / 2;
    const Counts counts = h.merge(fold(h, values, 0, half), fold(h, values, half, values.size()));
    std::cout << "\ncounts:";
    for (const auto c : counts) std::cout << ' ' << c;
    std::cout << '\n';
  }
  return 0;
}
