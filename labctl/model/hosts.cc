#include "labctl/model/hosts.h"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "labctl/model/diag.h"

namespace labctl {

std::string local_host(const Topology& t) {
  for (const auto& h : t.hosts)
    if (h.ssh.empty()) return h.name;
  return std::string(kLocalHostName);
}

std::string host_of(const Topology& t, const Node& n) { return n.host.empty() ? local_host(t) : n.host; }

std::vector<std::string> switch_hosts(const Topology& t, const Switch& sw) {
  std::set<std::string> hosts;
  if (!sw.host.empty()) hosts.insert(sw.host);
  for (const auto& n : t.nodes)
    for (const auto& i : n.interfaces)
      if (i.sw == sw.name) hosts.insert(host_of(t, n));
  if (hosts.empty()) hosts.insert(local_host(t));
  return {hosts.begin(), hosts.end()};
}

std::vector<std::string> lab_hosts(const Topology& t) {
  std::set<std::string> used;
  for (const auto& n : t.nodes) used.insert(host_of(t, n));
  for (const auto& sw : t.switches)
    for (auto& h : switch_hosts(t, sw)) used.insert(h);
  std::vector<std::string> out;
  if (used.contains(std::string(kLocalHostName)) && !t.find_host(std::string(kLocalHostName)))
    out.emplace_back(kLocalHostName);
  for (const auto& h : t.hosts)
    if (used.contains(h.name)) out.push_back(h.name);
  return out;
}

uint32_t segment_vni(const Topology& t, const Switch& sw) {
  if (sw.vni) return sw.vni;
  uint32_t h = 2166136261u;
  for (unsigned char c : t.name + "/" + sw.name) h = (h ^ c) * 16777619u;
  constexpr uint32_t lo = 4096, hi = (1u << 24) - 1;
  return lo + h % (hi - lo + 1);
}

std::vector<StretchedSegment> stretched_segments(const Topology& t) {
  std::vector<StretchedSegment> out;
  if (!multi_host(t)) return out;
  for (const auto& sw : t.switches) {
    auto hosts = switch_hosts(t, sw);
    if (hosts.size() > 1) out.push_back({&sw, segment_vni(t, sw), std::move(hosts)});
  }
  return out;
}

int vxlan_overhead(const IpAddr& underlay) { return underlay.v6() ? 70 : 50; }

void place_auto(Topology& t) {
  if (t.hosts.empty()) return;
  const size_t n = t.nodes.size();
  // Nodes joined by a veth (peer links) go together: union-find over node indexes.
  std::vector<size_t> parent(n);
  for (size_t i = 0; i < n; ++i) parent[i] = i;
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < n; ++i) index[t.nodes[i].name] = i;
  auto root = [&](size_t i) {
    while (parent[i] != i) i = parent[i] = parent[parent[i]];
    return i;
  };
  for (size_t i = 0; i < n; ++i)
    for (const auto& itf : t.nodes[i].interfaces)
      if (auto it = index.find(itf.peer_node); it != index.end()) parent[root(i)] = root(it->second);
  std::map<size_t, std::vector<size_t>> groups;
  for (size_t i = 0; i < n; ++i) groups[root(i)].push_back(i);

  std::vector<std::string> hosts;
  for (const auto& h : t.hosts) hosts.push_back(h.name);
  std::map<std::string, size_t> load;
  std::map<std::string, std::set<std::string>> switch_on;  // switch -> hosts it has members on
  auto take = [&](const std::vector<size_t>& g, const std::string& h) {
    for (size_t i : g) {
      t.nodes[i].host = h;
      ++load[h];
      for (const auto& itf : t.nodes[i].interfaces)
        if (!itf.sw.empty()) switch_on[itf.sw].insert(h);
    }
  };
  std::vector<const std::vector<size_t>*> open;
  for (const auto& [r, g] : groups) {
    std::string placed;
    for (size_t i : g)
      if (!t.nodes[i].host.empty()) placed = t.nodes[i].host;
    if (placed.empty())
      open.push_back(&g);
    else
      take(g, placed);  // a group with a placed node follows it
  }
  std::stable_sort(open.begin(), open.end(), [](auto* a, auto* b) { return a->size() > b->size(); });
  const size_t room = (n + hosts.size() - 1) / hosts.size();
  for (const auto* g : open) {
    std::set<std::string> sws;
    for (size_t i : *g)
      for (const auto& itf : t.nodes[i].interfaces)
        if (!itf.sw.empty()) sws.insert(itf.sw);
    auto cost = [&](const std::string& h) {
      size_t c = 0;
      for (const auto& sw : sws)
        if (const auto& on = switch_on[sw]; !on.empty() && !on.contains(h)) ++c;
      return c;
    };
    std::string best;
    for (bool need_room : {true, false}) {
      for (const auto& h : hosts) {
        if (need_room && load[h] + g->size() > room) continue;
        if (best.empty() || std::pair(cost(h), load[h]) < std::pair(cost(best), load[best])) best = h;
      }
      if (!best.empty()) break;
    }
    take(*g, best);
  }
}

namespace topo {

void check_hosts(Topology& t, Reporter& r) {
  std::vector<std::string> names;
  for (const auto& h : t.hosts) names.push_back(h.name);
  auto known = [&](const std::string& name, Pos p, const std::string& what) {
    if (name.empty() || t.find_host(name)) return true;
    if (t.hosts.empty())
      r.error(p, fmt::format("{} is placed on host {}, but the topology has no [hosts]", what, plain(name)),
              "add a [hosts." + plain(name) + "] table with its ssh destination and underlay address "
              "(docs/multihost.md), or leave 'host' out");
    else
      r.error(p, fmt::format("{} is placed on host {}, which [hosts] does not name", what, plain(name)),
              did_you_mean(name, names, fmt::format("hosts: {}", fmt::join(names, ", "))));
    return false;
  };
  bool refs_ok = true;
  for (const auto& n : t.nodes) refs_ok &= known(n.host, n.keys.of("host", n.pos), "node " + plain(n.name));
  for (const auto& sw : t.switches)
    refs_ok &= known(sw.host, sw.keys.of("host", sw.pos), "switch " + plain(sw.name));
  if (t.place_auto && t.hosts.empty())
    r.error(t.place_pos, "place = \"auto\" spreads nodes over the hosts, but the topology has no [hosts]",
            "add [hosts.NAME] tables (docs/multihost.md), or leave 'place' out");
  if (t.hosts.empty() || !refs_ok) return;
  if (t.place_auto) place_auto(t);

  const Host* local = nullptr;
  for (const auto& h : t.hosts) {
    if (!h.ssh.empty()) continue;
    if (local)
      r.error(h.pos,
              fmt::format("hosts {} and {} both have no 'ssh': only one can be the machine labctl runs on",
                          plain(local->name), plain(h.name)),
              "give every other host its ssh destination");
    else
      local = &h;
  }

  // A veth has both ends on one kernel.
  for (const auto& n : t.nodes)
    for (const auto& i : n.interfaces) {
      const Node* peer = i.peer_node.empty() ? nullptr : t.node(i.peer_node);
      if (!peer || n.name > peer->name) continue;
      const std::string a = host_of(t, n), b = host_of(t, *peer);
      if (a != b)
        r.error(i.keys.of("peer", i.pos),
                fmt::format("the link {}:{} - {}:{} joins host {} to host {}: a veth pair cannot leave its machine",
                            plain(n.name), plain(i.name), plain(peer->name), plain(i.peer_ifname), plain(a),
                            plain(b)),
                "connect them through a switch: a switch whose members are on several hosts is stretched "
                "over VXLAN (docs/multihost.md)");
    }

  std::map<uint32_t, const Switch*> vnis;
  std::map<std::string, const Host*> underlays;
  for (const auto& h : t.hosts)
    if (h.underlay) {
      auto [it, fresh] = underlays.emplace(h.underlay->str(), &h);
      if (!fresh)
        r.error(h.keys.of("underlay", h.pos),
                fmt::format("hosts {} and {} have the same underlay address {}", plain(it->second->name),
                            plain(h.name), h.underlay->str()),
                "each host's own address on the network between the hosts");
    }
  for (const auto& seg : stretched_segments(t)) {
    const Switch& sw = *seg.sw;
    const std::string spans = fmt::format("switch {} spans hosts {}", plain(sw.name), fmt::join(seg.hosts, ", "));
    auto [it, fresh] = vnis.emplace(seg.vni, &sw);
    if (!fresh)
      r.error(sw.keys.of("vni", sw.pos),
              fmt::format("switches {} and {} have the same VXLAN id {}", plain(it->second->name), plain(sw.name),
                          seg.vni),
              "set another vni = <1..16777215> on one of them");
    int family = 0, underlay_mtu = 1 << 30, overhead = 0;
    for (const auto& name : seg.hosts) {
      const Host* h = t.find_host(name);
      if (!h || !h->underlay) {
        r.error(h ? h->pos : sw.pos,
                fmt::format("{}: host {} needs an 'underlay' address, the one its VXLAN packets use", spans,
                            plain(name)),
                h ? "add underlay = \"<its address on the network between the hosts>\""
                  : "add a [hosts." + plain(name) + "] table without 'ssh' and with underlay = \"...\"");
        continue;
      }
      if (family && family != h->underlay->family)
        r.error(h->keys.of("underlay", h->pos),
                fmt::format("{}: host {}'s underlay address {} is not of the other hosts' family", spans,
                            plain(name), h->underlay->str()),
                "give every host of a stretched switch an underlay address of one family");
      family = h->underlay->family;
      underlay_mtu = std::min(underlay_mtu, h->mtu);
      overhead = std::max(overhead, vxlan_overhead(*h->underlay));
    }
    for (const auto& n : t.nodes)
      for (const auto& i : n.interfaces)
        if (i.sw == sw.name && i.port == kVxlanDevice)
          r.error(i.keys.of("port", i.pos),
                  fmt::format("bridge port name {} of {}:{} is the name of the VXLAN device of {}", i.port,
                              plain(n.name), plain(i.name), spans),
                  "set another port = \"...\"");
    if (!overhead) continue;
    int lab_mtu = sw.mtu ? sw.mtu : 1500;
    for (const auto& n : t.nodes)
      for (const auto& i : n.interfaces)
        if (i.sw == sw.name && i.mtu) lab_mtu = std::max(lab_mtu, i.mtu);
    if (underlay_mtu - overhead < lab_mtu)
      r.warning(sw.pos,
                fmt::format("{} over VXLAN: a {}-byte frame becomes a {}-byte packet on an underlay of MTU {}, "
                            "which the hosts must fragment",
                            spans, lab_mtu, lab_mtu + overhead, underlay_mtu),
                fmt::format("set mtu = {} on the switch, or raise the underlay's MTU and say so with the "
                            "hosts' mtu",
                            underlay_mtu - overhead));
  }
}

}  // namespace topo
}  // namespace labctl
