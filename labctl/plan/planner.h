// The planner: a pure function from a resolved topology to the ordered steps that build it.
// No system access; the same plan feeds the netlink executor, --dry-run and explain.
#pragma once

#include "labctl/plan/plan.h"
#include "labctl/model/topology.h"

namespace labctl {

/// The steps that build `t`, in an order a real kernel accepts (see planner.cc).
[[nodiscard]] Plan make_plan(const Topology& t);

/// When a sysctl can be written: namespace-wide keys right away, per-device keys once the
/// device exists, IPVS keys once ip_vs is loaded (the first service loads it).
enum class SysctlPhase { Namespace, Device, Ipvs };
[[nodiscard]] SysctlPhase sysctl_phase(const std::string& key);

}  // namespace labctl
