// The Catch2 runner of every test executable. A test binary is also the program that spawned
// worker processes re-execute, so it enters worker mode first, like any corun program.
#define CATCH_CONFIG_RUNNER
#include "support/support.hpp"

#include <catch2/catch.hpp>
#include <corun/corun.hpp>

#include <iostream>

int main(int argc, char** argv) {
  corun::enter_worker_if_spawned(argc, argv);
  const int failures = Catch::Session().run(argc, argv);
  // Every test cleans up after itself: a segment this process made and left is a leak.
  const auto left = corun::test::segments_of_pid(::getpid());
  for (const auto& name : left) std::cerr << "leaked shared-memory segment: " << name << '\n';
  return failures != 0 || !left.empty() ? 1 : 0;
}
