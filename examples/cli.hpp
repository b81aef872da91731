#pragma once
// The command-line convention of corun's examples and benchmarks, on CLI11: `--help` prints
// the usage on stdout and exits 0; a bad flag or value prints CLI11's message and
// "Run with --help for more information." on stderr and exits 2, in every program alike.
#include <CLI/CLI.hpp>

#include <cstdlib>

namespace corun_cli {

/// Parses or exits (0 after --help, 2 after a parse error). Call it before any resource is
/// made: exiting skips the destructors of main's locals.
inline void parse_or_exit(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    std::exit(code == 0 ? 0 : 2);
  }
}

}  // namespace corun_cli
