#include "labctl/model/lvs.h"

#include <sys/socket.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "labctl/base/display.h"
#include "labctl/model/nat.h"
#include "labctl/model/keepalived.h"

namespace labctl::topo {
namespace {

// How IPVS identifies the service, as ipvsadm shows it: "tcp 10.0.0.1:80", "fwmark 7 (IPv4)".
std::string service_id(const VirtualService& s) {
  if (s.fwmark) return fmt::format("fwmark {} (IPv{})", s.fwmark, s.vip.v6() ? 6 : 4);
  return fmt::format("{} {}", to_string(s.proto),
                     s.vip.v6() ? fmt::format("[{}]:{}", s.vip.str(), s.port)
                                : fmt::format("{}:{}", s.vip.str(), s.port));
}

// How messages name a forwarding method: "DR real server", as ipvsadm's man page and the
// course write it, the same in every message.
const char* method_word(FwdMethod m) {
  switch (m) {
    case FwdMethod::Nat: return "NAT";
    case FwdMethod::Dr: return "DR";
    case FwdMethod::Tun: return "TUN";
    case FwdMethod::Local: return "local";
  }
  return "?";
}

// The sysctl setting of `key` the kernel ends up with (the last one written), or nullptr.
const Sysctl* find_sysctl(const Node& n, const std::string& key) {
  const Sysctl* out = nullptr;
  for (const auto& s : n.sysctls)
    if (s.key == key) out = &s;
  return out;
}

// Where net.ipv4.conf.*.<what> gets `value` on interface `dev`: the device's own key, else
// conf.all, else conf.default; `fallback` when the lab sets none of them to it.
Pos conf_pos(const Node& n, const std::string& dev, const std::string& what, long value,
             Pos fallback) {
  for (const std::string& d : {dev, std::string("all"), std::string("default")})
    if (const Sysctl* s = find_sysctl(n, "net.ipv4.conf." + d + "." + what);
        s && s->value == std::to_string(value))
      return s->pos;
  return fallback;
}

// Where to blame a node's way back to `dst`: the route of its own that the kernel would take
// (longest prefix, the default route last), else its `routes` key, else the node itself.
// A NAT real server's missing or wrong route back is a fault of the real server, not of the
// director's real_servers line that names it.
Pos route_back_pos(const Node& n, const IpAddr& dst) {
  const Route* best = nullptr;
  for (const auto& r : n.routes) {
    if (r.family != dst.family || (r.to && !r.to->contains(dst))) continue;
    const int len = r.to ? r.to->len : -1;
    if (!best || len > (best->to ? best->to->len : -1)) best = &r;
  }
  if (best) return best->keys.of("via", best->pos);
  return n.keys.of("routes", n.pos);
}

class LvsRules {
 public:
  LvsRules(Topology& t, const Net& net, Reporter& r) : t_(t), net_(net), r_(r) {}
  void run();

 private:
  struct Ctx {
    const Node& director;
    const VirtualService& svc;
  };
  void service(const Node& director, VirtualService& s);
  bool resolve(const Ctx& c, RealServer& rs, std::size_t idx);
  bool local(const Ctx& c, RealServer& rs, const std::string& where);
  void marks(const Node& n);
  void dr(const Ctx& c, const RealServer& rs, const Node& rsn, Pos p);
  void nat(const Ctx& c, const RealServer& rs, const Node& rsn, Pos p);
  void tun(const Ctx& c, const RealServer& rs, const Node& rsn, Pos p);
  /// A NAT director on one network with its real servers and clients: it forwards the
  /// replies out the interface they came in on, and the kernel then sends ICMP redirects.
  void one_network_redirects(const Ctx& c, const RealServer& rs);
  void hidden_vip_warnings(const Ctx& c, const Node& rsn, FwdMethod m, Pos p);
  /// Whether the director source-NATs the service's connections from `clients` to the real
  /// server, and the real server's reply to that source comes back to the director.
  bool director_snat(const Ctx& c, const RealServer& rs, const Node& rsn, const IpPrefix& clients);
  /// Clients beyond the director's own subnets (behind routers): the real server must
  /// route the source they arrive with back through the director too.
  void routed_clients(const Ctx& c, const RealServer& rs, const Node& rsn);
  /// Whether the real server takes the VIP by a redirect rule instead of holding it.
  bool redirected(const Ctx& c, const Node& rsn, FwdMethod m, const IpAddr& vip) const;
  void arp_ignore_warnings(const Node& rsn, const IpAddr& vip, FwdMethod m, Pos p);
  void dr_rp_filter(const Ctx& c, const RealServer& rs, const Node& rsn, const Interface& in,
                    Pos p);
  void tun6(const Ctx& c, const RealServer& rs, const Node& rsn, Pos p);
  /// The value of net.ipv4.conf.<dev>.<what> the kernel uses on an interface labctl creates:
  /// the larger of conf.all and the device's own, which is conf.default unless the lab sets
  /// conf.<dev> (namespace-wide sysctls are set before any interface exists).
  long effective_conf(const Node& n, const std::string& dev, const std::string& what) const;
  std::string director_addr_facing(const Node& director, const Node& rsn) const;
  /// An error, or a warning when the lab is an exercise that breaks `rule` on purpose.
  void rule_error(const char* rule, Pos p, std::string message, std::string hint);

  Topology& t_;
  const Net& net_;
  Reporter& r_;
  std::set<std::pair<std::string, std::string>> warned_;  ///< (node, warning) said once.
};

void LvsRules::rule_error(const char* rule, Pos p, std::string message, std::string hint) {
  if (t_.exercise && std::find(t_.exercise->breaks.begin(), t_.exercise->breaks.end(), rule) !=
                         t_.exercise->breaks.end())
    r_.warning(p, message + fmt::format(" (broken on purpose: the exercise breaks rule {})", rule),
               std::move(hint));
  else
    r_.error(p, std::move(message), std::move(hint));
}

void LvsRules::run() {
  // The same VIP, port and protocol on two directors is allowed by the kernel (each has
  // its own IPVS table) and a lab may mean it (a failover pair, or two sites whose
  // clients never meet); but usually it is a copy-paste slip, and clients then reach
  // whichever director their routing or ARP picks. So a warning, not an error.
  std::map<std::tuple<int, IpAddr, uint16_t>, std::pair<std::string, std::string>> lab_ids;
  for (auto& n : t_.nodes)
    for (auto& s : n.services) {
      if (s.fwmark || !s.vip.family) continue;
      auto [it, fresh] = lab_ids.emplace(std::tuple{static_cast<int>(s.proto), s.vip, s.port},
                                         std::pair{n.name, s.name});
      if (!fresh && it->second.first != n.name)
        r_.warning(s.keys.of("vip", s.pos),
                   fmt::format("service {} on {} serves {} {}:{}, as does service {} on director {}", plain(s.name),
                               plain(n.name), to_string(s.proto), s.vip.str(), s.port, plain(it->second.second),
                               plain(it->second.first)),
                   "clients reach whichever director their route or ARP picks; if that is not a "
                   "failover pair, give one service another VIP or port");
    }
  for (auto& n : t_.nodes) {
    std::map<std::tuple<int, uint32_t, IpAddr, uint16_t>, std::string> ids;
    for (auto& s : n.services) {
      auto [it, fresh] = ids.emplace(std::tuple{static_cast<int>(s.proto), s.fwmark, s.vip, s.port}, s.name);
      if (!fresh && s.vip.family)
        r_.error(s.pos,
                 fmt::format("service {} on {} repeats service {} ({})", plain(s.name),
                             plain(n.name), it->second, service_id(s)),
                 "IPVS identifies a service by protocol, VIP and port (or fwmark)");
      service(n, s);
    }
    marks(n);
  }
}

// A fwmark service sees only packets some rule marks, and a mark nothing uses is a typo
// more often than not; both are warnings, since a lab may mark in ways labctl cannot see
// (a command agent running nft or tc).
void LvsRules::marks(const Node& n) {
  for (std::size_t k = 0; k < n.marks.size(); ++k) {
    const MarkRule& m = n.marks[k];
    std::string where = fmt::format("mark rule {} of node {}", k + 1, plain(n.name));
    if (!m.iif.empty() && !net_.has_device(n, m.iif))
      r_.error(m.keys.of("iif", m.pos),
               fmt::format("{} matches iif {}, which node {} does not have", where, shown(m.iif), plain(n.name)),
               did_you_mean(m.iif, net_.device_names(n)));
    if (!m.mark) continue;
    const VirtualService* svc = nullptr;
    for (const auto& s : n.services)
      if (s.fwmark == m.mark) svc = &s;
    if (!svc) {
      r_.warning(m.keys.of("mark", m.pos),
                 fmt::format("{} sets mark {}, but node {} has no fwmark service with that mark", where, m.mark,
                             plain(n.name)),
                 "IPVS picks marked packets up only for a service with fwmark = <mark> on this node");
      continue;
    }
    for (const auto& [key, p] : {std::pair{"src", &m.src}, std::pair{"dst", &m.dst}})
      if (*p && (*p)->addr.family != svc->vip.family)
        r_.warning(m.keys.of(key, m.pos),
                   fmt::format("{} marks IPv{} packets with {}, but fwmark service {} is IPv{}", where,
                               (*p)->addr.v4() ? 4 : 6, m.mark, plain(svc->name), svc->vip.v4() ? 4 : 6),
                   "IPVS looks a fwmark service up by mark and address family: set family on the service "
                   "or write the rule for its family");
    if (m.dst && m.dst->len == m.dst->addr.max_prefix() && !net_.owns(n, m.dst->addr))
      r_.warning(m.keys.of("dst", m.pos),
                 fmt::format("{} marks packets to {}, which is not an address of node {}", where,
                             m.dst->addr.str(), plain(n.name)),
                 fmt::format("IPVS only sees packets the director accepts as local: add \"{}/{}\" to the "
                             "interface facing the clients",
                             m.dst->addr.str(), m.dst->addr.max_prefix()));
  }
  for (const auto& s : n.services) {
    if (!s.fwmark) continue;
    bool marked = std::any_of(n.marks.begin(), n.marks.end(), [&](const MarkRule& m) { return m.mark == s.fwmark; });
    if (!marked)
      r_.warning(s.keys.of("fwmark", s.pos),
                 fmt::format("fwmark service {} on {} waits for packets with mark {}, and no mark rule of {} sets it",
                             plain(s.name), plain(n.name), s.fwmark, plain(n.name)),
                 fmt::format("add a rule, e.g. [[nodes.{}.marks]] proto = \"tcp\", dst = \"<VIP>\", dport = [80, "
                             "443], mark = {}",
                             plain(n.name), s.fwmark));
  }
}

void LvsRules::service(const Node& director, VirtualService& s) {
  Ctx c{director, s};
  if (s.real_servers.empty())
    r_.warning(s.pos, fmt::format("service {} has no real servers", plain(s.name)),
               "IPVS will accept connections for it and drop them");
  // keepalived adds the VIP of a service it manages on the MASTER only: not a mistake
  // (model/keepalived.cc checks it is among the VIPs the agent floats).
  if (s.vip.family && !s.fwmark && !net_.owns(director, s.vip) && !keepalived_managed(t_, s.name))
    r_.warning(s.keys.of("vip", s.pos),
               fmt::format("VIP {} of service {} is not an address of director {}", s.vip.str(), plain(s.name),
                           plain(director.name)),
               fmt::format("IPVS only sees packets the director accepts as local: add \"{}/{}\" to the "
                           "interface facing the clients",
                           s.vip.str(), s.vip.max_prefix()));
  bool has_nat = false;
  std::set<std::pair<IpAddr, uint16_t>> seen;
  for (std::size_t k = 0; k < s.real_servers.size(); ++k) {
    RealServer& rs = s.real_servers[k];
    if (!resolve(c, rs, k)) continue;
    Pos p = rs.pos;
    if (!seen.emplace(rs.addr, rs.port).second)
      r_.error(p, fmt::format("real server {} appears twice in service {}", rs.addr.str(), plain(s.name)));
    const Node* rsn = t_.node(rs.node);
    if (!rsn) continue;
    switch (rs.method) {
      case FwdMethod::Dr: dr(c, rs, *rsn, p); break;
      case FwdMethod::Nat: nat(c, rs, *rsn, p); has_nat = true; break;
      case FwdMethod::Tun: tun(c, rs, *rsn, p); break;
      case FwdMethod::Local: break;  // the director itself: nothing to reach
    }
  }
  if (has_nat && !net_.forwards(director, s.vip.family ? s.vip.family : AF_INET) &&
      warned_.emplace(director.name, "forward").second)
    r_.warning(director.pos,
               fmt::format("NAT director {} does not enable forwarding", plain(director.name)),
               fmt::format("add sysctl {} = 1: the director routes every reply back to the client",
                           s.vip.v6() ? "net.ipv6.conf.all.forwarding" : "net.ipv4.ip_forward"));
}

bool LvsRules::resolve(const Ctx& c, RealServer& rs, std::size_t idx) {
  std::string where = fmt::format("real server {} of service {}", idx + 1, plain(c.svc.name));
  int family = c.svc.vip.family;
  // 127.0.0.1 (any loopback address) is the director itself: IPVS delivers such a
  // destination locally, as for method local (the dr and tun transmitters see a local
  // route and pass the packet up unchanged); only NAT refuses it for packets from other
  // hosts ("stopping DNAT to loopback address" in ip_vs_nat_xmit).
  if (rs.node.empty() && rs.addr.family && rs.addr.loopback()) {
    if (rs.method == FwdMethod::Nat) {
      r_.error(
          rs.keys.of("address", rs.pos),
          fmt::format(
              "{}: IPVS does not NAT to the loopback address {}: it drops packets from other "
              "hosts for it (\"stopping DNAT to loopback address\")",
              where, rs.addr.str()),
          "to let the director serve the service itself use method = \"local\" and listen on the "
          "service's port; to NAT give a real server address of another node");
      return false;
    }
    rs.method = FwdMethod::Local;
  }
  if (rs.method == FwdMethod::Local) return local(c, rs, where);
  if (!rs.node.empty()) {
    Pos np = rs.keys.of("node", rs.pos);
    const Node* n = t_.node(rs.node);
    if (!n) {
      std::vector<std::string> names;
      for (const auto& x : t_.nodes) names.push_back(x.name);
      r_.error(np, fmt::format("{} names node {}, which does not exist", where, shown(rs.node)),
               did_you_mean(rs.node, names, fmt::format("nodes: {}", fmt::join(names, ", "))));
      return false;
    }
    if (rs.addr.family) {
      auto holders = t_.owners_of(rs.addr);
      if (std::find(holders.begin(), holders.end(), n) == holders.end()) {
        r_.error(rs.keys.of("address", rs.pos),
                 fmt::format("{}: {} is not an interface address of node {}", where, rs.addr.str(), plain(rs.node)),
                 "leave address out to use the node's address on the director's segment");
        return false;
      }
    } else {
      // The node's address on a segment it shares with the director, else its first one.
      for (const auto& [di, ri] : net_.shared(c.director, *n))
        for (const auto& p : ri->addresses)
          if (!rs.addr.family && p.addr.family == family) rs.addr = p.addr;
      if (!rs.addr.family) {
        if (auto a = net_.first_address(*n, family)) rs.addr = *a;
      }
      if (!rs.addr.family) {
        r_.error(np, fmt::format("{}: node {} has no IPv{} interface address", where, plain(rs.node),
                                 family == AF_INET6 ? 6 : 4),
                 "give it one, or name the real server by address");
        return false;
      }
    }
  } else if (rs.addr.family) {
    const Node* n = t_.owner_of(rs.addr);
    if (!n) {
      r_.error(rs.keys.of("address", rs.pos),
               fmt::format("{}: no node of the lab has address {}", where, rs.addr.str()),
               "a lab is closed: real servers are lab nodes; name one with node = \"...\"");
      return false;
    }
    if (auto holders = t_.owners_of(rs.addr); holders.size() > 1) {
      r_.error(rs.keys.of("address", rs.pos),
               fmt::format("{}: address {} is held by nodes {} and {}, on separate segments", where,
                           rs.addr.str(), plain(holders[0]->name), plain(holders[1]->name)),
               fmt::format("say which one: node = \"{}\", address = \"{}\"",
                           plain(holders[0]->name), rs.addr.str()));
      return false;
    }
    rs.node = n->name;
  } else {
    return false;  // neither: reported by the parser
  }
  if (family && rs.addr.family != family) {
    r_.error(rs.pos, fmt::format("{} is IPv{} but VIP {} is IPv{}", where, rs.addr.v4() ? 4 : 6,
                                 c.svc.vip.str(), c.svc.vip.v4() ? 4 : 6),
             "real servers and their VIP must be of one address family");
    return false;
  }
  if (rs.node == c.director.name) {
    r_.error(rs.pos, fmt::format("{} is the director {} itself", where, plain(rs.node)),
             "put the real server on a node of its own, or let the director serve it too: method = \"local\"");
    return false;
  }
  return true;
}

// A director that is one of its own real servers. IPVS sends such a destination's packets
// up the director's own stack unchanged (IP_VS_CONN_F_LOCALNODE, ip_vs_null_xmit): no
// address or port is rewritten, so the real server is one of the director's addresses and
// listens on the service's port.
bool LvsRules::local(const Ctx& c, RealServer& rs, const std::string& where) {
  const int family = c.svc.vip.family;
  if (!rs.node.empty() && rs.node != c.director.name) {
    r_.error(rs.keys.of("node", rs.pos),
             fmt::format("{} has method local but names node {}, not the director {}", where, shown(rs.node),
                         plain(c.director.name)),
             "method = \"local\" is the director serving the service itself; a real server on another node "
             "uses nat, dr or tun");
    return false;
  }
  if (!rs.addr.family) {
    // The VIP itself when the director holds it (the usual case), else its first address.
    if (!c.svc.fwmark && net_.owns(c.director, c.svc.vip))
      rs.addr = c.svc.vip;
    else if (auto a = net_.first_address(c.director, family))
      rs.addr = *a;
    else {
      r_.error(rs.pos, fmt::format("{}: director {} has no IPv{} address to serve from", where,
                                   plain(c.director.name), family == AF_INET6 ? 6 : 4));
      return false;
    }
  } else if (!rs.addr.loopback() && !net_.owns(c.director, rs.addr)) {
    r_.error(rs.keys.of("address", rs.pos),
             fmt::format("{} has method local, but {} is not an address of director {}", where, rs.addr.str(),
                         plain(c.director.name)),
             "a local real server is the director itself: give one of its addresses, or leave address out");
    return false;
  }
  rs.node = c.director.name;
  if (family && rs.addr.family != family) {
    r_.error(rs.pos, fmt::format("{} is IPv{} but the service is IPv{}", where, rs.addr.v4() ? 4 : 6,
                                 family == AF_INET6 ? 6 : 4));
    return false;
  }
  if (rs.port != 0 && rs.port != c.svc.port)
    r_.error(rs.keys.of("port", rs.pos),
             fmt::format("{} has method local and port {}, but local delivery keeps the service's port {}", where,
                         rs.port, c.svc.port),
             "IPVS rewrites nothing for a local real server: leave port out and listen on the service's "
             "port (use method = \"nat\" with another node to change ports)");
  return true;
}

std::string LvsRules::director_addr_facing(const Node& director, const Node& rsn) const {
  for (const auto& [di, ri] : net_.shared(director, rsn))
    for (const auto& p : di->addresses)
      if (p.len < p.addr.max_prefix()) return p.addr.str();
  return "";
}

void LvsRules::dr(const Ctx& c, const RealServer& rs, const Node& rsn, Pos p) {
  auto pairs = net_.shared(c.director, rsn);
  if (pairs.empty()) {
    r_.error(p, fmt::format("real server {} ({}) shares no L2 segment with director {}", plain(rsn.name),
                            rs.addr.str(), plain(c.director.name)),
             "DR rewrites only the MAC address, so the director and the real server must be on one "
             "switch or one veth link; use method = \"tun\" to reach it through routers");
    return;
  }
  const Interface* on_seg = nullptr;
  const Interface* dir_if = nullptr;
  for (const auto& [di, ri] : pairs)
    for (const auto& a : ri->addresses)
      if (a.addr == rs.addr) {
        on_seg = ri;
        dir_if = di;
      }
  if (!on_seg) {
    r_.error(p, fmt::format("real server address {} is not on the segment {} shares with director {}",
                            rs.addr.str(), plain(rsn.name), plain(c.director.name)),
             fmt::format("DR needs the RIP on {}:{}, the interface on the director's segment", plain(rsn.name),
                         pairs.front().second->name));
    return;
  }
  bool routable = false;
  for (const auto& a : dir_if->addresses)
    if (a.len < a.addr.max_prefix() && a.contains(rs.addr)) routable = true;
  if (!routable)
    r_.error(p, fmt::format("director {} has no address on {}'s subnet on {}", plain(c.director.name),
                            rs.addr.str(), dir_if->name),
             "DR sends to the real server's MAC, which the director learns by ARP on that subnet: "
             "give the director an address (the DIP) there");
  hidden_vip_warnings(c, rsn, FwdMethod::Dr, p);
  dr_rp_filter(c, rs, rsn, *on_seg, p);
}

void LvsRules::nat(const Ctx& c, const RealServer& rs, const Node& rsn, Pos p) {
  auto why = net_.trace(c.director, rs.addr, rsn);
  if (!why.empty()) {
    r_.error(p, fmt::format("director {} cannot reach real server {} ({}): {}", plain(c.director.name),
                            plain(rsn.name), rs.addr.str(), why));
    return;
  }
  // The client side: the director's subnets other than the real server's. Replies towards
  // them must go back through the director, which undoes the address rewrite.
  std::vector<IpPrefix> client_side;
  for (const auto& i : c.director.interfaces)
    for (const auto& a : i.addresses)
      if (a.addr.family == rs.addr.family && a.len < a.addr.max_prefix() && !a.contains(rs.addr))
        client_side.push_back(a.network());
  std::string gw = director_addr_facing(c.director, rsn);
  std::string hint = gw.empty() ? "give it a default route via the director"
                                : fmt::format("add routes = [{{ to = \"default\", via = \"{}\" }}] to node {}",
                                              gw, plain(rsn.name));
  auto via_director = [&](const std::optional<Net::NextHop>& hop) {
    return hop && hop->gw && net_.owns(c.director, *hop->gw);
  };
  if (client_side.empty()) {
    bool ok = false;
    for (const auto& r : rsn.routes)
      if (!r.to && r.family == rs.addr.family && r.via && net_.owns(c.director, *r.via)) ok = true;
    if (!ok && !director_snat(c, rs, rsn, IpPrefix{IpAddr{rs.addr.family, {}}, 0}))
      rule_error("nat-route", route_back_pos(rsn, IpAddr{rs.addr.family, {}}),
                 fmt::format("NAT real server {} has no default route via director {}", plain(rsn.name),
                             plain(c.director.name)),
                 hint);
    else if (ok)
      one_network_redirects(c, rs);
    return;
  }
  for (const auto& net : client_side) {
    auto hop = net_.lookup(rsn, net.addr);
    if (!via_director(hop) && !director_snat(c, rs, rsn, net)) {
      std::string what =
          !hop       ? fmt::format("has no route back to the client side {}", net.str())
          : hop->gw  ? fmt::format("routes replies for the client side {} to {}, not to director {}",
                                   net.str(), hop->gw->str(), plain(c.director.name))
                     : fmt::format("reaches the client side {} directly, bypassing director {}",
                                   net.str(), plain(c.director.name));
      rule_error("nat-route", route_back_pos(rsn, net.addr),
                 fmt::format("NAT real server {} {}", plain(rsn.name), what),
                 "NAT replies must pass the director to get their source rewritten back to the VIP; " + hint);
      return;
    }
  }
  routed_clients(c, rs, rsn);
}

// A reply of a NAT real server reaches the director, which forwards it (un-NATed) to the
// client out of the interface it came in on. ip_forward() then sends the real server an ICMP
// redirect, "the client is on your link: send to it directly" (__mkroute_input sets
// IPSKB_DOREDIRECT when in and out device are one and send_redirects is on, on all OR the
// device). A real server that follows it bypasses the director, and its next replies reach
// the client from the RIP, which the client never talked to. The fix is the director's:
// send_redirects = 0 on all and on the interface.
void LvsRules::one_network_redirects(const Ctx& c, const RealServer& rs) {
  if (!rs.addr.v4()) return;
  auto to_rs = net_.lookup(c.director, rs.addr);
  if (!to_rs || !to_rs->out) return;
  const std::string dev = to_rs->out->name;
  auto on = [&](const std::string& d) { return net_.sysctl(c.director, "net.ipv4.conf." + d + ".send_redirects"); };
  const bool all_off = on("all").value_or(1) == 0;
  const bool dev_off = on(dev).value_or(on("default").value_or(1)) == 0;
  if ((all_off && dev_off) || !warned_.emplace(c.director.name, "redirects").second) return;
  r_.warning(c.director.pos,
             fmt::format("NAT director {} has its clients and real servers on one network ({}): it forwards "
                         "each reply back out of {}, the interface it came in on, so the kernel sends the real "
                         "server an ICMP redirect (\"send to the client directly\"); a real server that follows "
                         "it skips the director, and the client gets replies from the RIP instead of the VIP",
                         plain(c.director.name), plain(dev), plain(dev)),
             fmt::format("add sysctl net.ipv4.conf.all.send_redirects = 0 and net.ipv4.conf.{}.send_redirects "
                         "= 0 to node {} (the kernel sends redirects when either is on)",
                         plain(dev), plain(c.director.name)));
}

bool LvsRules::director_snat(const Ctx& c, const RealServer& rs, const Node& rsn,
                             const IpPrefix& clients) {
  auto out = net_.lookup(c.director, rs.addr);
  if (!out || !out->out) return false;
  auto in = clients.len ? net_.lookup(c.director, clients.addr) : std::nullopt;
  Flow f{c.svc.fwmark ? std::nullopt : std::optional<Proto>(c.svc.proto),
         clients,
         rs.addr,
         static_cast<uint16_t>(rs.port ? rs.port : c.svc.port),
         in && in->out ? in->out->name : "",
         out->out->name};
  auto k = nat_rule_for(c.director, f, true);
  if (!k) return false;
  const NatRule& r = c.director.nat[*k];
  auto src = r.type == NatType::Snat ? r.to : source_on(*out->out, out->gw.value_or(rs.addr));
  if (!src) return false;
  // The reply goes to that source: it must reach the director, on the link or by a gateway.
  auto back = net_.lookup(rsn, *src);
  if (!back || !(back->gw ? net_.owns(c.director, *back->gw) : net_.owns(c.director, *src)))
    return false;
  // IPVS's NAT sends its packets untracked unless told otherwise (ip_vs_notrack()), and
  // netfilter's NAT never sees an untracked packet.
  if (net_.sysctl(c.director, "net.ipv4.vs.conntrack").value_or(0) != 1 &&
      warned_.emplace(c.director.name, "vs-conntrack").second)
    r_.error(
        r.pos,
        fmt::format("nat rule {} of director {} {} the NAT connections of service {} towards real "
                    "server {}, "
                    "but IPVS keeps them from conntrack, so no NAT rule ever sees them",
                    *k + 1, plain(c.director.name),
                    r.type == NatType::Snat ? "source-NATs" : "masquerades", plain(c.svc.name),
                    plain(rsn.name)),
        fmt::format("add sysctl net.ipv4.vs.conntrack = 1 to node {}", plain(c.director.name)));
  return true;
}

void LvsRules::routed_clients(const Ctx& c, const RealServer& rs, const Node& rsn) {
  if (c.svc.fwmark || !c.svc.vip.family) return;
  auto serves = [&](const Node& n) {
    for (const auto& d : t_.nodes)
      for (const auto& s : d.services)
        for (const auto& x : s.real_servers)
          if (x.node == n.name || (x.addr.family && t_.owner_of(x.addr) == &n)) return true;
    return false;
  };
  for (const auto& n : t_.nodes) {
    // A client: a node that is neither a director nor a real server, whose packets for the
    // VIP the routing tables bring to this director.
    if (&n == &c.director || !n.services.empty() || serves(n)) continue;
    auto src = source_at(net_, t_, n, c.svc.vip, c.svc.proto, c.svc.port, c.director);
    if (!src || net_.connected_interface(c.director, *src))
      continue;  // on a director subnet: nat() judged it
    if (!net_.lookup(c.director, *src)) {
      if (warned_.emplace(c.director.name, "route-back:" + c.svc.name).second)
        r_.error(c.svc.pos,
                 fmt::format("service {}: director {} has no route back to client {} ({}), which "
                             "reaches the VIP "
                             "through a router",
                             plain(c.svc.name), plain(c.director.name), plain(n.name), src->str()),
                 "NAT replies leave the director towards the client: add a route to the client's "
                 "network via its "
                 "router, or masquerade the clients on the router");
      return;
    }
    auto hop = net_.lookup(rsn, *src);
    if ((hop && hop->gw && net_.owns(c.director, *hop->gw)) ||
        director_snat(c, rs, rsn, IpPrefix{*src, src->max_prefix()}))
      continue;
    // The clients' network, as the hint names it: the prefix of the address that arrives.
    std::string back = IpPrefix{*src, src->max_prefix()}.str();
    if (const Node* o = t_.owner_of(*src))
      for (const auto& i : o->interfaces)
        for (const auto& a : i.addresses)
          if (a.addr == *src && a.len < a.addr.max_prefix()) back = a.network().str();
    std::string what = !hop      ? "has no route back to"
                       : hop->gw ? fmt::format("routes replies via {}, not via director {}, for",
                                               hop->gw->str(), plain(c.director.name))
                                 : "reaches directly, bypassing the director,";
    rule_error(
        "nat-route", c.svc.pos,
        fmt::format(
            "service {}: NAT real server {} {} client {} ({}), which reaches the VIP through a "
            "router",
            plain(c.svc.name), plain(rsn.name), what, plain(n.name), src->str()),
        fmt::format(
            "NAT replies must pass the director to get their source rewritten back to the VIP: "
            "route {} (or a default route) on node {} via the director, masquerade the clients on "
            "their router, or masquerade towards the real servers on the director",
            back, plain(rsn.name)));
    return;
  }
}

bool LvsRules::redirected(const Ctx& c, const Node& rsn, FwdMethod m, const IpAddr& vip) const {
  const uint16_t port = c.svc.fwmark ? 0 : c.svc.port;
  const std::optional<Proto> proto =
      c.svc.fwmark ? std::nullopt : std::optional<Proto>(c.svc.proto);
  if (m == FwdMethod::Tun) return takes_by_redirect(net_, rsn, vip, proto, port, "tunl0");
  for (const auto& [di, ri] : net_.shared(c.director, rsn))
    if (takes_by_redirect(net_, rsn, vip, proto, port, ri->name)) return true;
  return false;
}

void LvsRules::tun(const Ctx& c, const RealServer& rs, const Node& rsn, Pos p) {
  if (rs.addr.v6()) {
    tun6(c, rs, rsn, p);
    return;
  }
  auto why = net_.trace(c.director, rs.addr, rsn);
  if (!why.empty())
    r_.error(p, fmt::format("director {} has no routed path to real server {} ({}): {}", plain(c.director.name),
                            plain(rsn.name), rs.addr.str(), why),
             "TUN sends DIP -> RIP IPIP packets, routed like any other traffic");
  if (!rsn.accept_ipip)
    rule_error("tun-ipip", p, fmt::format("TUN real server {} does not accept IPIP", plain(rsn.name)),
               fmt::format("add accept_ipip = true to node {} (loads ipip so tunl0 decapsulates)", plain(rsn.name)));
  hidden_vip_warnings(c, rsn, FwdMethod::Tun, p);
  if (warned_.emplace(rsn.name, "rp_filter").second) {
    for (const char* dev : {"all", "tunl0"}) {
      std::string key = fmt::format("net.ipv4.conf.{}.rp_filter", dev);
      if (net_.sysctl(rsn, key).value_or(-1) != 0) {
        r_.warning(rsn.pos, fmt::format("TUN real server {} does not set {} = 0", plain(rsn.name), key),
                   "the unwrapped requests arrive on tunl0 but the route back to the client leaves "
                   "another interface; the kernel checks them against max(all, tunl0), so strict "
                   "reverse-path filtering drops them unless both are 0 (or 2, loose)");
      }
    }
  }
}

// IPVS's tun method for an IPv6 service (ip_vs_tunnel_xmit_v6) wraps the request in an
// outer IPv6 header, next header IPv6: only ip6_tunnel's ip6tnl0 takes that apart (tunl0
// takes IPv4 in IPv4 only). Reverse-path filtering is IPv4's alone: nothing to warn.
void LvsRules::tun6(const Ctx& c, const RealServer& rs, const Node& rsn, Pos p) {
  auto why = net_.trace(c.director, rs.addr, rsn);
  if (!why.empty())
    r_.error(p,
             fmt::format("director {} has no routed path to real server {} ({}): {}",
                         plain(c.director.name), plain(rsn.name), rs.addr.str(), why),
             "TUN sends DIP -> RIP IPv6-in-IPv6 packets, routed like any other traffic");
  if (!rsn.accept_ip6ip6) {
    std::string hint = fmt::format(
        "add accept_ip6ip6 = true to node {} (loads ip6_tunnel so ip6tnl0 decapsulates), and put "
        "the VIP on "
        "it: ip6tnl0 = [\"{}/128\"]",
        plain(rsn.name), c.svc.vip.str());
    if (rsn.accept_ipip)
      rule_error("tun-ipip", p,
                 fmt::format("TUN real server {} accepts IPIP, but service {} is IPv6: IPVS sends "
                             "it IPv6-in-IPv6, "
                             "which tunl0 does not take",
                             plain(rsn.name), plain(c.svc.name)),
                 hint);
    else
      rule_error("tun-ipip", p,
                 fmt::format("TUN real server {} does not accept IPv6-in-IPv6 (service {} is IPv6)",
                             plain(rsn.name), plain(c.svc.name)),
                 hint);
  }
  hidden_vip_warnings(c, rsn, FwdMethod::Tun, p);
}

long LvsRules::effective_conf(const Node& n, const std::string& dev,
                              const std::string& what) const {
  auto own = net_.sysctl(n, "net.ipv4.conf." + dev + "." + what);
  if (!own) own = net_.sysctl(n, "net.ipv4.conf.default." + what);
  return std::max(net_.sysctl(n, "net.ipv4.conf.all." + what).value_or(0), own.value_or(0));
}

// A DR request arrives on `in` (the real server's interface on the director's segment) from
// the client's address. With rp_filter = 1 (strict, RFC 3704) fib_validate_source drops it
// unless the real server's route back to that address leaves through `in` itself; with 2
// (loose) unless there is any route back. That happens when the clients sit across a
// router and the real server's route to them goes out another interface (say a default
// route on a second segment). The clients are the nodes the lab's checks of the service
// send from, each from the address of the interface it reaches the VIP through.
void LvsRules::dr_rp_filter(const Ctx& c, const RealServer& rs, const Node& rsn,
                            const Interface& in, Pos p) {
  if (!rs.addr.v4() || c.svc.fwmark) return;
  const long mode = effective_conf(rsn, in.name, "rp_filter");
  if (mode != 1 && mode != 2) return;
  std::set<std::string> seen;
  for (const auto& chk : t_.checks) {
    if (chk.service != c.svc.name || !seen.insert(chk.from).second) continue;
    const Node* client = t_.node(chk.from);
    if (!client || client == &rsn || client == &c.director) continue;
    auto out = net_.lookup(*client, c.svc.vip);
    if (!out || !out->out) continue;
    std::optional<IpAddr> src;
    for (const auto& a : out->out->addresses)
      if (!src && a.addr.v4()) src = a.addr;
    if (!src) continue;
    auto back = net_.lookup(rsn, *src);
    std::string how;
    if (!back)
      how = fmt::format("it has no route back to {}", src->str());
    else if (mode == 1 && back->out != &in)
      how =
          fmt::format("its route back to {} leaves {}, not {}", src->str(),
                      back->out ? plain(back->out->name) : std::string("a tunnel"), plain(in.name));
    else
      continue;
    r_.warning(
        conf_pos(rsn, in.name, "rp_filter", mode, p),
        fmt::format(
            "DR real server {} drops requests from {} ({}) by reverse-path filtering: they arrive "
            "on {} and {}, with rp_filter = {} ({})",
            plain(rsn.name), plain(client->name), src->str(), plain(in.name), how, mode,
            mode == 1 ? "strict" : "loose"),
        back ? fmt::format("set net.ipv4.conf.all.rp_filter and net.ipv4.conf.{}.rp_filter to 2 "
                           "(loose) or 0, "
                           "or route {} back through {}",
                           plain(in.name), src->str(), plain(in.name))
             : fmt::format("give node {} a route back to {} through {}", plain(rsn.name),
                           src->str(), plain(in.name)));
    return;
  }
}

// Whether the real server keeps out of ARP for `vip`, which it holds on lo or tunl0, not on
// the interface the request arrives on. The kernel's arp_ignore() (net/ipv4/arp.c) takes the
// larger of conf.all and the interface's value: 1 and 2 answer only for addresses of the
// receiving interface; 3 answers for every address but those of scope host (so a
// global-scope VIP on lo is answered); 4-7 are reserved and answer; 8 never answers.
void LvsRules::arp_ignore_warnings(const Node& rsn, const IpAddr& vip, FwdMethod m, Pos p) {
  const bool host_scope = rsn.scope_host(vip);
  for (const auto& i : rsn.interfaces) {
    const long v = effective_conf(rsn, i.name, "arp_ignore");
    const bool hidden = v == 1 || v == 2 || v == 8 || (v == 3 && host_scope);
    if (hidden) continue;
    if (v == 3) {
      r_.warning(
          conf_pos(rsn, i.name, "arp_ignore", 3, p),
          fmt::format(
              "{} real server {} would answer ARP for the VIP {} on {}: arp_ignore = 3 hides only "
              "scope-host addresses, and {} has global scope",
              m == FwdMethod::Tun ? "TUN" : "DR", plain(rsn.name), vip.str(), plain(i.name),
              vip.str()),
          std::find_if(rsn.lo_addresses.begin(), rsn.lo_addresses.end(),
                       [&](const IpPrefix& a) { return a.addr == vip; }) != rsn.lo_addresses.end()
              ? fmt::format("add it to lo with scope host: lo = [{{ address = \"{}/32\", scope = "
                            "\"host\" }}], "
                            "or set arp_ignore = 1",
                            vip.str())
              : std::string("set arp_ignore = 1: it answers only for addresses of the receiving "
                            "interface"));
      return;
    }
    r_.warning(
        p,
        fmt::format("{} real server {} would answer ARP for the VIP on {}", method_word(m),
                    plain(rsn.name), plain(i.name)),
        fmt::format("set net.ipv4.conf.all.arp_ignore = 1 and net.ipv4.conf.{}.arp_ignore = 1 "
                    "so only the director answers for {}",
                    plain(i.name), vip.str()));
    return;
  }
}

void LvsRules::hidden_vip_warnings(const Ctx& c, const Node& rsn, FwdMethod m, Pos p) {
  // A fwmark service's VIPs are the host addresses its director's mark rules match.
  std::vector<IpAddr> vips;
  if (!c.svc.fwmark && c.svc.vip.family) vips.push_back(c.svc.vip);
  if (c.svc.fwmark)
    for (const auto& mr : c.director.marks)
      if (mr.mark == c.svc.fwmark && mr.dst && mr.dst->len == mr.dst->addr.max_prefix())
        vips.push_back(mr.dst->addr);
  std::optional<IpAddr> v4_vip;  // ARP concerns IPv4 VIPs only
  for (const IpAddr& vip : vips) {
    if (vip.v4() && !v4_vip) v4_vip = vip;
    auto has_vip = [&](const std::vector<IpPrefix>& list) {
      return std::any_of(list.begin(), list.end(), [&](const IpPrefix& a) { return a.addr == vip; });
    };
    bool on_lo = has_vip(rsn.lo_addresses), on_tunl0 = has_vip(rsn.tunl0_addresses);
    bool on_ip6tnl0 = has_vip(rsn.ip6tnl0_addresses);
    if (!on_lo && !on_tunl0 && !on_ip6tnl0 && !redirected(c, rsn, m, vip) &&
        warned_.emplace(rsn.name, "vip:" + vip.str()).second) {
      const char* dev = m != FwdMethod::Tun ? "lo" : vip.v6() ? "ip6tnl0" : "tunl0";
      r_.warning(p, fmt::format("{} real server {} does not have VIP {} on {}", method_word(m), plain(rsn.name),
                                vip.str(), dev),
                 fmt::format("add {} = [\"{}/{}\"] to node {}: the request still says CIP -> VIP and the "
                             "kernel drops packets for addresses it does not have",
                             dev, vip.str(), vip.max_prefix(), plain(rsn.name)));
    }
  }
  // A real server that takes the VIP by redirect never holds it: nothing to answer or announce.
  if (v4_vip && !net_.owns(rsn, *v4_vip) && redirected(c, rsn, m, *v4_vip)) return;
  if (!v4_vip || !warned_.emplace(rsn.name, "arp").second) return;
  arp_ignore_warnings(rsn, *v4_vip, m, p);
  for (const auto& i : rsn.interfaces) {
    if (effective_conf(rsn, i.name, "arp_announce") < 2) {
      r_.warning(p, fmt::format("{} real server {} may announce the VIP in its ARP requests on {}",
                                method_word(m), plain(rsn.name), plain(i.name)),
                 fmt::format("set net.ipv4.conf.all.arp_announce = 2 and net.ipv4.conf.{}.arp_announce = 2",
                             plain(i.name)));
      break;
    }
  }
}

}  // namespace

void check_lvs(Topology& t, const Net& net, Reporter& r) {
  LvsRules(t, net, r).run();
}

}  // namespace labctl::topo
