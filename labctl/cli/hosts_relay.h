// Commands about a running lab across hosts (docs/multihost.md), answered wherever the node
// they name runs: `exec LAB NODE`, `logs LAB NODE`, `capture LAB NODE:IF`, `link LAB NODE:IF`,
// `node LAB NODE`, `measure --from NODE`, and `ipvs LAB [NODE]` (the
// lab's directors' host when no node is named) run on that node's host
// (over ssh, with this terminal when there is one); `status` and `check` gather every host,
// and `trace` captures on every host from wherever it runs.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "labctl/lab/multihost.h"
#include "labctl/model/topology.h"

namespace labctl::cli {

/// The positional arguments of `args` (a command line without "labctl"), its command's
/// options and their values skipped, up to "--".
[[nodiscard]] std::vector<std::string> positional_arguments(const CLI::App& app,
                                                            const std::vector<std::string>& args);

/// main()'s hook: when the command line names a node of a lab across hosts that runs on
/// another host, replaces this process with ssh running the same command line there (only
/// returns with an exit status when that cannot start). nullopt: run it here.
[[nodiscard]] std::optional<int> relay_if_node_elsewhere(const CLI::App& app, const std::vector<std::string>& args);

/// The topology of a running lab across hosts, as this machine keeps it (a part's state, or
/// the controller's record); nullopt when it keeps none.
[[nodiscard]] std::optional<Topology> hosts_lab_topology(const std::string& lab);

}  // namespace labctl::cli
