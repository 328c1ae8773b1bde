// A lab spread over several hosts (model/hosts.h, docs/multihost.md) is planned whole, once,
// from the one topology every host reads; each host then carries out its part: the steps of
// its nodes, of its copy of each switch it is on, and the VXLAN device that joins that copy
// to the others. Every host computes the same whole plan, so names, VNIs and addresses agree
// without a word exchanged.
#pragma once

#include <string>

#include "labctl/model/topology.h"
#include "labctl/plan/plan.h"

namespace labctl {

/// The steps `host` carries out of `whole` (make_plan(t)), in the same order, with a
/// create-vxlan and its link-up before each stretched switch's bridge comes up, and a MAC
/// (locally administered, derived from the lab's, namespace's and interface's names) for
/// every interface the topology gives none. For a lab without [hosts], `whole` itself.
[[nodiscard]] Plan plan_part(const Topology& t, const Plan& whole, const std::string& host);

}  // namespace labctl
