#include "labctl/plan/needs.h"

#include <algorithm>

namespace labctl {

KernelNeeds kernel_needs(const Plan& plan) {
  KernelNeeds n;
  for (const auto& ps : plan.steps) {
    if (const auto* s = std::get_if<step::AddIpvsService>(&ps.step)) {
      n.ipvs = true;
      n.schedulers.push_back(s->service.scheduler);
      n.sctp = n.sctp || (s->service.fwmark == 0 && s->service.proto == Proto::Sctp);
    } else if (std::holds_alternative<step::StartIpvsSync>(ps.step)) {
      n.ipvs = true;
    } else if (std::holds_alternative<step::EnableIpip>(ps.step) ||
               std::holds_alternative<step::CreateIpip>(ps.step)) {
      n.ipip = true;
    } else if (std::holds_alternative<step::CreateVxlan>(ps.step)) {
      n.vxlan = true;
    } else if (std::holds_alternative<step::ApplyNftRules>(ps.step)) {
      n.nftables = true;
    } else if (const auto* imp = std::get_if<step::SetImpairment>(&ps.step)) {
      (needs_netem(imp->impair) ? n.netem : n.tbf) = true;
    }
  }
  std::sort(n.schedulers.begin(), n.schedulers.end());
  n.schedulers.erase(std::unique(n.schedulers.begin(), n.schedulers.end()), n.schedulers.end());
  return n;
}

}  // namespace labctl
