// Shared by `labctl check` and `labctl up --check`.
#pragma once

#include <string>
#include <vector>

#include "labctl/model/topology.h"

namespace labctl::cli {

/// Runs the checks, prints the report; returns 0 when all passed, else kExitFailure.
int run_and_print_checks(const Topology& t, const std::vector<std::string>& only, bool json);

}  // namespace labctl::cli
