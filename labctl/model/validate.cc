// Phase two, second half: checks across objects (names, references, links, addresses,
// routes) and the filling-in that depends on them (bridge port names, check targets).
// The LVS rules live in lvs.cc.
#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "labctl/model/diag.h"
#include "labctl/model/lvs.h"
#include "labctl/model/segments.h"
#include "labctl/model/rules.h"

namespace labctl::topo {
namespace {

class Validator {
 public:
  Validator(Topology& t, const toml::table& root, Reporter& r) : t_(t), root_(root), r_(r), net_(t) {}
  void run();

 private:
  Pos at(const std::string& path, Pos fallback) const { return pos_at(root_, path, fallback); }
  static std::string npath(const Node& n) { return "nodes." + n.name; }
  std::vector<std::string> node_names() const;

  void unique_names();
  void links();
  void link(Node& n, Interface& i);
  void bridge_ports();
  void addresses();
  void routes(const Node& n);
  void sysctls(const Node& n);
  void tunnels(const Node& n);
  void agents(const Node& n);
  void checks();
  void check(Check& c);
  /// The node named `name`; reports a dangling reference at `p` when there is none.
  const Node* node_ref(const std::string& name, Pos p, const std::string& what);

  Topology& t_;
  const toml::table& root_;
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
  r_.error(p, fmt::format("{} names node '{}', which does not exist", what, name),
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
      r_.error(n.pos, fmt::format("node '{}' has the same name as a {}", n.name, it->second),
               "nodes and switches share one name space (each gets the namespace <lab>-<name>)");
    seen.emplace(n.name, "node");
  }
  std::map<std::string, Pos> services;
  for (const auto& n : t_.nodes)
    for (const auto& s : n.services) {
      auto [it, fresh] = services.emplace(s.name, s.pos);
      if (!fresh)
        r_.error(s.pos, fmt::format("service name '{}' is already used at line {}", s.name, it->second.line),
                 "service names are unique in the lab (checks refer to them)");
    }
  for (const auto& n : t_.nodes) {
    std::set<std::string> devs;
    for (const auto& i : n.interfaces) devs.insert(i.name);
    for (const auto& tun : n.tunnels)
      if (devs.count(tun.name) || tun.name == "lo" || tun.name == "tunl0")
        r_.error(tun.pos, fmt::format("tunnel name '{}' on node {} is already an interface name", tun.name, n.name));
  }
}

void Validator::links() {
  for (auto& n : t_.nodes) {
    if (n.interfaces.empty())
      r_.error(n.pos, fmt::format("node {} has no interfaces", n.name),
               "add one, e.g. interfaces.eth0 = { switch = \"lan\", addresses = [\"10.0.0.5/24\"] }");
    for (auto& i : n.interfaces) link(n, i);
  }
  bridge_ports();
}

void Validator::link(Node& n, Interface& i) {
  std::string base = fmt::format("{}.interfaces.{}", npath(n), i.name);
  std::string where = fmt::format("interface {}:{}", n.name, i.name);
  if (!i.sw.empty()) {
    if (!t_.find_switch(i.sw)) {
      std::vector<std::string> sws;
      for (const auto& s : t_.switches) sws.push_back(s.name);
      r_.error(at(base + ".switch", i.pos),
               fmt::format("{} connects to switch '{}', which does not exist", where, i.sw),
               did_you_mean(i.sw, sws, sws.empty() ? fmt::format("declare it: [switches.{}]", i.sw)
                                                   : fmt::format("switches: {}", fmt::join(sws, ", "))));
    }
    return;
  }
  if (i.peer_node.empty()) return;
  Pos p = at(base + ".peer", i.pos);
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
    r_.error(p, fmt::format("{} names peer {}:{}, but node {} has no interface '{}'", where, i.peer_node,
                            i.peer_ifname, i.peer_node, i.peer_ifname),
             did_you_mean(i.peer_ifname, names,
                          fmt::format("declare both ends: [nodes.{}] interfaces.{} = {{ peer = \"{}:{}\" }}",
                                      i.peer_node, i.peer_ifname, n.name, i.name)));
    return;
  }
  if (back->peer_node != n.name || back->peer_ifname != i.name)
    r_.error(p, fmt::format("{} names {}:{} as its peer, but {}:{} does not name {}:{} back", where,
                            i.peer_node, i.peer_ifname, i.peer_node, i.peer_ifname, n.name, i.name),
             fmt::format("a veth link is declared on both ends: set peer = \"{}:{}\" on {}:{}", n.name,
                         i.name, i.peer_node, i.peer_ifname));
}

void Validator::bridge_ports() {
  std::map<std::pair<std::string, std::string>, std::string> ports;  // (switch, port) -> owner
  for (auto& n : t_.nodes)
    for (auto& i : n.interfaces) {
      if (i.sw.empty()) continue;
      std::string base = fmt::format("{}.interfaces.{}", npath(n), i.name);
      if (i.port.empty()) {
        std::string def = n.name + "-" + i.name;
        if (def.size() > kMaxIfnameLen) {
          r_.error(i.pos,
                   fmt::format("bridge port name '{}' for {}:{} is {} bytes, longer than 15", def, n.name,
                               i.name, def.size()),
                   fmt::format("the port in switch {} is named <node>-<interface> by default; set a "
                               "shorter one: port = \"{}\"",
                               i.sw, def.substr(0, kMaxIfnameLen)));
          continue;
        }
        i.port = def;
      }
      std::string owner = n.name + ":" + i.name;
      auto [it, fresh] = ports.emplace(std::pair{i.sw, i.port}, owner);
      if (!fresh)
        r_.error(at(base + ".port", i.pos),
                 fmt::format("bridge port name '{}' in switch {} is used by both {} and {}", i.port, i.sw,
                             it->second, owner),
                 "set a distinct port = \"...\" on one of them");
    }
}

void Validator::addresses() {
  struct Owner {
    std::string what;
    Pos pos;
  };
  std::map<IpAddr, Owner> seen;
  auto add = [&](const IpAddr& a, const std::string& what, Pos p) {
    auto [it, fresh] = seen.emplace(a, Owner{what, p});
    if (!fresh)
      r_.error(p, fmt::format("address {} of {} is already used by {} (line {})", a.str(), what,
                              it->second.what, it->second.pos.line),
               "every interface address must be unique in the lab; only a VIP may repeat, on lo or tunl0");
  };
  std::map<std::string, std::string> macs;
  for (const auto& n : t_.nodes) {
    for (const auto& i : n.interfaces) {
      std::string base = fmt::format("{}.interfaces.{}.addresses", npath(n), i.name);
      for (std::size_t k = 0; k < i.addresses.size(); ++k) {
        const auto& a = i.addresses[k];
        Pos p = at(fmt::format("{}[{}]", base, k), at(base, i.pos));
        add(a.addr, n.name + ":" + i.name, p);
        // 10.0.0.0/24 as an interface address is the network itself: almost always a typo.
        if (a.len < a.addr.max_prefix() - 1 && a.network().addr == a.addr)
          r_.error(p, fmt::format("{} on {}:{} is the network address of its subnet", a.str(), n.name, i.name),
                   "give the interface a host address, e.g. " + IpPrefix{[&] {
                     IpAddr h = a.addr;
                     h.bytes[h.size() - 1] |= 1;
                     return h;
                   }(), a.len}.str());
      }
      if (!i.mac.empty()) {
        std::string m = i.mac;
        std::transform(m.begin(), m.end(), m.begin(), ::tolower);
        auto [it, fresh] = macs.emplace(m, n.name + ":" + i.name);
        if (!fresh)
          r_.error(at(fmt::format("{}.interfaces.{}.mac", npath(n), i.name), i.pos),
                   fmt::format("mac {} of {}:{} is already used by {}", i.mac, n.name, i.name, it->second));
      }
    }
    for (const auto& tun : n.tunnels)
      for (const auto& a : tun.addresses) add(a.addr, n.name + ":" + tun.name, tun.pos);
  }
}

void Validator::routes(const Node& n) {
  for (std::size_t k = 0; k < n.routes.size(); ++k) {
    const Route& rt = n.routes[k];
    std::string base = fmt::format("{}.routes[{}]", npath(n), k);
    std::string where = fmt::format("route {} of node {}", k + 1, n.name);
    if (!rt.dev.empty() && !net_.has_device(n, rt.dev)) {
      r_.error(at(base + ".dev", rt.pos), fmt::format("{} uses dev '{}', which node {} does not have", where,
                                                       rt.dev, n.name),
               did_you_mean(rt.dev, net_.device_names(n)));
      continue;
    }
    if (!rt.via) continue;
    Pos vp = at(base + ".via", rt.pos);
    bool link_local = rt.via->v6() && rt.via->bytes[0] == 0xfe && (rt.via->bytes[1] & 0xc0) == 0x80;
    if (link_local && !rt.dev.empty()) continue;
    if (net_.owns(n, *rt.via)) {
      r_.error(vp, fmt::format("{}: gateway {} is node {}'s own address", where, rt.via->str(), n.name),
               "the gateway is the next hop: an address of another node on a connected subnet");
      continue;
    }
    const Interface* on = net_.connected_interface(n, *rt.via);
    if (!on) {
      r_.error(vp, fmt::format("{}: gateway {} is not on any subnet connected to node {}", where,
                               rt.via->str(), n.name),
               fmt::format("connected subnets: {}", fmt::join(net_.connected_subnets(n), ", ")));
    } else if (!rt.dev.empty() && rt.dev != on->name) {
      r_.error(vp, fmt::format("{}: gateway {} is on {}'s subnet, not on dev {}", where, rt.via->str(),
                               on->name, rt.dev),
               fmt::format("use dev = \"{}\" or leave dev out", on->name));
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
      r_.error(s.pos, fmt::format("sysctl {} names interface '{}', which node {} does not have", s.key, dev, n.name),
               did_you_mean(dev, names, fmt::format("interfaces: {}", fmt::join(names, ", "))));
      break;
    }
  }
}

void Validator::tunnels(const Node& n) {
  for (const auto& tun : n.tunnels) {
    std::string base = fmt::format("{}.tunnels.{}", npath(n), tun.name);
    if (tun.local.family && !net_.owns(n, tun.local))
      r_.error(at(base + ".local", tun.pos),
               fmt::format("tunnel {}:{}: local {} is not an address of node {}", n.name, tun.name,
                           tun.local.str(), n.name),
               "local is this end's underlay address, one of the node's interface addresses");
    if (!tun.dev.empty() && !net_.has_device(n, tun.dev))
      r_.error(at(base + ".dev", tun.pos),
               fmt::format("tunnel {}:{} uses dev '{}', which node {} does not have", n.name, tun.name,
                           tun.dev, n.name),
               did_you_mean(tun.dev, net_.device_names(n)));
  }
}

void Validator::agents(const Node& n) {
  std::map<std::pair<std::string, uint16_t>, std::string> ports;
  for (const auto& a : n.agents) {
    if (a.port == 0 || a.kind == AgentKind::LoadClient) continue;
    auto it = a.params.find("proto");
    std::string proto = it == a.params.end() ? "tcp" : it->second;
    auto [pit, fresh] = ports.emplace(std::pair{proto, a.port}, a.name);
    if (!fresh)
      r_.error(at(fmt::format("{}.agents.{}.port", npath(n), a.name), a.pos),
               fmt::format("agent {}:{} listens on {} port {}, as does agent {}", n.name, a.name, proto,
                           a.port, pit->second),
               "give one of them another port");
  }
}

void Validator::checks() {
  for (auto& c : t_.checks) check(c);
}

void Validator::check(Check& c) {
  if (c.kind.empty()) return;
  std::string base = "checks." + c.name;
  std::string where = "check " + c.name;
  if (!c.from.empty()) node_ref(c.from, at(base + ".from", c.pos), where);
  const VirtualService* svc = nullptr;
  const Node* director = nullptr;
  if (!c.service.empty()) {
    for (const auto& n : t_.nodes)
      for (const auto& s : n.services)
        if (s.name == c.service) {
          svc = &s;
          director = &n;
        }
    if (!svc) {
      std::vector<std::string> names;
      for (const auto& n : t_.nodes)
        for (const auto& s : n.services) names.push_back(s.name);
      r_.error(at(base + ".service", c.pos),
               fmt::format("{} names service '{}', which does not exist", where, c.service),
               did_you_mean(c.service, names,
                            names.empty() ? "declare it under [nodes.<director>.services.<name>]"
                                          : fmt::format("services: {}", fmt::join(names, ", "))));
      return;
    }
  }
  if (!c.to.empty()) {
    Pos p = at(base + ".to", c.pos);
    if (IpAddr::parse(c.to)) {
      // An address: kept as written.
    } else if (const Node* n = t_.node(c.to)) {
      auto first = net_.first_address(*n);
      if (!first)
        r_.error(p, fmt::format("{}: node {} has no address to aim at", where, c.to));
      else
        c.to = first->str();
    } else {
      r_.error(p, fmt::format("{}: target '{}' is neither an address nor a node", where, c.to),
               did_you_mean(c.to, node_names(), "write an IP address, a node name, or use service = \"...\""));
    }
  } else if (svc) {
    if (svc->fwmark) {
      r_.error(at(base + ".service", c.pos),
               fmt::format("{}: service {} is a fwmark service and has no single VIP", where, svc->name),
               "give the target explicitly: to = \"<address>\", port = <port>");
      return;
    }
    c.to = svc->vip.str();
    if (c.port == 0) c.port = svc->port;
  }
  if (c.kind == "http" && c.port == 0) c.port = 80;
  if (!svc) return;
  if (c.kind == "bypass") {
    for (const auto& rs : svc->real_servers)
      if (rs.method == FwdMethod::Nat) {
        r_.error(at(base + ".service", c.pos),
                 fmt::format("{}: service {} forwards with NAT, where replies always pass the director", where,
                             svc->name),
                 "bypass holds only for dr and tun real servers");
        break;
      }
  }
  if (c.kind == "arp-owner") {
    if (!svc->vip.v4() || svc->fwmark) {
      r_.error(at(base + ".service", c.pos),
               fmt::format("{}: service {} has no IPv4 VIP, so there is no ARP entry to look at", where,
                           svc->name));
      return;
    }
    c.to = svc->vip.str();
    c.params["owner"] = director->name;
    const Node* from = t_.node(c.from);
    if (from && !net_.share_segment(*from, *director))
      r_.error(at(base + ".from", c.pos),
               fmt::format("{}: node {} shares no L2 segment with director {}, so it never ARPs for the VIP",
                           where, c.from, director->name),
               "run arp-owner from a node on the director's switch");
  }
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
  check_lvs(t_, root_, net_, r_);
  checks();
}

}  // namespace

void validate_topology(Topology& t, const toml::table& root, Reporter& r) {
  Validator(t, root, r).run();
}

}  // namespace labctl::topo
