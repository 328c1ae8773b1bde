// What a plan needs from the kernel beyond namespaces, veth, bridges and sysctls (which
// every kernel labctl runs on has): IPVS, the schedulers and protocols its services name,
// IPIP, VXLAN, nftables, the qdiscs of impairments (netem, tbf). `up`
// probes these before its first step (lab/preflight.h), so a kernel that cannot finish
// the lab is told so before anything is made.
#pragma once

#include <string>
#include <vector>

#include "labctl/plan/plan.h"

namespace labctl {

struct KernelNeeds {
  bool ipvs = false;
  std::vector<std::string> schedulers;  ///< Sorted, each once.
  bool sctp = false;      ///< An SCTP service (CONFIG_IP_VS_PROTO_SCTP).
  bool ipip = false;
  bool vxlan = false;     ///< A switch stretched across hosts (CONFIG_VXLAN).
  bool nftables = false;  ///< Packet marks (nf_tables).
  bool netem = false;     ///< An impairment beyond a rate alone (CONFIG_NET_SCH_NETEM).
  bool tbf = false;       ///< A rate alone (CONFIG_NET_SCH_TBF).
  [[nodiscard]] bool any() const { return ipvs || ipip || vxlan || nftables || netem || tbf; }
};

[[nodiscard]] KernelNeeds kernel_needs(const Plan& plan);

}  // namespace labctl
