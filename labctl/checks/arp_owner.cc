#include "labctl/checks/check_kind.h"

namespace labctl::check_kind {

CheckResult arp_owner(Ctx& ctx, const Check& c) {
  Found f = find_service(ctx.t, c.service);
  if (!f.service) return failed(c, "no service " + c.service);
  auto vip = IpAddr::parse(c.to);
  if (!vip) return failed(c, "bad VIP " + c.to);
  std::string mac;
  Status st = ctx.in(c.from, [&]() -> Status {
    // Talking to the VIP makes the kernel resolve it; then read what it learned.
    (void)tcp_connect(*vip, c.port ? c.port : 80, ctx.deadline.probe());
    TRY_ASSIGN(Rtnl rtnl, Rtnl::open());
    TRY_ASSIGN(auto neigh, rtnl.neighbours(vip->family));
    for (const auto& nb : neigh)
      if (nb.dst == *vip && !nb.lladdr.empty()) mac = nb.lladdr;
    return {};
  });
  if (!st) return failed(c, st.error().str());
  if (mac.empty()) return failed(c, c.from + " has no ARP entry for " + c.to);
  for (const auto& n : ctx.t.nodes) {
    auto links = links_of(ctx, n.name);
    if (!links) continue;
    for (const auto& l : *links)
      if (l.mac == mac) {
        bool ok = &n == f.director;
        std::string detail = c.from + " resolves VIP " + c.to + " to " + mac + ", " + n.name + "'s " + l.name;
        if (!ok) detail += "; expected the director " + f.director->name +
                           " (does " + n.name + " answer ARP for the VIP? arp_ignore=1 hides it)";
        return verdict(c, ok, detail);
      }
  }
  return failed(c, c.from + " resolves VIP " + c.to + " to " + mac + ", which no lab node has");
}

}  // namespace labctl::check_kind
