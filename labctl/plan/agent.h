// How an agent of the topology becomes a command line. Shared by the executor (which runs
// it) and the dry-run script (which prints it), so both start exactly the same thing.
#pragma once

#include <string>
#include <vector>

#include "labctl/model/topology.h"

namespace labctl {

/// The argv that runs `a` on `node`. Built-in kinds run `labagent` (path given); servers
/// get `--ready-fd 3` only when with_ready_fd (the executor's readiness handshake).
[[nodiscard]] std::vector<std::string> agent_argv(const Agent& a, const std::string& node,
                                                  const std::string& labagent,
                                                  bool with_ready_fd);

/// True for agents that report readiness (the built-in servers).
[[nodiscard]] bool agent_signals_ready(const Agent& a);

/// The labagent binary: $LABCTL_AGENT, else beside the running labctl (installed) or in the
/// build tree's agents/ directory, else "labagent" from PATH.
[[nodiscard]] std::string find_labagent();

}  // namespace labctl
