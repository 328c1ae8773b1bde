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
/// For a command that acts on a running lab (ipvs edits, link, node): the lab's name checked,
/// root required, the lab up (else exit 1 with a hint), and the topology it was built from.
[[nodiscard]] Topology running_lab_or_die(const std::string& lab);

}  // namespace labctl::cli
