// Probes of what the running kernel can do for labs. Each probe works in a throwaway
// network namespace of its own (run_in_new_netns), so the root namespace never changes
// and nothing is left behind: the namespace vanishes with its last socket.
#pragma once

#include <string>
#include <vector>

#include "labctl/base/error.h"

namespace labctl {

/// IPVS schedulers labs may name, as ipvsadm spells them.
inline const std::vector<std::string> kIpvsSchedulers = {
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh"};

/// A new network namespace can be created.
[[nodiscard]] Status probe_netns();
/// A veth pair can be created.
[[nodiscard]] Status probe_veth();
/// A bridge can be created.
[[nodiscard]] Status probe_bridge();
struct IpvsProbe {
  Status family;                   ///< the "IPVS" generic netlink family resolves
  std::vector<Status> schedulers;  ///< one per requested scheduler, in order
  Status sctp;                     ///< an SCTP service can be added (ok when not asked)
};

/// Resolves the "IPVS" family (which autoloads ip_vs where it can), then adds and deletes
/// a virtual service with each scheduler (which autoloads ip_vs_NAME). All in one
/// namespace, and best run before anything else destroys a namespace: a scheduler that
/// registers per-netns state (lblc, lblcr) deadlocks the kernel when its autoload (under
/// IPVS's service mutex) races the cleanup of a dying namespace (which wants that mutex).
/// With `sctp`, also adds and deletes an SCTP service (CONFIG_IP_VS_PROTO_SCTP).
[[nodiscard]] IpvsProbe probe_ipvs(const std::vector<std::string>& schedulers, bool sctp = false);

/// An ipip tunnel link can be created (which autoloads ipip where it can).
[[nodiscard]] Status probe_ipip();
/// A VXLAN device can be created (which autoloads vxlan where it can): switches stretched
/// across hosts need it.
[[nodiscard]] Status probe_vxlan();
/// A netem qdisc can be set (which autoloads sch_netem where it can): on lo, in a
/// throwaway namespace. Impairments other than a rate alone need it.
[[nodiscard]] Status probe_netem();
/// A tbf qdisc can be set (sch_tbf): what a rate alone uses.
[[nodiscard]] Status probe_tbf();
/// An nftables table can be created (nf_tables, with the inet family), through libnftables.
[[nodiscard]] Status probe_nftables();
/// The per-namespace sysctls labs set exist: ip_forward, conf/all/{rp_filter,arp_ignore,
/// arp_announce}.
[[nodiscard]] Status probe_sysctls();

}  // namespace labctl
