// labagent's subcommands: each is defined and registered in a file of its own
// (agents/<name>.cc, globbed by CMakeLists.txt) with its options and its run code; main.cc
// adds every registered one to the app and runs the one chosen. An agent kind that runs
// labagent (plan/agent_kinds.cc) has the subcommand of its name.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace labagent {

struct Subcommand {
  std::string name;
  /// Adds the subcommand and its options (bound to the file's own variables) to `app`.
  CLI::App* (*add)(CLI::App& app) = nullptr;
  /// Runs it, once the command line is parsed; the exit status.
  int (*run)() = nullptr;
};

/// One per subcommand file: `const Registered registered{{"http", add, run}};`.
struct Registered {
  explicit Registered(Subcommand s);
};

/// Every registered subcommand, by name.
[[nodiscard]] std::vector<Subcommand> subcommands();

}  // namespace labagent
