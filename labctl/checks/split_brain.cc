// The cause of a keepalived split brain: routers of one VRRP pair that run on different
// segments never hear each other's adverts, so each is MASTER and holds the VIP. The fix
// is the interface on the clients' segment, where the VIP lives.
#include <algorithm>

#include "labctl/checks/diagnose.h"
#include "labctl/kernel/netns.h"
#include "labctl/kernel/rtnl.h"
#include "labctl/model/keepalived.h"
#include "labctl/model/segments.h"

namespace labctl {

std::vector<std::string> vip_holders(const Topology& t, const Check& c) {
  std::vector<std::string> out;
  for (const auto& r : keepalived_agents_of(t, c.service)) {
    if (std::find(out.begin(), out.end(), r.node->name) != out.end()) continue;
    auto ns = open_netns(netns_name(t.name, r.node->name));
    if (!ns) continue;
    bool has = false;
    (void)run_in_netns(ns->get(), [&]() -> Status {
      TRY_ASSIGN(Rtnl rtnl, Rtnl::open());
      TRY_ASSIGN(auto addrs, rtnl.addresses());
      for (const auto& a : addrs) has = has || a.prefix.addr == c.to;
      return {};
    });
    if (has) out.push_back(r.node->name);
  }
  return out;
}

std::vector<Cause> split_brain_causes(const Topology& t, const Check& c,
                                      const std::vector<std::string>& holders) {
  std::vector<Cause> out;
  if (holders.size() < 2) return out;
  const Node* from = t.node(c.from);
  if (!from) return out;
  topo::Net net(t);
  // The segments the client reaches the directors on: the VIP must be announced there.
  std::vector<std::string> client_segments;
  for (const auto& i : from->interfaces) client_segments.push_back(net.segment(*from, i));
  for (const auto& r : keepalived_agents_of(t, c.service)) {
    if (std::find(holders.begin(), holders.end(), r.node->name) == holders.end()) continue;
    const auto& k = *r.agent->keepalived;
    if (!k.vrrp) continue;
    const Interface* vrrp_if = nullptr;
    const Interface* client_if = nullptr;
    for (const auto& i : r.node->interfaces) {
      if (i.name == k.vrrp->interface) vrrp_if = &i;
      if (!client_if && std::find(client_segments.begin(), client_segments.end(),
                                  net.segment(*r.node, i)) != client_segments.end())
        client_if = &i;
    }
    if (!vrrp_if || !client_if || vrrp_if == client_if) continue;
    out.push_back({r.node->name,
                   "keepalived " + r.node->name + ":" + r.agent->name + " runs VRRP router " +
                       std::to_string(k.vrrp->virtual_router_id) + " on " + vrrp_if->name + " (" +
                       net.segment(*r.node, *vrrp_if) + "), not on " + client_if->name + " (" +
                       net.segment(*r.node, *client_if) + ") where " + c.from +
                       " reaches the VIP and the other routers advertise: it hears no MASTER, so "
                       "it is MASTER too "
                       "(split brain)",
                   "[nodes." + r.node->name + ".agents." + r.agent->name + "] interface = \"" +
                       client_if->name + "\""});
  }
  return out;
}

}  // namespace labctl
