#include "labctl/lab/preflight.h"

#include <optional>

#include "labctl/kernel/features.h"
#include "labctl/plan/needs.h"

namespace labctl {

Status check_kernel_can_build(const Plan& plan) {
  const KernelNeeds needs = kernel_needs(plan);
  std::vector<std::string> missing;
  std::optional<Error> first;  // the kernel's own answer to the first failed probe
  auto note = [&](std::string what, const Status& st) {
    missing.push_back(std::move(what));
    if (!first) first = st.error();
  };
  // IPVS first: its scheduler autoload must not race a namespace's cleanup (probe_ipvs).
  if (needs.ipvs) {
    IpvsProbe p = probe_ipvs(needs.schedulers, needs.sctp);
    if (!p.family) {
      note("IPVS (CONFIG_IP_VS, module ip_vs)", p.family);
    } else {
      for (size_t i = 0; i < needs.schedulers.size(); ++i)
        if (!p.schedulers[i])
          note("IPVS scheduler " + needs.schedulers[i] + " (module ip_vs_" + needs.schedulers[i] + ")",
               p.schedulers[i]);
      if (!p.sctp) note("SCTP in IPVS (CONFIG_IP_VS_PROTO_SCTP)", p.sctp);
    }
  }
  if (needs.ipip)
    if (Status st = probe_ipip(); !st) note("IPIP tunnels (CONFIG_NET_IPIP, module ipip)", st);
  if (needs.vxlan)
    if (Status st = probe_vxlan(); !st) note("VXLAN (CONFIG_VXLAN, module vxlan) for switches across hosts", st);
  if (needs.nftables)
    if (Status st = probe_nftables(); !st) note("nftables (CONFIG_NF_TABLES, CONFIG_NF_TABLES_INET)", st);
  if (needs.netem)
    if (Status st = probe_netem(); !st)
      note("netem (CONFIG_NET_SCH_NETEM, module sch_netem) for impairments beyond a rate", st);
  if (needs.tbf)
    if (Status st = probe_tbf(); !st) note("tbf (CONFIG_NET_SCH_TBF, module sch_tbf) for rate impairments", st);
  if (missing.empty()) return {};
  std::string list;
  for (size_t i = 0; i < missing.size(); ++i)
    list += (i == 0 ? "" : i + 1 == missing.size() ? " and " : ", ") + missing[i];
  return tl::unexpected(Error{"this kernel cannot build lab " + plan.lab + ": it has no " + list +
                   " (probe: " + first->message + ")",
               first->errnum,
               first->kernel,
               "nothing was made. Without --vm=never, `labctl up` runs the lab in a micro-VM "
               "whose kernel has them (docs/vm.md); `labctl doctor` lists what this "
               "kernel has"});
}

}  // namespace labctl
