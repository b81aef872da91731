#include <corun/corun.hpp>

#include <catch2/catch.hpp>

#include <string>

TEST_CASE("the version is meson.build's, in the macros and in the library", "[version]") {
  CHECK(std::string(CORUN_VERSION) == CORUN_EXPECTED_VERSION);
  CHECK(std::string(corun::version()) == CORUN_VERSION);
  CHECK(std::to_string(CORUN_VERSION_MAJOR) + "." + std::to_string(CORUN_VERSION_MINOR) + "." +
            std::to_string(CORUN_VERSION_PATCH) ==
        CORUN_VERSION);
  CHECK(CORUN_VERSION_NUMBER ==
        CORUN_VERSION_MAJOR * 10000 + CORUN_VERSION_MINOR * 100 + CORUN_VERSION_PATCH);
}
