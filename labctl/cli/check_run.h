// Shared by `labctl check` and `labctl up --check`: the flags that shape a check run and
// the run itself, printing each verdict as it is reached.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "labctl/model/topology.h"

namespace labctl::cli {

struct CheckRunFlags {
  bool json = false;
  std::string junit;     ///< Write a JUnit XML file here too, when not empty.
  double timeout_s = 0;  ///< Every check's deadline in seconds; 0: each its own.
};

/// Adds --json, --junit FILE and --timeout SECONDS to `cmd`.
void add_check_flags(CLI::App* cmd, CheckRunFlags& f);

/// The exit statuses of a check run, for --help.
inline constexpr const char* kCheckExitHelp =
    "Exit status: 0 when every check passed, 1 when any failed (or none ran), 2 for a\n"
    "configuration error (a check name the lab does not have, a JUnit file that cannot be\n"
    "written, a bad --timeout).";

/// Runs the checks, printing each verdict as it comes (or JSON at the end) and writing the
/// JUnit file; returns 0 when all passed, else kExitFailure.
int run_and_print_checks(const Topology& t, const std::vector<std::string>& only,
                         const CheckRunFlags& f);

}  // namespace labctl::cli
