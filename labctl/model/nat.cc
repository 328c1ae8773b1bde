#include "labctl/model/nat.h"

#include <fmt/format.h>

#include <algorithm>

#include "labctl/base/display.h"

namespace labctl::topo {
namespace {

bool has_port(const std::vector<uint16_t>& ports, uint16_t p) {
  return std::find(ports.begin(), ports.end(), p) != ports.end();
}

}  // namespace

bool nat_matches(const NatRule& r, const Flow& f) {
  if (r.proto && r.proto != f.proto) return false;
  // A client's source port is its own choice: a rule on it covers some connections only.
  if (!r.sport.empty()) return false;
  if (!r.dport.empty() && (!f.dport || !has_port(r.dport, f.dport))) return false;
  if (r.src && (r.src->addr.family != f.src.addr.family || r.src->len > f.src.len ||
                !r.src->contains(f.src.addr)))
    return false;
  if (r.dst && !r.dst->contains(f.dst)) return false;
  if (r.to && r.to->family != f.dst.family) return false;  // an snat/dnat of the other family
  if (!r.iif.empty() && r.iif != f.iif) return false;
  if (!r.oif.empty() && r.oif != f.oif) return false;
  return true;
}

std::optional<std::size_t> nat_rule_for(const Node& n, const Flow& f, bool source_nat) {
  for (std::size_t k = 0; k < n.nat.size(); ++k)
    if (n.nat[k].source_nat() == source_nat && nat_matches(n.nat[k], f)) return k;
  return std::nullopt;
}

std::optional<IpAddr> source_on(const Interface& out, const IpAddr& next) {
  std::optional<IpAddr> first;
  for (const auto& a : out.addresses) {
    if (a.addr.family != next.family) continue;
    if (a.len < a.addr.max_prefix() && a.contains(next)) return a.addr;
    if (!first) first = a.addr;
  }
  return first;
}

std::optional<IpAddr> source_at(const Net& net, const Topology& t, const Node& from,
                                const IpAddr& dst, std::optional<Proto> proto, uint16_t dport,
                                const Node& to) {
  const Node* cur = &from;
  const Interface* in = nullptr;
  std::optional<IpAddr> src;
  for (int hops = 0; hops < 32; ++hops) {
    if (net.owns(*cur, dst)) return cur == &to && src ? src : std::nullopt;
    if (cur != &from && !net.forwards(*cur, dst.family)) return std::nullopt;
    auto hop = net.lookup(*cur, dst);
    if (!hop || !hop->out) return std::nullopt;
    const IpAddr next = hop->gw.value_or(dst);
    if (!src) src = source_on(*hop->out, next);
    if (!src) return std::nullopt;
    Flow f{proto,         IpPrefix{*src, src->max_prefix()}, dst, dport, in ? in->name : "",
           hop->out->name};
    if (auto k = nat_rule_for(*cur, f, true)) {
      const NatRule& r = cur->nat[*k];
      auto rewritten = r.type == NatType::Snat ? r.to : source_on(*hop->out, next);
      if (!rewritten) return std::nullopt;  // masquerade without an address: the kernel drops it
      src = rewritten;
    }
    const Node* nb = nullptr;
    const std::string seg = net.segment(*cur, *hop->out);
    for (const auto& n : t.nodes) {
      if (&n == cur || seg.empty()) continue;
      for (const auto& i : n.interfaces)
        if (net.segment(n, i) == seg)
          for (const auto& p : i.addresses)
            if (p.addr == next) {
              nb = &n;
              in = &i;
            }
    }
    if (!nb) return std::nullopt;
    cur = nb;
  }
  return std::nullopt;
}

bool takes_by_redirect(const Net& net, const Node& n, const IpAddr& vip, std::optional<Proto> proto,
                       uint16_t port, const std::string& iif) {
  // The client's address is not known: a rule limited to some sources is not counted on.
  Flow f{proto, IpPrefix{IpAddr{vip.family, {}}, 0}, vip, port, iif, ""};
  auto k = nat_rule_for(n, f, false);
  if (!k) return false;
  const NatRule& r = n.nat[*k];
  if (r.type == NatType::Dnat) return r.to && net.owns(n, *r.to);
  // A redirect sends the packet to the first address of the interface it came in on;
  // an interface without one (a bare tunl0) makes the kernel drop it.
  auto dev = std::find_if(n.interfaces.begin(), n.interfaces.end(),
                          [&](const Interface& i) { return i.name == iif; });
  if (dev != n.interfaces.end())
    return std::any_of(dev->addresses.begin(), dev->addresses.end(),
                       [&](const IpPrefix& a) { return a.addr.family == vip.family; });
  if (iif == "tunl0")
    return std::any_of(n.tunl0_addresses.begin(), n.tunl0_addresses.end(),
                       [&](const IpPrefix& a) { return a.addr.family == vip.family; });
  return false;
}

// The home router's classic slip: a masquerade (or snat) for a network on the interface that
// network sits on. The node forwards that network's packets out by another interface, so the
// rule never matches them and they leave untranslated (and their answers find no way back).
void source_nat_on_its_own_side(const Node& n, const NatRule& r, const std::string& where, Reporter& rep) {
  if (!r.source_nat() || r.oif.empty() || !r.src) return;
  for (const auto& i : n.interfaces) {
    if (i.name != r.oif) continue;
    for (const auto& a : i.addresses)
      if (a.addr.family == r.src->addr.family && a.len <= r.src->len && a.network().contains(r.src->addr))
        rep.warning(r.keys.of("oif", r.pos),
                    fmt::format("{} translates packets from {} leaving by {}, the interface that network is on: "
                                "node {} forwards its packets out by another interface, so none is translated",
                                where, r.src->network().str(), r.oif, plain(n.name)),
                    "name the interface the packets leave by towards the outside (oif)");
  }
}

void check_nat(const Topology& t, const Net& net, Reporter& rep) {
  for (const auto& n : t.nodes) {
    for (std::size_t k = 0; k < n.nat.size(); ++k) {
      const NatRule& r = n.nat[k];
      const std::string where = fmt::format("nat rule {} of node {}", k + 1, plain(n.name));
      for (const auto& [key, dev] : {std::pair{"iif", &r.iif}, std::pair{"oif", &r.oif}})
        if (!dev->empty() && !net.has_device(n, *dev))
          rep.error(r.keys.of(key, r.pos),
                    fmt::format("{} matches {} {}, which node {} does not have", where, key,
                                shown(*dev), plain(n.name)),
                    did_you_mean(*dev, net.device_names(n)));
      source_nat_on_its_own_side(n, r, where, rep);
      if (!r.to) continue;
      const Pos to_pos = r.keys.of("to", r.pos);
      if (r.type == NatType::Snat && !net.owns(n, *r.to))
        rep.warning(
            to_pos,
            fmt::format("{} rewrites sources to {}, which is not an address of node {}: replies go "
                        "to whoever holds it, not back here to be rewritten",
                        where, r.to->str(), plain(n.name)),
            "give one of the node's own addresses, or use type = \"masquerade\"");
      if (r.type == NatType::Dnat && !net.owns(n, *r.to)) {
        if (!t.owner_of(*r.to))
          rep.warning(
              to_pos,
              fmt::format("{} sends packets to {}, which no node of the lab has on an interface",
                          where, r.to->str()),
              "a lab is closed: dnat to an address of one of its nodes");
        else if (!net.forwards(n, r.to->family))
          rep.error(
              to_pos,
              fmt::format("{} sends packets on to {}, but node {} does not forward", where,
                          r.to->str(), plain(n.name)),
              fmt::format("add sysctl {} = 1: after dnat the packet is routed onwards",
                          r.to->v4() ? "net.ipv4.ip_forward" : "net.ipv6.conf.all.forwarding"));
      }
    }
  }
}

}  // namespace labctl::topo
