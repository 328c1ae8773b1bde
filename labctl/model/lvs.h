// The LVS rules: real servers resolved to addresses, each reachable from its director the
// way its forwarding method needs, and warnings for the classic teaching mistakes.
#pragma once

#include "labctl/model/topology.h"
#include "labctl/model/diag.h"
#include "labctl/model/segments.h"

namespace labctl::topo {

void check_lvs(Topology& t, const Net& net, Reporter& r);

}  // namespace labctl::topo
