// `labctl explain`: a plan told to a student, node by node. Each node and switch gets a
// short introduction (its role and addresses) and then its own steps with their whys.
#pragma once

#include <string>

#include "labctl/plan/plan.h"
#include "labctl/model/topology.h"

namespace labctl {

/// The steps of `p` grouped by node (then switch), in plan order within each group.
[[nodiscard]] std::string render_explain(const Topology& t, const Plan& p);

}  // namespace labctl
