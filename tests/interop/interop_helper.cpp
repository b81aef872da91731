// The C++ side of tests/python_interop.py: attaches to segments numpy made through
// multiprocessing.shared_memory, and makes segments for numpy to open.
//
//   interop_helper sum NAME N        attach int64 {N}, print "sum=<sum>"
//   interop_helper ustr NAME N       attach FixedUString<8> {N}, print one string per line
//   interop_helper serve i8|f8 DIMS  create a default-named array, fill it with 1, 2, 3, ...,
//                                    print "NAME DTYPE DIMS...", wait for a line on stdin,
//                                    print "sum=<sum>" of what is there then, and exit
//                                    (removing the segment)
// Exit status: 0 on success, 2 on bad usage, 3 on a corun::Error (its message on stderr).
#include <corun/shared_array.hpp>

#include <corun/error.hpp>

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

namespace {

int usage() {
  std::cerr << "usage: interop_helper sum NAME N | ustr NAME N | serve i8|f8 DIM...\n";
  return 2;
}

template <class T>
int serve(const std::vector<std::size_t>& shape) {
  auto array = corun::SharedArray<T>::create(shape);
  std::iota(array.begin(), array.end(), T{1});
  std::cout << array.name() << ' ' << array.info().dtype.str();
  for (std::size_t d : shape) std::cout << ' ' << d;
  std::cout << std::endl;
  std::string line;
  std::getline(std::cin, line);  // the other side has looked (or gave up: EOF)
  std::cout << "sum=" << std::accumulate(array.begin(), array.end(), T{0}) << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  const std::string mode = argv[1];
  try {
    if (mode == "sum" && argc == 4) {
      const auto array = corun::SharedArray<std::int64_t>::attach(argv[2], {std::stoull(argv[3])});
      std::cout << "sum=" << std::accumulate(array.begin(), array.end(), std::int64_t{0})
                << std::endl;
      return 0;
    }
    if (mode == "ustr" && argc == 4) {
      const auto array =
          corun::SharedArray<corun::FixedUString<8>>::attach(argv[2], {std::stoull(argv[3])});
      for (const auto& s : array) std::cout << s.str() << '\n';
      std::cout.flush();
      return 0;
    }
    if (mode == "serve" && argc >= 4) {
      std::vector<std::size_t> shape;
      for (int i = 3; i < argc; ++i) shape.push_back(std::stoull(argv[i]));
      if (std::string(argv[2]) == "i8") return serve<std::int64_t>(shape);
      if (std::string(argv[2]) == "f8") return serve<double>(shape);
    }
  } catch (const corun::Error& e) {
    std::cerr << e.what() << '\n';
    return 3;
  }
  return usage();
}
