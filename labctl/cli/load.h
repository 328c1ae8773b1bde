// Loading a topology for a command: diagnostics go to stderr, errors end the command.
#pragma once

#include <string>

#include "labctl/model/load.h"

namespace labctl::cli {

/// Prints every diagnostic (warnings too, but for an exercise only a count of them) to
/// stderr; throws ExitError{kExitInvalid} when any is an error.
void print_diagnostics_or_die(const LoadResult& r);
/// load_topology + print_diagnostics_or_die: the resolved topology or exit 2. `text`, when
/// given, receives the exact text the topology was parsed from (read once: a copy read
/// again could differ from the lab built).
[[nodiscard]] Topology load_or_die(const std::string& name_or_path, std::string* text = nullptr);
/// The topology a running lab was built from (its state keeps the source), so commands act
/// on what is actually up; otherwise load_or_die(arg), a built-in or file of that name.
[[nodiscard]] Topology running_or_load_or_die(const std::string& arg);

}  // namespace labctl::cli
