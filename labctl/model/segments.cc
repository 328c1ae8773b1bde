#include "labctl/model/segments.h"

#include <sys/socket.h>

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

namespace labctl::topo {

std::string Net::segment(const Node& n, const Interface& i) const {
  if (!i.sw.empty()) return "switch:" + i.sw;
  if (i.peer_node.empty()) return "";
  std::string a = n.name + ":" + i.name, b = i.peer_node + ":" + i.peer_ifname;
  return "link:" + std::min(a, b) + "~" + std::max(a, b);
}

std::vector<std::pair<const Interface*, const Interface*>> Net::shared(const Node& a,
                                                                       const Node& b) const {
  std::vector<std::pair<const Interface*, const Interface*>> out;
  for (const auto& ia : a.interfaces)
    for (const auto& ib : b.interfaces) {
      auto s = segment(a, ia);
      if (!s.empty() && s == segment(b, ib)) out.emplace_back(&ia, &ib);
    }
  return out;
}

bool Net::has_device(const Node& n, const std::string& dev) const {
  auto names = device_names(n);
  return std::find(names.begin(), names.end(), dev) != names.end();
}

std::vector<std::string> Net::device_names(const Node& n) const {
  std::vector<std::string> out;
  for (const auto& i : n.interfaces) out.push_back(i.name);
  for (const auto& tun : n.tunnels) out.push_back(tun.name);
  out.push_back("lo");
  if (n.accept_ipip) out.push_back("tunl0");
  if (n.accept_ip6ip6) out.push_back("ip6tnl0");
  return out;
}

bool Net::owns(const Node& n, const IpAddr& a) const {
  for (const auto& i : n.interfaces)
    for (const auto& p : i.addresses)
      if (p.addr == a) return true;
  for (const auto* list : {&n.lo_addresses, &n.tunl0_addresses, &n.ip6tnl0_addresses})
    for (const auto& p : *list)
      if (p.addr == a) return true;
  for (const auto& tun : n.tunnels)
    for (const auto& p : tun.addresses)
      if (p.addr == a) return true;
  return false;
}

const Interface* Net::connected_interface(const Node& n, const IpAddr& a) const {
  const Interface* best = nullptr;
  int best_len = -1;
  for (const auto& i : n.interfaces)
    for (const auto& p : i.addresses)
      if (p.len < p.addr.max_prefix() && p.contains(a) && p.len > best_len) {
        best = &i;
        best_len = p.len;
      }
  return best;
}

std::vector<std::string> Net::connected_subnets(const Node& n) const {
  std::vector<std::string> out;
  for (const auto& i : n.interfaces)
    for (const auto& p : i.addresses)
      if (p.len < p.addr.max_prefix()) out.push_back(p.network().str() + " (" + i.name + ")");
  if (out.empty()) out.push_back("none");
  return out;
}

std::optional<IpAddr> Net::first_address(const Node& n, int family) const {
  for (const auto& i : n.interfaces)
    for (const auto& p : i.addresses)
      if (family == 0 || p.addr.family == family) return p.addr;
  return std::nullopt;
}

std::optional<Net::NextHop> Net::lookup(const Node& n, const IpAddr& dst) const {
  std::optional<NextHop> best;
  int best_len = -1;
  if (const Interface* i = connected_interface(n, dst)) {
    for (const auto& p : i->addresses)
      if (p.len < p.addr.max_prefix() && p.contains(dst)) best_len = std::max(best_len, p.len);
    best = NextHop{i, std::nullopt};
  }
  for (const auto& r : n.routes) {
    if (r.family != dst.family) continue;
    int len = r.to ? r.to->len : 0;
    if ((r.to && !r.to->contains(dst)) || len <= best_len) continue;
    NextHop hop{nullptr, r.via};
    if (!r.dev.empty()) {
      for (const auto& i : n.interfaces)
        if (i.name == r.dev) hop.out = &i;
      if (!hop.out && r.dev != "lo") {
        best = hop;  // through a tunnel: not followed
        best_len = len;
        continue;
      }
    } else if (r.via) {
      hop.out = connected_interface(n, *r.via);
    }
    if (!hop.out) continue;
    best = hop;
    best_len = len;
  }
  return best;
}

std::optional<long> Net::sysctl(const Node& n, const std::string& key) const {
  std::optional<long> v;
  for (const auto& s : n.sysctls)
    if (s.key == key) {
      char* end = nullptr;
      long x = std::strtol(s.value.c_str(), &end, 10);
      if (end && *end == '\0') v = x;
    }
  return v;
}

bool Net::forwards(const Node& n, int family) const {
  if (family == AF_INET6) return sysctl(n, "net.ipv6.conf.all.forwarding").value_or(0) == 1;
  return sysctl(n, "net.ipv4.ip_forward").value_or(0) == 1 ||
         sysctl(n, "net.ipv4.conf.all.forwarding").value_or(0) == 1;
}

std::string Net::trace(const Node& from, const IpAddr& dst, const Node& to) const {
  const Node* cur = &from;
  for (int hops = 0; hops < 32; ++hops) {
    if (owns(*cur, dst)) {
      if (cur == &to) return "";
      return fmt::format("the packet for {} ends at node {}, not {}", dst.str(), cur->name, to.name);
    }
    if (cur != &from && !forwards(*cur, dst.family))
      return fmt::format("node {} would have to forward it, but does not set {}", cur->name,
                         dst.v4() ? "net.ipv4.ip_forward = 1" : "net.ipv6.conf.all.forwarding = 1");
    auto hop = lookup(*cur, dst);
    if (!hop) return fmt::format("node {} has no route to {}", cur->name, dst.str());
    if (!hop->out) return "";  // leaves through an explicit tunnel: not followed, trusted
    IpAddr next = hop->gw.value_or(dst);
    const Node* nb = nullptr;
    std::string seg = segment(*cur, *hop->out);
    for (const auto& n : t_.nodes) {
      if (&n == cur) continue;
      for (const auto& i : n.interfaces) {
        if (seg.empty() || segment(n, i) != seg) continue;
        for (const auto& p : i.addresses)
          if (p.addr == next) nb = &n;
      }
    }
    if (!nb)
      return fmt::format("node {} sends it {} {} on {}, but no node there has that address",
                         cur->name, hop->gw ? "to gateway" : "directly to", next.str(), hop->out->name);
    cur = nb;
  }
  return fmt::format("the route to {} loops", dst.str());
}

}  // namespace labctl::topo
