// Director high availability with keepalived: which services keepalived programs instead
// of labctl, which addresses float between directors, and the rules a keepalived agent
// must keep (its interface, VRRP ids shared by a pair, its services' checks).
#pragma once

#include <string>
#include <vector>

#include "labctl/model/diag.h"
#include "labctl/model/segments.h"
#include "labctl/model/topology.h"

namespace labctl {

/// A node's keepalived agent and the node.
struct KeepalivedAgentRef {
  const Node* node = nullptr;
  const Agent* agent = nullptr;
};

/// Every keepalived agent of the lab that manages service `name`, in file order.
[[nodiscard]] std::vector<KeepalivedAgentRef> keepalived_agents_of(const Topology& t,
                                                                   const std::string& name);
/// Whether keepalived programs service `name` (some keepalived agent names it), so labctl
/// leaves its IPVS entries alone.
[[nodiscard]] bool keepalived_managed(const Topology& t, const std::string& name);
/// Whether `a` floats on `n`: one of the VIPs of a keepalived agent of `n`.
[[nodiscard]] bool keepalived_floats(const Node& n, const IpAddr& a);

namespace topo {
/// The keepalived rules (docs/topology.md, "keepalived"); the failover and health checks'
/// own are in their kinds' specs (check_specs.cc).
void check_keepalived(const Topology& t, const Net& net, Reporter& r);
}  // namespace topo

}  // namespace labctl
