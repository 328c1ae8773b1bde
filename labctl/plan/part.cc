#include "labctl/plan/part.h"

#include <algorithm>
#include <map>
#include <set>
#include <variant>

#include <fmt/format.h>

#include "labctl/model/hosts.h"

namespace labctl {
namespace {

// The device a switch's step acts on, when it acts on one device ("" else).
std::string device_of(const Step& s) {
  return std::visit(
      [](const auto& st) -> std::string {
        using S = std::decay_t<decltype(st)>;
        if constexpr (std::is_same_v<S, step::SetMaster> || std::is_same_v<S, step::LinkUp> ||
                      std::is_same_v<S, step::SetImpairment>)
          return st.dev;
        else
          return {};
      },
      s);
}

// A locally administered unicast MAC from `key` (FNV-1a, 40 bits): every host derives the
// same one for the same interface, so the lab's MACs are planned once for all hosts.
std::string planned_mac(const std::string& key) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : key) h = (h ^ c) * 1099511628211ull;
  return fmt::format("02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", (h >> 32) & 0xff, (h >> 24) & 0xff, (h >> 16) & 0xff,
                     (h >> 8) & 0xff, h & 0xff);
}

}  // namespace

Plan plan_part(const Topology& t, const Plan& whole, const std::string& host) {
  if (!multi_host(t)) return whole;
  // (switch, port) -> the host of the node behind the port.
  std::map<std::pair<std::string, std::string>, std::string> port_host;
  for (const auto& n : t.nodes)
    for (const auto& i : n.interfaces)
      if (!i.sw.empty()) port_host[{i.sw, i.port}] = host_of(t, n);
  std::map<std::string, const StretchedSegment*> stretched;
  const auto segments = stretched_segments(t);
  for (const auto& seg : segments) stretched[seg.sw->name] = &seg;

  Plan part;
  part.lab = whole.lab;
  for (const auto& planned : whole.steps) {
    PlannedStep ps = planned;
    // Interfaces the topology gives no MAC get one planned here, the same on every host.
    if (auto* v = std::get_if<step::CreateVeth>(&ps.step)) {
      if (v->mac.empty()) v->mac = planned_mac(v->ns + "/" + v->name);
      if (v->peer_mac.empty()) v->peer_mac = planned_mac(v->peer_ns + "/" + v->peer_name);
    }
    const Switch* sw = t.find_switch(ps.node);
    if (!sw) {
      const Node* n = t.node(ps.node);
      if (n && host_of(t, *n) == host) part.steps.push_back(ps);
      continue;
    }
    const std::string dev = device_of(ps.step);
    if (auto it = port_host.find({sw->name, dev}); it != port_host.end()) {
      if (it->second == host) part.steps.push_back(ps);
      continue;
    }
    const auto hosts = switch_hosts(t, *sw);
    if (std::find(hosts.begin(), hosts.end(), host) == hosts.end()) continue;
    // The bridge comes up after its ports: the VXLAN device is one of them.
    const auto seg = stretched.find(sw->name);
    const auto* up = std::get_if<step::LinkUp>(&ps.step);
    if (seg != stretched.end() && up && up->dev == sw->name) {
      const Host* self = t.find_host(host);
      step::CreateVxlan vx;
      vx.ns = netns_name(t.name, sw->name);
      vx.name = std::string(kVxlanDevice);
      vx.vni = seg->second->vni;
      if (self && self->underlay) vx.local = *self->underlay;
      for (const auto& other : seg->second->hosts)
        if (other != host)
          if (const Host* h = t.find_host(other); h && h->underlay) vx.remotes.push_back(*h->underlay);
      vx.port = kVxlanPort;
      vx.mtu = sw->mtu;
      vx.mac = planned_mac(vx.ns + "/" + vx.name + "@" + host);
      vx.master = sw->name;
      part.steps.push_back({vx, sw->name,
                            "switch " + sw->name + " spans hosts: its frames reach the other hosts' copies "
                            "of it over VXLAN, broadcasts (ARP, VRRP) to each of them"});
      part.steps.push_back({step::LinkUp{vx.ns, vx.name}, sw->name, {}});
    }
    part.steps.push_back(ps);
  }
  return part;
}

}  // namespace labctl
