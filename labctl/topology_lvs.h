// The LVS rules: real servers resolved to addresses, each reachable from its director the
// way its forwarding method needs, and warnings for the classic teaching mistakes.
#pragma once

#include <toml++/toml.h>

#include "labctl/topology.h"
#include "labctl/topology_diag.h"
#include "labctl/topology_net.h"

namespace labctl::topo {

void check_lvs(Topology& t, const toml::table& root, const Net& net, Reporter& r);

}  // namespace labctl::topo
