#include "labctl/model/ipvs_sync.h"

#include <fmt/format.h>

#include <algorithm>

#include "labctl/base/display.h"

namespace labctl {

const Agent* sync_keepalived(const Node& n) {
  for (const auto& a : n.agents)
    if (a.keepalived && a.keepalived->vrrp && a.keepalived->config.empty()) return &a;
  return nullptr;
}

bool sync_by_keepalived(const Node& n) {
  return n.ipvs_sync && n.ipvs_sync->role.empty() && sync_keepalived(n);
}

namespace topo {
namespace {

// Whether the node's daemon sends (a master), receives (a backup), or both in turn (VRRP).
bool sends(const IpvsSync& s) { return s.role != "backup"; }
bool receives(const IpvsSync& s) { return s.role != "master"; }

const Interface* find_interface(const Node& n, const std::string& name) {
  for (const auto& i : n.interfaces)
    if (i.name == name) return &i;
  return nullptr;
}

}  // namespace

void check_ipvs_sync(const Topology& t, const Net& net, Reporter& r) {
  for (const auto& n : t.nodes) {
    if (!n.ipvs_sync) continue;
    const IpvsSync& s = *n.ipvs_sync;
    const std::string where = fmt::format("ipvs_sync of node {}", plain(n.name));
    const Agent* ka = sync_keepalived(n);
    if (s.role.empty() && !ka) {
      r.error(s.pos, fmt::format("{} has no role, and no keepalived agent with a VRRP instance runs on {} to decide it",
                                 where, plain(n.name)),
              "add role = \"master\" on the director that takes the connections and role = \"backup\" on the one "
              "that learns them (or \"both\")");
    } else if (!s.role.empty() && ka) {
      r.error(s.keys.of("role", s.pos),
              fmt::format("{} has role {}, but keepalived agent {} runs the sync daemon here, as its VRRP state says",
                          where, shown(s.role), plain(ka->name)),
              "remove role: keepalived starts the master daemon while it is MASTER and the backup daemon while "
              "it is BACKUP (lvs_sync_daemon)");
    }
    if (s.interface.empty()) continue;
    const Interface* i = find_interface(n, s.interface);
    if (!i) {
      std::vector<std::string> names;
      for (const auto& x : n.interfaces) names.push_back(x.name);
      r.error(s.keys.of("interface", s.pos),
              fmt::format("{} sends on interface {}, which node {} does not have", where, shown(s.interface),
                          plain(n.name)),
              did_you_mean(s.interface, names, fmt::format("its interfaces: {}", fmt::join(names, ", "))));
      continue;
    }
    if (std::none_of(i->addresses.begin(), i->addresses.end(), [](const IpPrefix& p) { return p.addr.v4(); })) {
      r.error(s.keys.of("interface", s.pos),
              fmt::format("{}: interface {} has no IPv4 address, and the sync daemon multicasts over IPv4 from it",
                          where, plain(s.interface)),
              "give it an IPv4 address, or sync over another interface that has one");
      continue;
    }
    if (!sends(s)) continue;
    // Somebody on that segment must listen, with the same id (or 0, which takes every id).
    const std::string seg = net.segment(n, *i);
    bool heard = false;
    for (const auto& m : t.nodes) {
      if (&m == &n || !m.ipvs_sync || !receives(*m.ipvs_sync)) continue;
      const Interface* mi = find_interface(m, m.ipvs_sync->interface);
      if (mi && net.segment(m, *mi) == seg && (m.ipvs_sync->id == s.id || m.ipvs_sync->id == 0)) heard = true;
    }
    if (!heard)
      r.warning(s.pos,
                fmt::format("{}: no other director on {}'s segment runs a backup sync daemon with id {}, so no "
                            "director learns {}'s connections",
                            where, plain(s.interface), s.id, plain(n.name)),
                "give the backup director ipvs_sync with an interface on the same segment and the same id");
  }
}

}  // namespace topo
}  // namespace labctl
