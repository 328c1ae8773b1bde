// IPVS connection synchronisation (`ipvs_sync` on a director): who runs the kernel's sync
// daemon, labctl (a role written) or the node's keepalived (no role: the role follows its
// VRRP state), and the rules the key keeps.
#pragma once

#include "labctl/model/diag.h"
#include "labctl/model/segments.h"
#include "labctl/model/topology.h"

namespace labctl {

/// The keepalived agent of `n` that runs the node's sync daemon: one whose keepalived.conf
/// labctl generates with a VRRP instance (`lvs_sync_daemon IF INSTANCE` then ties the role
/// to it); nullptr when the node has none.
[[nodiscard]] const Agent* sync_keepalived(const Node& n);
/// Whether keepalived runs the node's sync daemon (it has `ipvs_sync` without a role and a
/// sync_keepalived agent); labctl then plans no sync step for it.
[[nodiscard]] bool sync_by_keepalived(const Node& n);

namespace topo {
/// The interface exists and has an IPv4 address, a role is written exactly when no
/// keepalived agent decides it, and (a warning) a master has a backup on its segment that
/// takes its sync id.
void check_ipvs_sync(const Topology& t, const Net& net, Reporter& r);
}  // namespace topo

}  // namespace labctl
