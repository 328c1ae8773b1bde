// Phase one, the network: switches, nodes and their interfaces, routes, sysctls and tunnels.
#include <algorithm>

#include <fmt/format.h>

#include "labctl/base/display.h"
#include "labctl/model/diag.h"
#include "labctl/model/impair_toml.h"
#include "labctl/model/parser.h"
#include "labctl/model/rules.h"

namespace labctl::topo {

Switch Parser::parse_switch(const Entry& e) {
  Switch s;
  s.name = e.name;
  s.pos = e.key_pos;
  name_ok(s.name, e.key_pos, "switch");
  std::string where = "switch " + plain(s.name);
  const toml::table* t = table_of(*e.value, where, e.key_pos);
  if (!t) return s;
  Pos tp = pos_or(*t, e.key_pos);
  s.keys = key_positions(*t);
  unknown_keys(*t, {"mtu", "host", "vni"}, where, tp);
  s.mtu = static_cast<int>(integer(*t, "mtu", where, tp, kMinMtu, kMaxMtu).value_or(0));
  s.host = str(*t, "host", where, tp).value_or("");
  s.vni = static_cast<uint32_t>(integer(*t, "vni", where, tp, 1, kMaxVni).value_or(0));
  return s;
}

Host Parser::parse_host(const Entry& e) {
  Host h;
  h.name = e.name;
  h.pos = e.key_pos;
  name_ok(h.name, e.key_pos, "host");
  std::string where = "host " + plain(h.name);
  const toml::table* t = table_of(*e.value, where, e.key_pos);
  if (!t) return h;
  Pos tp = pos_or(*t, e.key_pos);
  h.keys = key_positions(*t);
  unknown_keys(*t, {"ssh", "underlay", "mtu", "labctl"}, where, tp);
  if (auto ssh = str(*t, "ssh", where, tp)) {
    if (auto why = bad_ssh_destination(*ssh))
      r_.error(pos_at(*t, "ssh", tp), fmt::format("ssh destination {} of {} {}", shown(*ssh), where, *why),
               "write it as ssh takes it: \"root@10.0.0.2\", \"lab2\" (an ssh_config Host), "
               "\"ssh://root@lab2:2222\"; leave 'ssh' out for the machine labctl runs on");
    else
      h.ssh = *ssh;
  }
  h.underlay = address(*t, "underlay", where, tp);
  h.mtu = static_cast<int>(integer(*t, "mtu", where, tp, kMinMtu, kMaxMtu).value_or(1500));
  if (auto prog = str(*t, "labctl", where, tp)) {
    if (auto why = bad_remote_program(*prog))
      r_.error(pos_at(*t, "labctl", tp), fmt::format("labctl {} of {} {}", shown(*prog), where, *why),
               "an absolute path (\"/usr/local/bin/labctl\") or \"labctl\" (looked up in PATH there)");
    else
      h.labctl = *prog;
  }
  return h;
}

Node Parser::parse_node(const Entry& e) {
  Node n;
  n.name = e.name;
  n.pos = e.key_pos;
  name_ok(n.name, e.key_pos, "node");
  std::string where = "node " + plain(n.name);
  const toml::table* t = table_of(*e.value, where, e.key_pos);
  if (!t) return n;
  Pos tp = pos_or(*t, e.key_pos);
  n.keys = key_positions(*t);
  unknown_keys(*t,
               {"interfaces", "lo", "accept_ipip", "tunl0", "accept_ip6ip6", "ip6tnl0", "routes",
                "sysctl", "tunnels", "services", "agents", "marks", "nat", "ipvs_sync", "host"},
               where, tp);

  if (const auto* ifs = t->get("interfaces"))
    if (const auto* it = table_of(*ifs, "'interfaces' of " + where, tp))
      for (const auto& ie : entries(*it, tp)) n.interfaces.push_back(parse_interface(n.name, ie));

  n.host = str(*t, "host", where, tp).value_or("");
  parse_lo(n, *t, where, tp);
  n.accept_ipip = boolean(*t, "accept_ipip", where, tp).value_or(false);
  n.tunl0_addresses = prefixes(*t, "tunl0", where, tp);
  if (!n.tunl0_addresses.empty() && !n.accept_ipip)
    r_.error(pos_at(*t, "tunl0", tp), fmt::format("{} has tunl0 addresses but does not accept IPIP", where),
             "add `accept_ipip = true` to the node (tunl0 exists only once ipip is loaded)");
  parse_ip6tnl0(n, *t, where, tp);

  if (const auto* routes = t->get("routes")) {
    (void)routes;
    n.routes = parse_routes(n.name, *t, tp);
  }
  if (const auto* sys = t->get("sysctl"))
    if (const auto* st = table_of(*sys, "'sysctl' of " + where, tp)) {
      flatten_sysctls(*st, "", tp, n.sysctls);
      std::stable_sort(n.sysctls.begin(), n.sysctls.end(), [](const Sysctl& a, const Sysctl& b) {
        return std::tie(a.pos.line, a.pos.col) < std::tie(b.pos.line, b.pos.col);
      });
    }
  if (const auto* tun = t->get("tunnels"))
    if (const auto* tt = table_of(*tun, "'tunnels' of " + where, tp))
      for (const auto& te : entries(*tt, tp)) n.tunnels.push_back(parse_tunnel(n.name, te));
  if (const auto* svc = t->get("services"))
    if (const auto* st = table_of(*svc, "'services' of " + where, tp))
      for (const auto& se : entries(*st, tp)) n.services.push_back(parse_service(n.name, se));
  if (const auto* ag = t->get("agents"))
    if (const auto* at = table_of(*ag, "'agents' of " + where, tp))
      for (const auto& ae : entries(*at, tp)) n.agents.push_back(parse_agent(n.name, ae));
  if (const auto* marks = t->get("marks")) n.marks = parse_marks(n.name, *marks, tp);
  if (const auto* nat = t->get("nat")) n.nat = parse_nat(n.name, *nat, tp);
  if (const auto* sync = t->get("ipvs_sync")) n.ipvs_sync = parse_ipvs_sync(*sync, where, pos_at(*t, "ipvs_sync", tp));
  return n;
}

IpvsSync Parser::parse_ipvs_sync(const toml::node& n, const std::string& node_where, Pos tpos) {
  IpvsSync s;
  s.pos = tpos;
  const std::string where = "ipvs_sync of " + node_where;
  const toml::table* t = table_of(n, where, tpos);
  if (!t) return s;
  Pos tp = pos_or(*t, tpos);
  s.keys = key_positions(*t);
  unknown_keys(*t, {"interface", "id", "role"}, where, tp);
  s.interface = str(*t, "interface", where, tp, true).value_or("");
  if (!s.interface.empty())
    if (auto why = bad_ifname(s.interface))
      r_.error(pos_at(*t, "interface", tp), fmt::format("interface {} of {} {}", shown(s.interface), where, *why));
  s.id = static_cast<uint32_t>(integer(*t, "id", where, tp, 0, 255).value_or(0));
  if (auto role = str(*t, "role", where, tp)) {
    const std::vector<std::string> roles{"master", "backup", "both"};
    if (std::find(roles.begin(), roles.end(), *role) == roles.end())
      r_.error(pos_at(*t, "role", tp), fmt::format("role of {} is {}, not master, backup or both", where, shown(*role)),
               did_you_mean(*role, roles,
                            "leave role out where a keepalived agent runs VRRP on the node: the role then "
                            "follows its VRRP state"));
    // Kept even when wrong: the rules across nodes then take the role as written, not missing.
    s.role = *role;
  }
  return s;
}

Interface Parser::parse_interface(const std::string& node, const Entry& e) {
  Interface i;
  i.name = e.name;
  i.pos = e.key_pos;
  std::string where = fmt::format("interface {}:{}", plain(node), plain(i.name));
  if (auto why = bad_ifname(i.name)) {
    r_.error(e.key_pos, fmt::format("interface name {} on node {} {}", shown(i.name), plain(node), *why),
             "rename it, e.g. eth1: at most 15 bytes of letters, digits, '_', '.' and '-'");
  } else if (i.name == "lo" || i.name == "tunl0" || i.name == "ip6tnl0") {
    r_.error(e.key_pos, fmt::format("{} cannot be declared under interfaces", shown(i.name)),
             fmt::format("put its addresses in the node's `{} = [...]` key", i.name));
  }
  const toml::table* t = table_of(*e.value, where, e.key_pos);
  if (!t) return i;
  Pos tp = pos_or(*t, e.key_pos);
  i.keys = key_positions(*t);
  unknown_keys(*t, {"switch", "peer", "addresses", "mtu", "mac", "port", "impair", "port_impair"},
               where, tp);
  i.addresses = prefixes(*t, "addresses", where, tp);
  i.mtu = static_cast<int>(integer(*t, "mtu", where, tp, kMinMtu, kMaxMtu).value_or(0));
  if (auto mac = str(*t, "mac", where, tp)) {
    if (auto why = bad_mac(*mac))
      r_.error(pos_at(*t, "mac", tp), fmt::format("mac {} of {} {}", shown(*mac), where, *why),
               "write six hex octets, e.g. \"02:00:00:00:00:01\" (02: locally administered)");
    else
      i.mac = *mac;
  }
  i.sw = str(*t, "switch", where, tp).value_or("");
  if (auto peer = str(*t, "peer", where, tp)) {
    auto colon = peer->find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == peer->size())
      r_.error(pos_at(*t, "peer", tp), fmt::format("peer {} of {} is not \"node:interface\"", shown(*peer), where),
               "e.g. peer = \"router:eth1\"");
    else {
      i.peer_node = peer->substr(0, colon);
      i.peer_ifname = peer->substr(colon + 1);
    }
  }
  i.port = str(*t, "port", where, tp).value_or("");
  bool has_sw = t->get("switch"), has_peer = t->get("peer");
  if (has_sw && has_peer)
    r_.error(pos_at(*t, "peer", tp), fmt::format("{} has both 'switch' and 'peer'", where),
             "an interface connects to one thing: a switch, or one interface of another node");
  else if (!has_sw && !has_peer)
    r_.error(tp, fmt::format("{} connects to nothing", where),
             "add switch = \"<switch>\" or peer = \"<node>:<interface>\"");
  if (t->get("port") && !has_sw)
    r_.error(pos_at(*t, "port", tp), fmt::format("{} has a 'port' but no 'switch'", where),
             "'port' names the bridge port in the switch; a peer link has none");
  if (!i.port.empty())
    if (auto why = bad_ifname(i.port))
      r_.error(pos_at(*t, "port", tp), fmt::format("bridge port name {} of {} {}", shown(i.port), where, *why));
  if (const toml::node* n = t->get("impair"))
    i.impair = parse_impairment(*n, where, r_, pos_at(*t, "impair", tp)).value_or(Impairment{});
  if (const toml::node* n = t->get("port_impair")) {
    if (!has_sw)
      r_.error(pos_at(*t, "port_impair", tp), fmt::format("{} has a 'port_impair' but no 'switch'", where),
               "'port_impair' impairs the switch's side of the link; on a peer link put 'impair' on "
               "the other node's interface");
    i.port_impair = parse_impairment(*n, where + " (its switch port)", r_, pos_at(*t, "port_impair", tp))
                        .value_or(Impairment{});
  }
  return i;
}

std::vector<Route> Parser::parse_routes(const std::string& node, const toml::table& t, Pos tpos) {
  std::vector<Route> out;
  const toml::node* n = t.get("routes");
  const auto* arr = n->as_array();
  std::string where = "routes of node " + plain(node);
  if (!arr) {
    r_.error(pos_or(*n, tpos), fmt::format("{} must be a list of tables, not {}", where, type_name(*n)),
             "e.g. routes = [{ to = \"default\", via = \"10.0.0.1\" }]");
    return out;
  }
  for (std::size_t idx = 0; idx < arr->size(); ++idx) {
    const toml::node& el = (*arr)[idx];
    std::string rwhere = fmt::format("route {} of node {}", idx + 1, plain(node));
    const toml::table* rt = table_of(el, rwhere, pos_or(*n, tpos));
    if (!rt) continue;
    Route route;
    Pos rp = pos_or(*rt, pos_or(*n, tpos));
    route.pos = rp;
    route.keys = key_positions(*rt);
    unknown_keys(*rt, {"to", "via", "dev"}, rwhere, rp);
    route.via = address(*rt, "via", rwhere, rp);
    route.dev = str(*rt, "dev", rwhere, rp).value_or("");
    auto to = str(*rt, "to", rwhere, rp, true);
    bool to_ok = false;
    if (to) {
      Pos tp = pos_at(*rt, "to", rp);
      if (*to == "default") {
        if (route.via) {
          route.family = route.via->family;
          to_ok = true;
        } else if (rt->get("via") == nullptr) {
          r_.error(tp, fmt::format("{}: a default route without 'via' has no address family", rwhere),
                   "write to = \"0.0.0.0/0\" or to = \"::/0\"");
        }
      } else if (auto pfx = IpPrefix::parse(*to, true)) {
        if (pfx->network() != *pfx) {
          r_.error(tp, fmt::format("{}: {} has host bits set", rwhere, shown(*to)),
                   fmt::format("did you mean \"{}\"?", pfx->network().str()));
        } else {
          route.family = pfx->addr.family;
          if (pfx->len != 0) route.to = *pfx;
          to_ok = true;
        }
      } else {
        r_.error(tp, fmt::format("{}: {} is not \"default\" or a prefix", rwhere, shown(*to)),
                 "e.g. to = \"10.0.2.0/24\" or to = \"default\"");
      }
    }
    if (!rt->get("via") && !rt->get("dev"))
      r_.error(rp, fmt::format("{} has neither 'via' nor 'dev'", rwhere),
               "say where packets go: via = \"<gateway>\" and/or dev = \"<interface>\"");
    if (to_ok && route.via && route.via->family != route.family)
      r_.error(pos_at(*rt, "via", rp),
               fmt::format("{} mixes address families: to is IPv{}, via is IPv{}", rwhere,
                           route.family == route.via->family ? 0 : (route.via->v4() ? 6 : 4),
                           route.via->v4() ? 4 : 6));
    if (to_ok) out.push_back(route);
  }
  return out;
}

void Parser::flatten_sysctls(const toml::table& t, const std::string& prefix, Pos fallback,
                             std::vector<Sysctl>& out) {
  for (const auto& e : entries(t, fallback)) {
    std::string key = prefix.empty() ? e.name : prefix + "." + e.name;
    // Both `net.ipv4.ip_forward = 1` (nested tables in TOML) and `"net.ipv4.ip_forward" = 1`
    // (one key) mean the same sysctl.
    if (const auto* sub = e.value->as_table()) {
      flatten_sysctls(*sub, key, e.key_pos, out);
      continue;
    }
    Sysctl s;
    s.key = key;
    s.pos = pos_or(*e.value, e.key_pos);
    if (const auto* i = e.value->as_integer())
      s.value = std::to_string(i->get());
    else if (const auto* str_v = e.value->as_string())
      s.value = str_v->get();
    else {
      r_.error(s.pos, fmt::format("sysctl {} must be an integer or a string, not {}", shown(key),
                                  type_name(*e.value)),
               e.value->is_boolean() ? "write 1 or 0" : "");
      continue;
    }
    if (auto why = bad_sysctl_key(key)) {
      r_.error(s.pos, fmt::format("sysctl {} {}", shown(key), *why),
               "labctl sets only network sysctls (net.*), which are per namespace");
      continue;
    }
    // The value is written to /proc/sys as one line: a newline would end it early and a
    // NUL cut it (the kernel stops at either), so the sysctl would get part of the value.
    if (s.value.empty() || s.value.find_first_of(std::string_view("\n\r\0", 3)) != std::string::npos) {
      r_.error(s.pos, fmt::format("sysctl {} has an empty value or one with a newline or NUL: {}", shown(key),
                                  shown(s.value)),
               "a sysctl value is one line of text, e.g. 1 or \"4096 87380 6291456\"");
      continue;
    }
    out.push_back(std::move(s));
  }
}

Tunnel Parser::parse_tunnel(const std::string& node, const Entry& e) {
  Tunnel tun;
  tun.name = e.name;
  tun.pos = e.key_pos;
  std::string where = fmt::format("tunnel {}:{}", plain(node), plain(tun.name));
  if (auto why = bad_ifname(tun.name))
    r_.error(e.key_pos, fmt::format("tunnel name {} on node {} {}", shown(tun.name), plain(node), *why));
  const toml::table* t = table_of(*e.value, where, e.key_pos);
  if (!t) return tun;
  Pos tp = pos_or(*t, e.key_pos);
  tun.keys = key_positions(*t);
  unknown_keys(*t, {"local", "remote", "ttl", "dev", "addresses"}, where, tp);
  auto local = address(*t, "local", where, tp, true);
  auto remote = address(*t, "remote", where, tp, true);
  for (auto [key, a] : {std::pair{"local", &local}, std::pair{"remote", &remote}}) {
    if (*a && !(*a)->v4()) {
      r_.error(pos_at(*t, key, tp), fmt::format("'{}' of {} must be IPv4 (IPIP carries IPv4)", key, where));
      a->reset();
    }
  }
  if (local) tun.local = *local;
  if (remote) tun.remote = *remote;
  tun.ttl = static_cast<int>(integer(*t, "ttl", where, tp, 0, 255).value_or(64));
  tun.dev = str(*t, "dev", where, tp).value_or("");
  tun.addresses = prefixes(*t, "addresses", where, tp);
  return tun;
}

}  // namespace labctl::topo
