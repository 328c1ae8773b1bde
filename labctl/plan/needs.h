// What a plan needs from the kernel beyond namespaces, veth, bridges and sysctls (which
// every kernel labctl runs on has): IPVS and the schedulers its services name, IPIP. `up`
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
  bool ipip = false;
  [[nodiscard]] bool any() const { return ipvs || ipip; }
};

[[nodiscard]] KernelNeeds kernel_needs(const Plan& plan);

}  // namespace labctl
