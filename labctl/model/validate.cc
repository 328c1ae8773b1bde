// Phase two, second half: checks across objects (names, references, links, addresses,
// routes) and the filling-in that depends on them (bridge port names, check targets).
// The LVS rules live in lvs.cc.
#include <sys/socket.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "labctl/base/display.h"
#include "labctl/model/agent_spec.h"
#include "labctl/model/diag.h"
#include "labctl/model/hosts.h"
#include "labctl/model/ipvs_sync.h"
#include "labctl/model/keepalived.h"
#include "labctl/model/lvs.h"
#include "labctl/model/nat.h"
#include "labctl/model/nginx.h"
#include "labctl/model/segments.h"
#include "labctl/model/rules.h"

namespace labctl::topo {
namespace {

class Validator {
 public:
  Validator(Topology& t, Reporter& r) : t_(t), r_(r), net_(t) {}
  void run();

 private:
  std::vector<std::string> node_names() const;

  void unique_names();
  void links();
  void link(Node& n, Interface& i);
  void switch_names();
  void bridge_ports();
  void addresses();
  void routes(const Node& n);
  void sysctls(const Node& n);
  void tunnels(const Node& n);
  void agents(const Node& n);
  void checks();
  void check(Check& c);
  /// Whether interface addresses of nodes `a` and `b` sit on two different L2 segments.
  static bool separate_segments(const std::string& a, const std::string& seg_a,
                                const std::string& b, const std::string& seg_b) {
    return a != b && !seg_a.empty() && !seg_b.empty() && seg_a != seg_b;
  }
  /// The node named `name`; reports a dangling reference at `p` when there is none.
  const Node* node_ref(const std::string& name, Pos p, const std::string& what);

  Topology& t_;
  Reporter& r_;
  Net net_;
};

std::vector<std::string> Validator::node_names() const {
  std::vector<std::string> out;
  for (const auto& n : t_.nodes) out.push_back(n.name);
  return out;
}

const Node* Validator::node_ref(const std::string& name, Pos p, const std::string& what) {
  if (const Node* n = t_.node(name)) return n;
  r_.error(p, fmt::format("{} names node {}, which does not exist", what, shown(name)),
           did_you_mean(name, node_names(), fmt::format("nodes: {}", fmt::join(node_names(), ", "))));
  return nullptr;
}

void Validator::unique_names() {
  // Nodes and switches share one name space: each becomes the namespace "<lab>-<name>".
  std::map<std::string, std::string> seen;
  for (const auto& s : t_.switches) seen.emplace(s.name, "switch");
  for (const auto& n : t_.nodes) {
    auto it = seen.find(n.name);
    if (it != seen.end())
      r_.error(n.pos, fmt::format("node {} has the same name as a {}", shown(n.name), it->second),
               "nodes and switches share one name space (each gets the namespace <lab>-<name>)");
    seen.emplace(n.name, "node");
  }
  std::map<std::string, Pos> services;
  for (const auto& n : t_.nodes)
    for (const auto& s : n.services) {
      auto [it, fresh] = services.emplace(s.name, s.pos);
      if (!fresh)
        r_.error(s.pos, fmt::format("service name {} is already used at line {}", shown(s.name), it->second.line),
                 "service names are unique in the lab (checks refer to them)");
    }
  for (const auto& n : t_.nodes) {
    std::set<std::string> devs;
    for (const auto& i : n.interfaces) devs.insert(i.name);
    for (const auto& tun : n.tunnels)
      if (devs.count(tun.name) || tun.name == "lo" || tun.name == "tunl0" || tun.name == "ip6tnl0")
        r_.error(tun.pos, fmt::format("tunnel name {} on node {} is already an interface name", shown(tun.name), plain(n.name)));
  }
}

void Validator::links() {
  for (auto& n : t_.nodes) {
    if (n.interfaces.empty())
      r_.error(n.pos, fmt::format("node {} has no interfaces", plain(n.name)),
               "add one, e.g. interfaces.eth0 = { switch = \"lan\", addresses = [\"10.0.0.5/24\"] }");
    for (auto& i : n.interfaces) link(n, i);
  }
  bridge_ports();
}

void Validator::link(Node& n, Interface& i) {
  std::string where = fmt::format("interface {}:{}", plain(n.name), plain(i.name));
  if (!i.sw.empty()) {
    if (!t_.find_switch(i.sw)) {
      std::vector<std::string> sws;
      for (const auto& s : t_.switches) sws.push_back(s.name);
      r_.error(i.keys.of("switch", i.pos),
               fmt::format("{} connects to switch {}, which does not exist", where, shown(i.sw)),
               did_you_mean(i.sw, sws, sws.empty() ? fmt::format("declare it: [switches.{}]", plain(i.sw))
                                                   : fmt::format("switches: {}", fmt::join(sws, ", "))));
    }
    return;
  }
  if (i.peer_node.empty()) return;
  Pos p = i.keys.of("peer", i.pos);
  if (i.peer_node == n.name) {
    r_.error(p, fmt::format("{} peers with its own node", where), "a veth link joins two nodes");
    return;
  }
  const Node* other = node_ref(i.peer_node, p, where);
  if (!other) return;
  const Interface* back = nullptr;
  std::vector<std::string> names;
  for (const auto& oi : other->interfaces) {
    names.push_back(oi.name);
    if (oi.name == i.peer_ifname) back = &oi;
  }
  if (!back) {
    r_.error(p, fmt::format("{} names peer {}:{}, but node {} has no interface {}", where, plain(i.peer_node),
                            plain(i.peer_ifname), plain(i.peer_node), shown(i.peer_ifname)),
             did_you_mean(i.peer_ifname, names,
                          fmt::format("declare both ends: [nodes.{}] interfaces.{} = {{ peer = \"{}:{}\" }}",
                                      plain(i.peer_node), plain(i.peer_ifname), plain(n.name), plain(i.name))));
    return;
  }
  if (back->peer_node != n.name || back->peer_ifname != i.name)
    r_.error(p, fmt::format("{} names {}:{} as its peer, but {}:{} does not name {}:{} back", where,
                            plain(i.peer_node), plain(i.peer_ifname), plain(i.peer_node), plain(i.peer_ifname), plain(n.name), plain(i.name)),
             fmt::format("a veth link is declared on both ends: set peer = \"{}:{}\" on {}:{}", plain(n.name),
                         plain(i.name), plain(i.peer_node), plain(i.peer_ifname)));
}

void Validator::switch_names() {
  // A switch is a bridge device named like the switch inside the switch's namespace
  // "<lab>-<switch>" (planner: CreateBridge{ns, sw.name}), beside that namespace's lo: so
  // its name must be a valid interface name other than lo.
  for (const auto& s : t_.switches) {
    if (bad_name(s.name)) continue;  // reported by the parser
    if (auto why = bad_ifname(s.name))
      r_.error(s.pos, fmt::format("switch name {} {}, but it also names the switch's bridge device", shown(s.name),
                                  *why),
               fmt::format("interface names are at most {} bytes: choose a shorter switch name", kMaxIfnameLen));
    else if (s.name == "lo")
      r_.error(s.pos, "switch name 'lo' is taken: the bridge would need the name of the loopback device in the "
                      "switch's namespace",
               "choose another switch name");
  }
}

void Validator::bridge_ports() {
  switch_names();
  std::map<std::pair<std::string, std::string>, std::string> ports;  // (switch, port) -> owner
  std::map<std::string, std::size_t> counts;
  for (auto& n : t_.nodes)
    for (auto& i : n.interfaces) {
      if (i.sw.empty()) continue;
      if (i.port.empty()) {
        std::string def = n.name + "-" + i.name;
        if (def.size() > kMaxIfnameLen) {
          r_.error(i.pos,
                   fmt::format("bridge port name {} for {}:{} is {} bytes, longer than 15", shown(def), plain(n.name),
                               plain(i.name), def.size()),
                   fmt::format("the port in switch {} is named <node>-<interface> by default; set a "
                               "shorter one: port = \"{}\"",
                               plain(i.sw), def.substr(0, kMaxIfnameLen)));
          continue;
        }
        i.port = def;
      }
      std::string owner = plain(n.name) + ":" + plain(i.name);
      // The port lives in the switch's namespace beside the bridge and lo.
      if (i.port == i.sw || i.port == "lo") {
        r_.error(i.keys.of("port", i.pos),
                 fmt::format("bridge port name {} of {} is the name of {} in switch {}'s namespace", shown(i.port),
                             owner, i.port == "lo" ? "the loopback device" : "the bridge itself", plain(i.sw)),
                 "set another port = \"...\"");
        continue;
      }
      ++counts[i.sw];
      auto [it, fresh] = ports.emplace(std::pair{i.sw, i.port}, owner);
      if (!fresh)
        r_.error(i.keys.of("port", i.pos),
                 fmt::format("bridge port name {} in switch {} is used by both {} and {}", shown(i.port), plain(i.sw),
                             it->second, owner),
                 "set a distinct port = \"...\" on one of them");
    }
  for (const auto& s : t_.switches) {
    auto it = counts.find(s.name);
    if (it != counts.end() && it->second > kMaxBridgePorts)
      r_.error(s.pos,
               fmt::format("switch {} has {} ports, more than a Linux bridge holds ({}, BR_MAX_PORTS)", plain(s.name),
                           it->second, kMaxBridgePorts),
               "split the nodes over several switches, joined by a router node");
  }
}

// Why `a` cannot be held by a device (lo when on_lo), naming the rule; nullopt when it can.
// These the kernel refuses or makes useless: a multicast group is joined, not assigned;
// a loopback address off lo is a martian the stack drops; a v4-mapped address is how a
// dual-stack socket spells IPv4, never an interface address.
std::optional<std::pair<std::string, std::string>> unusable(const IpPrefix& a, bool on_lo) {
  const IpAddr& x = a.addr;
  if (x.unspecified())
    return std::pair{fmt::format("is the unspecified address ({}): no device can hold it",
                                 x.v4() ? "0.0.0.0" : "::"),
                     "give it a unicast address"};
  if (x.multicast())
    return std::pair{fmt::format("is a multicast address ({}): an interface cannot hold it",
                                 x.v4() ? "224.0.0.0/4" : "ff00::/8"),
                     "multicast groups are joined by the programs that use them; give the device a "
                     "unicast address"};
  if (x.loopback() && !on_lo)
    return std::pair{fmt::format("is a loopback address ({}): only lo may hold it", x.v4() ? "127.0.0.0/8" : "::1"),
                     "packets for loopback addresses never leave a node; use an address of the "
                     "interface's subnet"};
  if (x.v4_mapped())
    return std::pair{std::string("is an IPv4-mapped IPv6 address (::ffff:0:0/96): an interface cannot hold it"),
                     "write the IPv4 address itself, e.g. \"" + IpAddr{AF_INET, {x.bytes[12], x.bytes[13],
                                                                               x.bytes[14], x.bytes[15]}}.str() +
                         "/24\""};
  return std::nullopt;
}

void Validator::addresses() {
  struct Owner {
    std::string node;
    std::string what;
    Pos pos;
    std::string seg;  ///< The interface's L2 segment; "" for tunnels, lo, tunl0.
  };
  std::map<IpAddr, Owner> seen;
  auto add = [&](const IpAddr& a, const Node& n, const std::string& dev, Pos p,
                 std::string seg = {}) {
    std::string what = plain(n.name) + ":" + plain(dev);
    auto [it, fresh] = seen.emplace(a, Owner{n.name, what, p, seg});
    // The same subnet, even the same address, may be reused on L2 segments no frame
    // crosses (two sites, each with its own gateway 10.0.0.1): ARP and the connected
    // routes stay within each segment, as on real networks.
    if (!fresh && separate_segments(it->second.node, it->second.seg, n.name, seg)) {
      return;
    }
    if (!fresh)
      r_.error(p, fmt::format("address {} of {} is already used by {} (line {})", a.str(), what,
                              it->second.what, it->second.pos.line),
               "every interface address must be unique in the lab; only a VIP may repeat, on lo or tunl0");
  };
  auto rules = [&](const IpPrefix& a, const Node& n, const std::string& dev, Pos p) {
    if (auto why = unusable(a, dev == "lo"))
      r_.error(p, fmt::format("{} on {}:{} {}", a.str(), plain(n.name), plain(dev), why->first), why->second);
  };
  std::map<std::string, std::string> macs;
  for (const auto& n : t_.nodes) {
    for (const auto& i : n.interfaces) {
      bool v6 = false;
      for (std::size_t k = 0; k < i.addresses.size(); ++k) {
        const auto& a = i.addresses[k];
        v6 = v6 || a.addr.v6();
        Pos p = i.keys.of("addresses", k, i.keys.of("addresses", i.pos));
        add(a.addr, n, i.name, p, net_.segment(n, i));
        if (unusable(a, false)) {
          rules(a, n, i.name, p);
          continue;
        }
        // 10.0.0.0/24 as an interface address is the network itself: almost always a typo.
        // /31 (RFC 3021) and /32 have no network or broadcast address to avoid.
        if (a.len < a.addr.max_prefix() - 1 && a.network().addr == a.addr)
          r_.error(p, fmt::format("{} on {}:{} is the network address of its subnet", a.str(), plain(n.name), plain(i.name)),
                   "give the interface a host address, e.g. " + IpPrefix{[&] {
                     IpAddr h = a.addr;
                     h.bytes[h.size() - 1] |= 1;
                     return h;
                   }(), a.len}.str());
        // The kernel takes 10.0.0.255/24, but every host on the subnet treats packets to
        // it as broadcast: the interface could never be reached at its own address.
        else if (a.addr.v4() && a.len < 31 && a.broadcast().addr == a.addr)
          r_.error(p, fmt::format("{} on {}:{} is the broadcast address of its subnet {}", a.str(), plain(n.name),
                                  plain(i.name), a.network().str()),
                   "give the interface a host address, e.g. " + IpPrefix{[&] {
                     IpAddr h = a.addr;
                     h.bytes[3] &= 0xfe;
                     return h;
                   }(), a.len}.str());
      }
      // Below 1280 the kernel turns IPv6 off on the device (and refuses addresses): the
      // interface's IPv6 addresses would silently be gone.
      if (v6 && i.mtu && i.mtu < kMinMtuIpv6)
        r_.error(i.keys.of("mtu", i.pos),
                 fmt::format("mtu {} of {}:{} is below IPv6's minimum of {}, but the interface has IPv6 "
                             "addresses",
                             i.mtu, plain(n.name), plain(i.name), kMinMtuIpv6),
                 fmt::format("raise mtu to at least {}, or drop the IPv6 addresses", kMinMtuIpv6));
      if (!i.mac.empty()) {
        std::string m = i.mac;
        std::transform(m.begin(), m.end(), m.begin(), ::tolower);
        auto [it, fresh] = macs.emplace(m, plain(n.name) + ":" + plain(i.name));
        if (!fresh)
          r_.error(i.keys.of("mac", i.pos),
                   fmt::format("mac {} of {}:{} is already used by {}", i.mac, plain(n.name), plain(i.name), it->second));
      }
    }
    for (const auto& tun : n.tunnels)
      for (const auto& a : tun.addresses) {
        add(a.addr, n, tun.name, tun.pos);
        rules(a, n, tun.name, tun.pos);
      }
  }
  // lo and tunl0 may repeat an address only when it is a VIP: a DR/TUN real server holds
  // its service's VIP there so the kernel accepts packets for it. Any other repeat is two
  // nodes claiming one address, and which one answers depends on routing by accident.
  std::set<IpAddr> vips;
  for (const auto& n : t_.nodes)
    for (const auto& s : n.services) {
      if (!s.fwmark && s.vip.family) vips.insert(s.vip);
      // A fwmark service's VIPs are the host addresses its mark rules match: real servers
      // hold them on lo as they hold any VIP.
      if (s.fwmark)
        for (const auto& m : n.marks)
          if (m.mark == s.fwmark && m.dst && m.dst->len == m.dst->addr.max_prefix()) vips.insert(m.dst->addr);
    }
  for (const auto& n : t_.nodes)
    for (const auto& [dev, list] :
         {std::pair{"lo", &n.lo_addresses}, std::pair{"tunl0", &n.tunl0_addresses},
          std::pair{"ip6tnl0", &n.ip6tnl0_addresses}})
      for (std::size_t k = 0; k < list->size(); ++k) {
        const IpPrefix& a = (*list)[k];
        Pos p = n.keys.of(dev, k, n.keys.of(dev, n.pos));
        rules(a, n, dev, p);
        if (vips.count(a.addr)) continue;
        auto [it, fresh] = seen.emplace(a.addr, Owner{n.name, plain(n.name) + ":" + dev, p, {}});
        if (!fresh && it->second.node != n.name)
          r_.error(p, fmt::format("address {} on {}:{} is also held by {} (line {}), and no service has it as "
                                  "its VIP",
                                  a.addr.str(), plain(n.name), dev, it->second.what, it->second.pos.line),
                   "only a service's VIP may repeat (on lo or tunl0 of its real servers); give this "
                   "address to one node, or name it as the vip of a service");
      }
}

void Validator::routes(const Node& n) {
  // (family, destination) -> the route that has it; "default" and "0.0.0.0/0" are one.
  std::map<std::pair<int, std::optional<IpPrefix>>, std::size_t> dests;
  for (std::size_t k = 0; k < n.routes.size(); ++k) {
    const Route& rt = n.routes[k];
    std::string where = fmt::format("route {} of node {}", k + 1, plain(n.name));
    Pos tp = rt.keys.of("to", rt.pos);
    std::string dest = rt.to ? rt.to->str() : (rt.family == AF_INET6 ? "the IPv6 default" : "the IPv4 default");
    // labctl adds routes with NLM_F_EXCL (as `ip route add`): a second route to one
    // destination fails with "File exists" halfway through `up`.
    auto [dit, fresh] = dests.emplace(std::pair{rt.family, rt.to}, k);
    if (!fresh) {
      r_.error(tp, fmt::format("{} goes to {}, as route {} does already", where, dest, dit->second + 1),
               "a node has one route per destination; drop one of them");
      continue;
    }
    if (rt.to)
      for (const auto& i : n.interfaces)
        for (const auto& a : i.addresses) {
          if (a.len >= a.addr.max_prefix() || a.network() != *rt.to) continue;
          // The kernel already has this prefix as the connected route of the interface.
          // IPv4 keeps both at metric 0, so adding it again fails with "File exists";
          // IPv6 takes it (metric 1024 against the connected 256) but never uses it.
          if (rt.family == AF_INET)
            r_.error(tp, fmt::format("{} goes to {}, the connected subnet of {}", where, dest, plain(i.name)),
                     "the kernel adds that route itself with the address; drop this one");
          else
            r_.warning(tp, fmt::format("{} goes to {}, the connected subnet of {}: the connected route "
                                       "wins and this one is never used",
                                       where, dest, plain(i.name)),
                       "the kernel adds that route itself with the address; drop this one");
        }
    if (!rt.dev.empty() && !net_.has_device(n, rt.dev)) {
      r_.error(rt.keys.of("dev", rt.pos), fmt::format("{} uses dev {}, which node {} does not have", where,
                                                       shown(rt.dev), plain(n.name)),
               did_you_mean(rt.dev, net_.device_names(n)));
      continue;
    }
    if (!rt.via) continue;
    Pos vp = rt.keys.of("via", rt.pos);
    bool link_local = rt.via->v6() && rt.via->bytes[0] == 0xfe && (rt.via->bytes[1] & 0xc0) == 0x80;
    if (link_local && !rt.dev.empty()) continue;
    if (net_.owns(n, *rt.via)) {
      r_.error(vp, fmt::format("{}: gateway {} is node {}'s own address", where, rt.via->str(), plain(n.name)),
               "the gateway is the next hop: an address of another node on a connected subnet");
      continue;
    }
    const Interface* on = net_.connected_interface(n, *rt.via);
    if (!on) {
      r_.error(vp, fmt::format("{}: gateway {} is not on any subnet connected to node {}", where,
                               rt.via->str(), plain(n.name)),
               fmt::format("connected subnets: {}", fmt::join(net_.connected_subnets(n), ", ")));
    } else if (!rt.dev.empty() && rt.dev != on->name) {
      r_.error(vp, fmt::format("{}: gateway {} is on {}'s subnet, not on dev {}", where, rt.via->str(),
                               plain(on->name), rt.dev),
               fmt::format("use dev = \"{}\" or leave dev out", plain(on->name)));
    }
  }
}

void Validator::sysctls(const Node& n) {
  // A typo in the interface part of net.ipv4.conf.<if>.* silently sets nothing, and the
  // lab then misbehaves in ways that are hard to trace back.
  for (const auto& s : n.sysctls) {
    for (const char* fam : {"net.ipv4.conf.", "net.ipv6.conf.", "net.ipv4.neigh.", "net.ipv6.neigh."}) {
      std::string_view k = s.key;
      if (k.substr(0, std::char_traits<char>::length(fam)) != fam) continue;
      auto rest = k.substr(std::char_traits<char>::length(fam));
      auto dot = rest.rfind('.');
      if (dot == std::string_view::npos) break;
      std::string dev(rest.substr(0, dot));
      if (dev == "all" || dev == "default" || net_.has_device(n, dev)) break;
      auto names = net_.device_names(n);
      names.insert(names.begin(), {"all", "default"});
      r_.error(s.pos, fmt::format("sysctl {} names interface {}, which node {} does not have", shown(s.key), shown(dev), plain(n.name)),
               did_you_mean(dev, names, fmt::format("interfaces: {}", fmt::join(names, ", "))));
      break;
    }
  }
}

void Validator::tunnels(const Node& n) {
  for (const auto& tun : n.tunnels) {
    if (tun.local.family && !net_.owns(n, tun.local))
      r_.error(tun.keys.of("local", tun.pos),
               fmt::format("tunnel {}:{}: local {} is not an address of node {}", plain(n.name), plain(tun.name),
                           tun.local.str(), plain(n.name)),
               "local is this end's underlay address, one of the node's interface addresses");
    if (!tun.dev.empty() && !net_.has_device(n, tun.dev))
      r_.error(tun.keys.of("dev", tun.pos),
               fmt::format("tunnel {}:{} uses dev {}, which node {} does not have", plain(n.name), plain(tun.name),
                           shown(tun.dev), plain(n.name)),
               did_you_mean(tun.dev, net_.device_names(n)));
  }
}

void Validator::agents(const Node& n) {
  std::map<std::pair<std::string, uint16_t>, std::string> ports;
  for (const auto& a : n.agents) {
    if (!agent_listens(a)) continue;
    auto it = a.params.find("proto");
    std::string proto = it == a.params.end() ? "tcp" : it->second;
    auto [pit, fresh] = ports.emplace(std::pair{proto, a.port}, a.name);
    if (!fresh)
      r_.error(a.keys.of("port", a.pos),
               fmt::format("agent {}:{} listens on {} port {}, as does agent {}", plain(n.name), plain(a.name), proto,
                           a.port, pit->second),
               "give one of them another port");
  }
}

void Validator::checks() {
  for (auto& c : t_.checks) check(c);
}

void Validator::check(Check& c) {
  if (c.kind.empty()) return;
  const CheckKindSpec& spec = *find_check_kind(c.kind);
  std::string where = "check " + plain(c.name);
  auto at = [&](std::string_view key) { return c.keys.of(key, c.pos); };
  if (!c.from.empty()) node_ref(c.from, at("from"), where);
  const VirtualService* svc = nullptr;
  const Node* director = nullptr;
  if (!c.service.empty()) {
    ServiceRef ref = t_.service(c.service);
    svc = ref.service;
    director = ref.director;
    if (!svc) {
      std::vector<std::string> names;
      for (const auto& n : t_.nodes)
        for (const auto& s : n.services) names.push_back(s.name);
      r_.error(at("service"),
               fmt::format("{} names service {}, which does not exist", where, shown(c.service)),
               did_you_mean(c.service, names,
                            names.empty() ? "declare it under [nodes.<director>.services.<name>]"
                                          : fmt::format("services: {}", fmt::join(names, ", "))));
      return;
    }
  }
  if (svc && !svc->fwmark && svc->proto == Proto::Sctp) {
    r_.error(at("service"),
             fmt::format("{}: service {} is SCTP, and labctl's checks speak TCP and UDP only", where,
                         plain(svc->name)),
             "check the SCTP service with an agent of kind command (e.g. an SCTP client) instead");
    return;
  }
  // balance, bypass, via-director, tunnel, arp-owner: `service` names the IPVS service to
  // judge; traffic goes to its VIP and port, or (a fwmark service has neither) to the `to`
  // and `port` the check gives.
  const bool about_service = !spec.needs_target;
  if (about_service && svc) {
    if (svc->fwmark) {
      if (c.to_text.empty() || c.port == 0) {
        r_.error(at("service"),
                 fmt::format("{}: service {} is a fwmark service: it has no VIP or port of its own, so the "
                             "check must name where to send",
                             where, plain(svc->name)),
                 fmt::format("add {}{}to the check: an address and port the mark rule matches",
                             c.to_text.empty() ? "to = \"<address>\", " : "", c.port ? "" : "port = <port> "));
        return;
      }
    } else if (!c.to_text.empty() || (c.port && svc->port != 0)) {
      r_.error(at(c.to_text.empty() ? "port" : "to"),
               fmt::format("{}: service {} has its own VIP and port; 'to' and 'port' are only for fwmark services",
                           where, plain(svc->name)),
               "leave them out: the check sends to the service's VIP and port");
      return;
    }
  }
  if (!c.to_text.empty()) {
    Pos p = at("to");
    if (auto a = IpAddr::parse(c.to_text)) {
      c.to = *a;  // An address: its text kept as written.
    } else if (const Node* n = t_.node(c.to_text)) {
      auto first = net_.first_address(*n);
      if (!first) {
        r_.error(p, fmt::format("{}: node {} has no address to aim at", where, c.to_text));
      } else {
        c.to = *first;
        c.to_text = first->str();
      }
    } else {
      r_.error(p, fmt::format("{}: target {} is neither an address nor a node", where, shown(c.to_text)),
               did_you_mean(c.to_text, node_names(), "write an IP address, a node name, or use service = \"...\""));
    }
  } else if (svc) {
    if (svc->fwmark) {
      // reach, no-reach and http take `to` or `service`, not both: the hint says to swap.
      r_.error(
          at("service"),
          fmt::format("{}: service {} is a fwmark service and has no single VIP", where,
                      plain(svc->name)),
          fmt::format(
              "replace service = \"{}\" with the target itself: to = \"<address>\", port = <port> "
              "(an address and port the mark rule matches)",
              plain(svc->name)));
      return;
    }
    c.to = svc->vip;
    c.to_text = svc->vip.str();
    if (c.port == 0) c.port = svc->port;
    if (c.port == 0 && svc->proto != Proto::Udp && spec.sends_to_port)
      r_.error(at("service"),
               fmt::format("{}: service {} takes any port (port 0), so the check must say which", where,
                           plain(svc->name)),
               "add port = <port> to the check");
  }
  // The protocol: as the check says, else the service's.
  if (svc && !svc->fwmark && !c.params.has("proto") && svc->proto == Proto::Udp) c.params.set("proto", "udp");
  const bool udp = c.params.udp();
  if (c.params.has("send") && !udp)
    r_.error(at("send"), fmt::format("{} has a UDP payload (send) but is not a UDP check", where),
             "add proto = \"udp\" (or name a UDP service)");
  if (udp && c.params.has("banner"))
    r_.error(at("banner"),
             fmt::format("{} reads a banner, which needs TCP, but its service is UDP", where));
  if (udp && c.port == 0)
    r_.error(at("proto"), fmt::format("{} is a UDP check without a port", where),
             "add port = <port>");
  if (!spec.validate) return;
  CheckValidation v{t_, net_, c, svc, director, udp, where, r_, at};
  spec.validate(v);
}

void Validator::run() {
  unique_names();
  links();
  addresses();
  for (const auto& n : t_.nodes) {
    routes(n);
    sysctls(n);
    tunnels(n);
    agents(n);
  }
  check_lvs(t_, net_, r_);
  check_nat(t_, net_, r_);
  check_keepalived(t_, net_, r_);
  check_ipvs_sync(t_, net_, r_);
  check_nginx(t_, net_, r_);
  check_hosts(t_, r_);
  checks();
}

}  // namespace

void validate_topology(Topology& t, Reporter& r) {
  Validator(t, r).run();
}

}  // namespace labctl::topo
