// Phase two, first half: the TOML tree as written (toml++ keeps every position) to the
// model, checking what each value and table can show on its own. Every problem is reported
// and parsing goes on, so one run shows all of them.
#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "labctl/base/display.h"
#include "labctl/model/agent_spec.h"
#include "labctl/model/diag.h"
#include "labctl/model/impair_toml.h"
#include "labctl/model/rules.h"

namespace labctl::topo {
namespace {

using Keys = std::vector<std::string>;

const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    default: return "a date or time";
  }
}

Pos pos_or(const toml::node& n, Pos fallback) {
  Pos p = pos_of(n.source());
  return p.line ? p : fallback;
}

// Where each key's value (and each element of a list) of `t` was written, for the model
// object made from `t`: later checks blame a key of it without looking its path up again.
KeyPositions key_positions(const toml::table& t) {
  KeyPositions out;
  for (auto&& [k, v] : t) {
    std::vector<Pos> elements;
    if (const auto* arr = v.as_array())
      for (const auto& el : *arr) elements.push_back(pos_of(el.source()));
    out.add(std::string(k.str()), pos_of(v.source()), std::move(elements));
  }
  return out;
}

class Parser {
 public:
  explicit Parser(Reporter& r) : r_(r) {}
  Topology run(const toml::table& root);

 private:
  struct Entry {
    std::string name;
    Pos key_pos;
    const toml::node* value;
  };

  // --- generic readers: each reports what is wrong and returns nullopt ---
  std::vector<Entry> entries(const toml::table& t, Pos fallback);
  void unknown_keys(const toml::table& t, const Keys& known, const std::string& where, Pos fallback);
  const toml::table* table_of(const toml::node& n, const std::string& where, Pos fallback);
  std::optional<std::string> str(const toml::table& t, std::string_view key,
                                 const std::string& where, Pos tpos, bool required = false);
  std::optional<int64_t> integer(const toml::table& t, std::string_view key,
                                 const std::string& where, Pos tpos, int64_t lo, int64_t hi,
                                 bool required = false);
  std::optional<bool> boolean(const toml::table& t, std::string_view key,
                              const std::string& where, Pos tpos);
  std::optional<double> number(const toml::table& t, std::string_view key,
                               const std::string& where, Pos tpos);
  /// A string or an array of strings, each with its position.
  std::vector<std::pair<std::string, Pos>> strings(const toml::table& t, std::string_view key,
                                                   const std::string& where, Pos tpos);
  std::vector<IpPrefix> prefixes(const toml::table& t, std::string_view key,
                                 const std::string& where, Pos tpos);
  /// One CIDR text; reports why it is none.
  std::optional<IpPrefix> prefix(const std::string& text, Pos p, const std::string& where);
  void parse_lo(Node& n, const toml::table& t, const std::string& where, Pos tpos);
  void parse_ip6tnl0(Node& n, const toml::table& t, const std::string& where, Pos tpos);
  std::optional<IpAddr> address(const toml::table& t, std::string_view key,
                                const std::string& where, Pos tpos, bool required = false);
  void missing(std::string_view key, const std::string& where, Pos tpos, std::string hint = {});
  bool name_ok(const std::string& name, Pos p, const std::string& what);

  // --- the schema ---
  Switch parse_switch(const Entry& e);
  Node parse_node(const Entry& e);
  Interface parse_interface(const std::string& node, const Entry& e);
  std::vector<Route> parse_routes(const std::string& node, const toml::table& t, Pos tpos);
  void flatten_sysctls(const toml::table& t, const std::string& prefix, Pos fallback,
                       std::vector<Sysctl>& out);
  Tunnel parse_tunnel(const std::string& node, const Entry& e);
  VirtualService parse_service(const std::string& node, const Entry& e);
  RealServer parse_real_server(const std::string& where, const toml::table& t, Pos tpos,
                               FwdMethod default_method);
  /// Port 0, netmask, sched_flags and one_packet: the keys whose rules depend on the
  /// service's protocol, scheduler and persistence, read after them.
  void service_options(VirtualService& s, const toml::table& t, const std::string& where, Pos tp);
  std::vector<MarkRule> parse_marks(const std::string& node, const toml::node& n, Pos tpos);
  std::vector<NatRule> parse_nat(const std::string& node, const toml::node& n, Pos tpos);
  /// `to` of a nat rule: ADDR, ADDR:PORT, [V6]:PORT (snat, dnat) or a port (redirect).
  void nat_to(NatRule& r, const toml::table& t, const std::string& where, Pos tp);
  std::vector<uint16_t> ports(const toml::table& t, std::string_view key, const std::string& where, Pos tpos);
  std::optional<IpPrefix> match_prefix(const toml::table& t, std::string_view key, const std::string& where,
                                       Pos tpos);
  Agent parse_agent(const std::string& node, const Entry& e);
  /// An agent's table for its kind's parse hook (model/agent_spec.h).
  class AgentReader;
  /// The keepalived agent's keys (docs/topology.md, "keepalived").
  KeepalivedSpec parse_keepalived(const toml::table& t, const std::string& where, Pos tp);
  VrrpInstance parse_vrrp(const toml::table& t, const std::string& where, Pos tp, bool gateway);
  KeepalivedService parse_keepalived_service(const Entry& e, const std::string& where);
  Check parse_check(const Entry& e);
  void check_param(const toml::table& t, std::string_view key, Check& c, const std::string& where, Pos tp);
  Exercise parse_exercise(const toml::node& n, Pos p);
  std::optional<FwdMethod> method(const toml::table& t, const std::string& where, Pos tpos);

  Reporter& r_;
};

std::vector<Parser::Entry> Parser::entries(const toml::table& t, Pos fallback) {
  std::vector<Entry> out;
  for (auto&& [k, v] : t)
    out.push_back({std::string(k.str()), k.source().begin.line ? pos_of(k.source()) : pos_or(v, fallback), &v});
  // toml++ keeps keys sorted by name; the file's order is what people expect (and what
  // sysctls are applied in), so sort by where each key was written.
  std::stable_sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.key_pos.line, a.key_pos.col) < std::tie(b.key_pos.line, b.key_pos.col);
  });
  return out;
}

void Parser::unknown_keys(const toml::table& t, const Keys& known, const std::string& where,
                          Pos fallback) {
  for (auto&& [k, v] : t) {
    std::string key(k.str());
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    Pos p = k.source().begin.line ? pos_of(k.source()) : pos_or(v, fallback);
    r_.error(p, fmt::format("unknown key {} in {}", shown(key), where),
             did_you_mean(key, known, fmt::format("known keys: {}", fmt::join(known, ", "))));
  }
}

const toml::table* Parser::table_of(const toml::node& n, const std::string& where, Pos fallback) {
  if (const auto* t = n.as_table()) return t;
  r_.error(pos_or(n, fallback), fmt::format("{} must be a table, not {}", where, type_name(n)),
           "write it as [section] or { key = value, ... }");
  return nullptr;
}

void Parser::missing(std::string_view key, const std::string& where, Pos tpos, std::string hint) {
  r_.error(tpos, fmt::format("{} needs '{}'", where, key), std::move(hint));
}

std::optional<std::string> Parser::str(const toml::table& t, std::string_view key,
                                       const std::string& where, Pos tpos, bool required) {
  const toml::node* n = t.get(key);
  if (!n) {
    if (required) missing(key, where, tpos);
    return std::nullopt;
  }
  if (const auto* s = n->as_string()) return s->get();
  r_.error(pos_or(*n, tpos), fmt::format("'{}' in {} must be a string, not {}", key, where, type_name(*n)),
           "put the value in double quotes");
  return std::nullopt;
}

std::optional<int64_t> Parser::integer(const toml::table& t, std::string_view key,
                                       const std::string& where, Pos tpos, int64_t lo, int64_t hi,
                                       bool required) {
  const toml::node* n = t.get(key);
  if (!n) {
    if (required) missing(key, where, tpos);
    return std::nullopt;
  }
  const auto* i = n->as_integer();
  if (!i) {
    r_.error(pos_or(*n, tpos),
             fmt::format("'{}' in {} must be an integer, not {}", key, where, type_name(*n)),
             n->is_string() ? "write the number without quotes" : "");
    return std::nullopt;
  }
  int64_t v = i->get();
  if (v < lo || v > hi) {
    r_.error(pos_or(*n, tpos), fmt::format("'{}' in {} is {}, out of range {}..{}", key, where, v, lo, hi));
    return std::nullopt;
  }
  return v;
}

std::optional<bool> Parser::boolean(const toml::table& t, std::string_view key,
                                    const std::string& where, Pos tpos) {
  const toml::node* n = t.get(key);
  if (!n) return std::nullopt;
  if (const auto* b = n->as_boolean()) return b->get();
  r_.error(pos_or(*n, tpos), fmt::format("'{}' in {} must be true or false, not {}", key, where, type_name(*n)));
  return std::nullopt;
}

std::optional<double> Parser::number(const toml::table& t, std::string_view key,
                                     const std::string& where, Pos tpos) {
  const toml::node* n = t.get(key);
  if (!n) return std::nullopt;
  if (const auto* f = n->as_floating_point()) return f->get();
  if (const auto* i = n->as_integer()) return static_cast<double>(i->get());
  r_.error(pos_or(*n, tpos), fmt::format("'{}' in {} must be a number, not {}", key, where, type_name(*n)));
  return std::nullopt;
}

std::vector<std::pair<std::string, Pos>> Parser::strings(const toml::table& t, std::string_view key,
                                                         const std::string& where, Pos tpos) {
  std::vector<std::pair<std::string, Pos>> out;
  const toml::node* n = t.get(key);
  if (!n) return out;
  Pos p = pos_or(*n, tpos);
  if (const auto* s = n->as_string()) {
    out.emplace_back(s->get(), p);
    return out;
  }
  const auto* a = n->as_array();
  if (!a) {
    r_.error(p, fmt::format("'{}' in {} must be a string or a list of strings, not {}", key, where,
                            type_name(*n)));
    return out;
  }
  for (const auto& el : *a) {
    if (const auto* s = el.as_string())
      out.emplace_back(s->get(), pos_or(el, p));
    else
      r_.error(pos_or(el, p), fmt::format("'{}' in {} must hold strings, not {}", key, where, type_name(el)));
  }
  return out;
}

std::vector<IpPrefix> Parser::prefixes(const toml::table& t, std::string_view key,
                                       const std::string& where, Pos tpos) {
  std::vector<IpPrefix> out;
  for (const auto& [text, p] : strings(t, key, where, tpos))
    if (auto pfx = prefix(text, p, where)) out.push_back(*pfx);
  return out;
}

std::optional<IpPrefix> Parser::prefix(const std::string& text, Pos p, const std::string& where) {
  if (auto pfx = IpPrefix::parse(text)) return pfx;
  if (IpAddr::parse(text))
    r_.error(p, fmt::format("address {} in {} has no prefix length", shown(text), where),
             fmt::format("write it in CIDR form, e.g. \"{}/{}\"", text,
                         IpAddr::parse(text)->v4() ? "24" : "64"));
  else
    r_.error(
        p, fmt::format("{} in {} is not an IPv4 or IPv6 address in CIDR form", shown(text), where),
        "e.g. \"10.0.0.1/24\" or \"fd00::1/64\"");
  return std::nullopt;
}

// accept_ip6ip6 and ip6tnl0: the IPv6 counterparts of accept_ipip and tunl0.
void Parser::parse_ip6tnl0(Node& n, const toml::table& t, const std::string& where, Pos tpos) {
  n.accept_ip6ip6 = boolean(t, "accept_ip6ip6", where, tpos).value_or(false);
  n.ip6tnl0_addresses = prefixes(t, "ip6tnl0", where, tpos);
  if (n.ip6tnl0_addresses.empty()) return;
  if (!n.accept_ip6ip6)
    r_.error(
        pos_at(t, "ip6tnl0", tpos),
        fmt::format("{} has ip6tnl0 addresses but does not accept IPv6-in-IPv6", where),
        "add `accept_ip6ip6 = true` to the node (ip6tnl0 exists only once ip6_tunnel is loaded)");
  for (const auto& a : n.ip6tnl0_addresses)
    if (a.addr.v4())
      r_.error(
          pos_at(t, "ip6tnl0", tpos),
          fmt::format("{} puts IPv4 address {} on ip6tnl0", where, a.str()),
          "ip6tnl0 carries IPv6 VIPs; an IPv4 TUN VIP goes on tunl0 (with accept_ipip = true)");
}

// lo = "10.0.0.100/32", or a list whose items are such strings or tables
// { address = "10.0.0.100/32", scope = "host" | "global" }. Scope host is what
// arp_ignore = 3 keeps out of ARP.
void Parser::parse_lo(Node& n, const toml::table& t, const std::string& where, Pos tpos) {
  const toml::node* v = t.get("lo");
  const toml::array* a = v ? v->as_array() : nullptr;
  if (!a) {
    n.lo_addresses = prefixes(t, "lo", where, tpos);
    return;
  }
  Pos ap = pos_or(*v, tpos);
  for (const auto& el : *a) {
    Pos p = pos_or(el, ap);
    if (const auto* s = el.as_string()) {
      if (auto pfx = prefix(s->get(), p, where)) n.lo_addresses.push_back(*pfx);
      continue;
    }
    const auto* et = el.as_table();
    if (!et) {
      r_.error(p,
               fmt::format("'lo' in {} must hold strings or {{ address, scope }} tables, not {}",
                           where, type_name(el)),
               "e.g. lo = [\"10.0.0.100/32\", { address = \"10.0.0.101/32\", scope = \"host\" }]");
      continue;
    }
    std::string lwhere = "an address on lo of " + where;
    unknown_keys(*et, {"address", "scope"}, lwhere, p);
    auto text = str(*et, "address", lwhere, p, true);
    auto scope = str(*et, "scope", lwhere, p);
    std::optional<IpPrefix> pfx;
    if (text) pfx = prefix(*text, pos_or(*et->get("address"), p), lwhere);
    if (scope && *scope != "host" && *scope != "global") {
      r_.error(pos_or(*et->get("scope"), p),
               fmt::format("scope {} in {} is not \"host\" or \"global\"", shown(*scope), lwhere),
               "scope = \"host\" keeps the address out of ARP under arp_ignore = 3; \"global\" is "
               "the default");
      continue;
    }
    if (!pfx) continue;
    n.lo_addresses.push_back(*pfx);
    if (scope == "host") n.lo_scope_host.push_back(pfx->addr);
  }
}

std::optional<IpAddr> Parser::address(const toml::table& t, std::string_view key,
                                      const std::string& where, Pos tpos, bool required) {
  auto s = str(t, key, where, tpos, required);
  if (!s) return std::nullopt;
  if (auto a = IpAddr::parse(*s)) return a;
  Pos p = pos_or(*t.get(key), tpos);
  if (IpPrefix::parse(*s))
    r_.error(p, fmt::format("'{}' in {} must be a plain address, not a prefix", key, where),
             fmt::format("drop the prefix length: \"{}\"", s->substr(0, s->find('/'))));
  else
    r_.error(p, fmt::format("'{}' in {} is not an IPv4 or IPv6 address: {}", key, where, shown(*s)));
  return std::nullopt;
}

bool Parser::name_ok(const std::string& name, Pos p, const std::string& what) {
  if (auto why = bad_name(name)) {
    r_.error(p, fmt::format("{} name {} {}", what, shown(name), *why),
             "use letters, digits, '_' and '-' (not first), at most " +
                 std::to_string(kMaxNameLen) + " bytes");
    return false;
  }
  return true;
}

Topology Parser::run(const toml::table& root) {
  Topology topo;
  const Pos top{1, 1};
  unknown_keys(root, {"version", "name", "description", "exercise", "switches", "nodes", "checks"},
               "the topology", top);
  if (auto v = integer(root, "version", "the topology", top, 0,
                       std::numeric_limits<int64_t>::max())) {
    if (*v != 1)
      r_.error(pos_at(root, "version", top),
               fmt::format("unsupported topology version {}", *v),
               "this labctl reads version = 1");
    topo.version = static_cast<int>(*v);
  } else if (!root.get("version")) {
    r_.error(top, "the topology needs 'version'", "add `version = 1` at the top");
  }
  if (auto n = str(root, "name", "the topology", top, true)) {
    topo.name = *n;
    if (name_ok(*n, pos_at(root, "name", top), "lab"))
      if (auto why = bad_lab_name(*n))
        r_.error(pos_at(root, "name", top), fmt::format("lab name {} {}", shown(*n), *why),
                 "choose another name");
  }
  topo.description = str(root, "description", "the topology", top).value_or("");
  if (const auto* ex = root.get("exercise")) topo.exercise = parse_exercise(*ex, pos_at(root, "exercise", top));

  if (const auto* sw = root.get("switches"))
    if (const auto* t = table_of(*sw, "'switches'", top))
      for (const auto& e : entries(*t, top)) topo.switches.push_back(parse_switch(e));
  if (const auto* nodes = root.get("nodes")) {
    if (const auto* t = table_of(*nodes, "'nodes'", top))
      for (const auto& e : entries(*t, top)) topo.nodes.push_back(parse_node(e));
  } else {
    r_.error(top, "the topology has no nodes", "add at least one [nodes.<name>] table");
  }
  if (const auto* checks = root.get("checks"))
    if (const auto* t = table_of(*checks, "'checks'", top))
      for (const auto& e : entries(*t, top)) topo.checks.push_back(parse_check(e));
  return topo;
}

Exercise Parser::parse_exercise(const toml::node& n, Pos p) {
  Exercise ex;
  ex.pos = p;
  const std::string where = "[exercise]";
  const toml::table* t = table_of(n, where, p);
  if (!t) return ex;
  Pos tp = pos_or(*t, p);
  unknown_keys(*t, {"task", "look_at", "breaks"}, where, tp);
  ex.task = str(*t, "task", where, tp, true).value_or("");
  for (auto& [s, sp] : strings(*t, "look_at", where, tp)) ex.look_at.push_back(std::move(s));
  const auto& known = exercise_rules();
  for (auto& [s, sp] : strings(*t, "breaks", where, tp)) {
    if (std::find(known.begin(), known.end(), s) == known.end())
      r_.error(sp, fmt::format("{} names no LVS rule an exercise can break: {}", where, shown(s)),
               did_you_mean(s, known, fmt::format("rules: {}", fmt::join(known, ", "))));
    ex.breaks.push_back(std::move(s));
  }
  return ex;
}

Switch Parser::parse_switch(const Entry& e) {
  Switch s;
  s.name = e.name;
  s.pos = e.key_pos;
  name_ok(s.name, e.key_pos, "switch");
  std::string where = "switch " + plain(s.name);
  const toml::table* t = table_of(*e.value, where, e.key_pos);
  if (!t) return s;
  Pos tp = pos_or(*t, e.key_pos);
  unknown_keys(*t, {"mtu"}, where, tp);
  s.mtu = static_cast<int>(integer(*t, "mtu", where, tp, kMinMtu, kMaxMtu).value_or(0));
  return s;
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
                "sysctl", "tunnels", "services", "agents", "marks", "nat"},
               where, tp);

  if (const auto* ifs = t->get("interfaces"))
    if (const auto* it = table_of(*ifs, "'interfaces' of " + where, tp))
      for (const auto& ie : entries(*it, tp)) n.interfaces.push_back(parse_interface(n.name, ie));

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
  return n;
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

std::optional<FwdMethod> Parser::method(const toml::table& t, const std::string& where, Pos tpos) {
  auto m = str(t, "method", where, tpos);
  if (!m) return std::nullopt;
  if (auto fm = parse_method(*m)) return fm;
  std::string hint =
      did_you_mean(*m, {"nat", "dr", "tun", "local"}, "one of nat (-m), dr (-g), tun (-i), local (the director itself)");
  if (*m == "masq" || *m == "masquerading") hint = "did you mean 'nat'? (ipvsadm -m)";
  if (*m == "gatewaying" || *m == "direct") hint = "did you mean 'dr'? (ipvsadm -g)";
  if (*m == "ipip" || *m == "tunnel") hint = "did you mean 'tun'? (ipvsadm -i)";
  r_.error(pos_at(t, "method", tpos), fmt::format("unknown forwarding method {} in {}", shown(*m), where), hint);
  return std::nullopt;
}

VirtualService Parser::parse_service(const std::string& node, const Entry& e) {
  VirtualService s;
  s.name = e.name;
  s.pos = e.key_pos;
  name_ok(s.name, e.key_pos, "service");
  std::string where = "service " + plain(s.name);
  const toml::table* t = table_of(*e.value, where, e.key_pos);
  if (!t) return s;
  Pos tp = pos_or(*t, e.key_pos);
  s.keys = key_positions(*t);
  (void)node;
  unknown_keys(*t, {"proto", "vip", "port", "fwmark", "family", "scheduler", "persistence",
                    "netmask", "sched_flags", "one_packet", "method", "real_servers"},
               where, tp);
  if (t->get("fwmark")) {
    s.fwmark = static_cast<uint32_t>(integer(*t, "fwmark", where, tp, 1, UINT32_MAX).value_or(0));
    for (const char* k : {"vip", "port", "proto"})
      if (t->get(k))
        r_.error(pos_at(*t, k, tp), fmt::format("{} is a fwmark service and cannot have '{}'", where, k),
                 "a fwmark service matches packets by firewall mark; the mark rules pick address and port");
    auto fam = str(*t, "family", where, tp).value_or("ipv4");
    if (fam == "ipv4")
      s.vip = *IpAddr::parse("0.0.0.0");
    else if (fam == "ipv6")
      s.vip = *IpAddr::parse("::");
    else
      r_.error(pos_at(*t, "family", tp), fmt::format("family of {} must be \"ipv4\" or \"ipv6\"", where));
  } else {
    if (t->get("family"))
      r_.error(pos_at(*t, "family", tp), fmt::format("'family' in {} applies only to fwmark services", where),
               "the VIP's address decides the family");
    if (auto vip = address(*t, "vip", where, tp, true)) {
      s.vip = *vip;
      // IPVS would take 0.0.0.0 as a service address, but no packet is ever sent to it:
      // the service could never be reached. A fwmark service is the way to match any.
      if (vip->unspecified())
        r_.error(pos_at(*t, "vip", tp),
                 fmt::format("vip {} of {} is the unspecified address: no client can connect to it", vip->str(),
                             where),
                 "give the service's address, or use fwmark = <mark> to match packets by firewall mark");
    }
    // Port 0 is IPVS's "any port" service; the rule that it needs persistence is checked
    // below, once persistence is read.
    s.port = static_cast<uint16_t>(integer(*t, "port", where, tp, 0, 65535, true).value_or(0));
    auto proto = str(*t, "proto", where, tp).value_or("tcp");
    if (auto p = parse_proto(proto))
      s.proto = *p;
    else
      r_.error(pos_at(*t, "proto", tp),
               fmt::format("proto of {} must be \"tcp\", \"udp\" or \"sctp\", not {}", where, shown(proto)),
               did_you_mean(proto, {"tcp", "udp", "sctp"}, "for other protocols use a fwmark service"));
  }
  if (auto sched = str(*t, "scheduler", where, tp)) {
    if (is_scheduler(*sched))
      s.scheduler = *sched;
    else
      r_.error(pos_at(*t, "scheduler", tp), fmt::format("unknown scheduler {} in {}", shown(*sched), where),
               did_you_mean(*sched, schedulers(), fmt::format("known: {}", fmt::join(schedulers(), ", "))));
  } else {
    s.scheduler = "wlc";  // ipvsadm's default
  }
  s.persistence =
      static_cast<uint32_t>(integer(*t, "persistence", where, tp, 0, kMaxPersistence).value_or(0));
  service_options(s, *t, where, tp);
  FwdMethod default_method = method(*t, where, tp).value_or(FwdMethod::Dr);
  if (const auto* rs = t->get("real_servers")) {
    const auto* arr = rs->as_array();
    if (!arr) {
      r_.error(pos_or(*rs, tp), fmt::format("real_servers of {} must be a list of tables", where),
               "e.g. real_servers = [{ node = \"rs1\" }, { address = \"10.0.0.12\" }]");
    } else {
      for (std::size_t idx = 0; idx < arr->size(); ++idx) {
        std::string rwhere = fmt::format("real server {} of {}", idx + 1, where);
        if (const auto* rt = table_of((*arr)[idx], rwhere, pos_or(*rs, tp)))
          s.real_servers.push_back(
              parse_real_server(rwhere, *rt, pos_or(*rt, pos_or(*rs, tp)), default_method));
      }
    }
  }
  return s;
}

void Parser::service_options(VirtualService& s, const toml::table& t, const std::string& where, Pos tp) {
  // The kernel schedules a non-persistent port-0 service never: ip_vs_schedule() drops each
  // packet ("port zero only supported in persistent services"), and ipvsadm refuses it.
  const toml::node* port = t.get("port");
  if (!s.fwmark && port && port->value<int64_t>() == int64_t{0} && s.persistence == 0)
    r_.error(pos_at(t, "port", tp),
             fmt::format("port 0 (any port) of {} needs persistence", where),
             "IPVS schedules a port-0 service only by persistence templates; add persistence = "
             "<seconds>, e.g. 300, or give the port");
  if (const toml::node* nm = t.get("netmask")) {
    Pos p = pos_or(*nm, tp);
    const int max = s.vip.v6() ? 128 : 32;
    std::optional<int> len;
    if (const auto* i = nm->as_integer()) {
      if (i->get() < 0 || i->get() > max)
        r_.error(p, fmt::format("netmask of {} is {}, out of range 0..{} (a prefix length)", where, i->get(), max));
      else
        len = static_cast<int>(i->get());
    } else if (const auto* str_v = nm->as_string()) {
      // ipvsadm's own spelling for IPv4 (-M 255.255.255.0); it must be a contiguous mask.
      auto mask = IpAddr::parse(str_v->get());
      int bits = 0;
      bool contiguous = mask && mask->v4() && s.vip.v4();
      if (contiguous) {
        uint32_t m = ntohl(mask->v4_be());
        while (bits < 32 && (m & (0x80000000u >> bits))) ++bits;
        contiguous = bits == 32 || (m << bits) == 0;
      }
      if (contiguous)
        len = bits;
      else
        r_.error(p, fmt::format("netmask {} of {} is not a contiguous IPv4 mask", shown(str_v->get()), where),
                 s.vip.v6() ? "an IPv6 service takes a prefix length, e.g. netmask = 64"
                            : "give a prefix length (netmask = 24) or a mask like \"255.255.255.0\"");
    } else {
      r_.error(p, fmt::format("netmask of {} must be a prefix length or an IPv4 mask, not {}", where, type_name(*nm)));
    }
    if (len && s.persistence == 0)
      r_.error(p, fmt::format("netmask of {} applies only to a persistent service", where),
               "the netmask says which clients share a persistence template; add persistence = <seconds>");
    else
      s.netmask = len;
  }
  for (auto& [name, p] : strings(t, "sched_flags", where, tp)) {
    const SchedFlag* f = find_sched_flag(name);
    if (!f) {
      std::vector<std::string> names;
      for (const auto& x : sched_flags()) names.push_back(x.name);
      r_.error(p, fmt::format("unknown scheduler flag {} in {}", shown(name), where),
               did_you_mean(name, names, fmt::format("known: {}", fmt::join(names, ", "))));
      continue;
    }
    // The flag bits are private to a scheduler: sh-port on rr would be SCHED2 that rr
    // ignores (ipvsadm refuses it as "incompatible scheduler flag").
    if (f->scheduler != s.scheduler) {
      r_.error(p, fmt::format("scheduler flag {} of {} is for scheduler {}, and the service uses {}", name, where,
                              f->scheduler, s.scheduler),
               fmt::format("set scheduler = \"{}\", or drop the flag", f->scheduler));
      continue;
    }
    if (std::find(s.sched_flags.begin(), s.sched_flags.end(), name) != s.sched_flags.end()) {
      r_.error(p, fmt::format("scheduler flag {} of {} is given twice", name, where));
      continue;
    }
    s.sched_flags.push_back(name);
  }
  if (auto op = boolean(t, "one_packet", where, tp)) {
    // ip_vs_onepacket_enabled() applies it to UDP only; a fwmark service may carry UDP.
    if (*op && !s.fwmark && s.proto != Proto::Udp)
      r_.error(pos_at(t, "one_packet", tp),
               fmt::format("one_packet of {} needs a UDP service, and this one is {}", where, to_string(s.proto)),
               "one-packet scheduling sends each UDP datagram to a server of its own; it has no "
               "meaning for connections (ipvsadm: \"only for UDP virtual services\")");
    else
      s.one_packet = *op;
  }
}

std::vector<uint16_t> Parser::ports(const toml::table& t, std::string_view key, const std::string& where,
                                    Pos tpos) {
  std::vector<uint16_t> out;
  const toml::node* n = t.get(key);
  if (!n) return out;
  Pos p = pos_or(*n, tpos);
  std::vector<const toml::node*> items;
  if (const auto* a = n->as_array()) {
    for (const auto& el : *a) items.push_back(&el);
    if (a->empty()) r_.error(p, fmt::format("'{}' of {} is an empty list", key, where), "leave it out to match any port");
  } else {
    items.push_back(n);
  }
  if (items.size() > kMaxMarkPorts) {
    r_.error(p, fmt::format("'{}' of {} lists {} ports, more than {}", key, where, items.size(), kMaxMarkPorts),
             "split the rule, or mark by address");
    return out;
  }
  for (const auto* el : items) {
    const auto* i = el->as_integer();
    if (!i || i->get() < 1 || i->get() > 65535) {
      r_.error(pos_or(*el, p), fmt::format("'{}' of {} must be a port 1..65535 or a list of them", key, where));
      continue;
    }
    auto port = static_cast<uint16_t>(i->get());
    if (std::find(out.begin(), out.end(), port) != out.end())
      r_.error(pos_or(*el, p), fmt::format("'{}' of {} lists port {} twice", key, where, port));
    else
      out.push_back(port);
  }
  return out;
}

std::optional<IpPrefix> Parser::match_prefix(const toml::table& t, std::string_view key, const std::string& where,
                                             Pos tpos) {
  auto text = str(t, key, where, tpos);
  if (!text) return std::nullopt;
  Pos p = pos_at(t, key, tpos);
  auto pfx = IpPrefix::parse(*text, /*allow_bare=*/true);
  if (!pfx) {
    r_.error(p, fmt::format("'{}' of {} is not an address or prefix: {}", key, where, shown(*text)),
             "e.g. \"10.0.0.100\" or \"10.0.0.0/24\"");
    return std::nullopt;
  }
  if (pfx->network() != *pfx) {
    r_.error(p, fmt::format("'{}' of {}: {} has host bits set", key, where, shown(*text)),
             fmt::format("did you mean \"{}\"?", pfx->network().str()));
    return std::nullopt;
  }
  return pfx;
}

std::vector<MarkRule> Parser::parse_marks(const std::string& node, const toml::node& n, Pos tpos) {
  std::vector<MarkRule> out;
  const auto* arr = n.as_array();
  if (!arr) {
    r_.error(pos_or(n, tpos), fmt::format("marks of node {} must be a list of tables", plain(node)),
             "write each rule as [[nodes." + plain(node) + ".marks]] with proto, dst, dport and mark");
    return out;
  }
  for (std::size_t idx = 0; idx < arr->size(); ++idx) {
    std::string where = fmt::format("mark rule {} of node {}", idx + 1, plain(node));
    const toml::table* t = table_of((*arr)[idx], where, pos_or(n, tpos));
    if (!t) continue;
    Pos tp = pos_or(*t, pos_or(n, tpos));
    MarkRule m;
    m.pos = tp;
    m.keys = key_positions(*t);
    unknown_keys(*t, {"proto", "src", "dst", "sport", "dport", "iif", "mark"}, where, tp);
    m.mark = static_cast<uint32_t>(integer(*t, "mark", where, tp, 1, UINT32_MAX, true).value_or(0));
    if (auto proto = str(*t, "proto", where, tp)) {
      m.proto = parse_proto(*proto);
      if (!m.proto)
        r_.error(pos_at(*t, "proto", tp), fmt::format("proto of {} must be \"tcp\", \"udp\" or \"sctp\", not {}",
                                                      where, shown(*proto)),
                 did_you_mean(*proto, {"tcp", "udp", "sctp"}, "leave proto out to match every protocol"));
    }
    m.src = match_prefix(*t, "src", where, tp);
    m.dst = match_prefix(*t, "dst", where, tp);
    if (m.src && m.dst && m.src->addr.family != m.dst->addr.family)
      r_.error(pos_at(*t, "dst", tp), fmt::format("{} mixes address families: src is IPv{}, dst is IPv{}", where,
                                                  m.src->addr.v4() ? 4 : 6, m.dst->addr.v4() ? 4 : 6),
               "a packet is IPv4 or IPv6: write one rule per family");
    m.sport = ports(*t, "sport", where, tp);
    m.dport = ports(*t, "dport", where, tp);
    for (const char* key : {"sport", "dport"})
      if (t->get(key) && !t->get("proto"))
        r_.error(pos_at(*t, key, tp), fmt::format("{} matches a port ('{}') but names no proto", where, key),
                 "ports belong to a protocol: add proto = \"tcp\", \"udp\" or \"sctp\"");
    m.iif = str(*t, "iif", where, tp).value_or("");
    if (t->get("iif"))
      if (auto why = bad_ifname(m.iif)) r_.error(pos_at(*t, "iif", tp), fmt::format("iif {} of {} {}", shown(m.iif), where, *why));
    out.push_back(std::move(m));
  }
  return out;
}

// A nat rule matches like a mark rule and says what to rewrite. Beyond the shape of each
// value, a rule must not NAT everything by accident: a source NAT names where (oif, src or
// dst), a destination NAT what it takes (dst or dport).
std::vector<NatRule> Parser::parse_nat(const std::string& node, const toml::node& n, Pos tpos) {
  std::vector<NatRule> out;
  const auto* arr = n.as_array();
  if (!arr) {
    r_.error(pos_or(n, tpos), fmt::format("nat of node {} must be a list of tables", plain(node)),
             "write each rule as [[nodes." + plain(node) + ".nat]] with type and what it matches");
    return out;
  }
  static const std::vector<std::string> types = {"masquerade", "snat", "dnat", "redirect"};
  for (std::size_t idx = 0; idx < arr->size(); ++idx) {
    std::string where = fmt::format("nat rule {} of node {}", idx + 1, plain(node));
    const toml::table* t = table_of((*arr)[idx], where, pos_or(n, tpos));
    if (!t) continue;
    Pos tp = pos_or(*t, pos_or(n, tpos));
    NatRule r;
    r.pos = tp;
    r.keys = key_positions(*t);
    unknown_keys(*t, {"type", "proto", "src", "dst", "sport", "dport", "iif", "oif", "to"}, where,
                 tp);
    auto type = str(*t, "type", where, tp, true);
    if (!type) continue;
    if (*type == "masquerade")
      r.type = NatType::Masquerade;
    else if (*type == "snat")
      r.type = NatType::Snat;
    else if (*type == "dnat")
      r.type = NatType::Dnat;
    else if (*type == "redirect")
      r.type = NatType::Redirect;
    else {
      std::string hint = did_you_mean(*type, types, "one of masquerade, snat, dnat, redirect");
      if (*type == "masq" || *type == "MASQUERADE") hint = "did you mean 'masquerade'?";
      r_.error(pos_at(*t, "type", tp), fmt::format("unknown type {} of {}", shown(*type), where),
               hint);
      continue;
    }
    if (auto proto = str(*t, "proto", where, tp)) {
      r.proto = parse_proto(*proto);
      if (!r.proto)
        r_.error(pos_at(*t, "proto", tp),
                 fmt::format("proto of {} must be \"tcp\", \"udp\" or \"sctp\", not {}", where,
                             shown(*proto)),
                 did_you_mean(*proto, {"tcp", "udp", "sctp"},
                              "leave proto out to match every protocol"));
    }
    r.src = match_prefix(*t, "src", where, tp);
    r.dst = match_prefix(*t, "dst", where, tp);
    if (r.src && r.dst && r.src->addr.family != r.dst->addr.family)
      r_.error(pos_at(*t, "dst", tp),
               fmt::format("{} mixes address families: src is IPv{}, dst is IPv{}", where,
                           r.src->addr.v4() ? 4 : 6, r.dst->addr.v4() ? 4 : 6),
               "a packet is IPv4 or IPv6: write one rule per family");
    r.sport = ports(*t, "sport", where, tp);
    r.dport = ports(*t, "dport", where, tp);
    for (const char* key : {"sport", "dport"})
      if (t->get(key) && !t->get("proto"))
        r_.error(pos_at(*t, key, tp),
                 fmt::format("{} matches a port ('{}') but names no proto", where, key),
                 "ports belong to a protocol: add proto = \"tcp\", \"udp\" or \"sctp\"");
    for (const char* key : {"iif", "oif"}) {
      std::string dev = str(*t, key, where, tp).value_or("");
      if (t->get(key))
        if (auto why = bad_ifname(dev))
          r_.error(pos_at(*t, key, tp),
                   fmt::format("{} {} of {} {}", key, shown(dev), where, *why));
      (std::string(key) == "iif" ? r.iif : r.oif) = dev;
    }
    // Routing picks the output interface after prerouting: a dnat or redirect rule cannot
    // know it (nft would accept oifname there and never match).
    if (t->get("oif") && !r.source_nat())
      r_.error(
          pos_at(*t, "oif", tp),
          fmt::format("{} is a {} rule, which runs in prerouting, before routing picks an output "
                      "interface: it cannot match oif",
                      where, *type),
          "match the input interface with iif, or the destination with dst");
    nat_to(r, *t, where, tp);
    if (r.source_nat() && r.oif.empty() && !r.src && !r.dst)
      r_.error(
          tp,
          fmt::format("{} would {} every packet node {} sends or forwards", where,
                      r.type == NatType::Snat ? "rewrite the source of" : "masquerade",
                      plain(node)),
          "say which packets: oif = \"<the interface towards them>\", src = \"<their network>\" or "
          "dst = \"<where they go>\"");
    if (!r.source_nat() && !r.dst && r.dport.empty())
      r_.error(tp, fmt::format("{} would take every packet node {} receives", where, plain(node)),
               "say which packets: dst = \"<the address it takes>\" and/or proto with dport");
    out.push_back(std::move(r));
  }
  return out;
}

void Parser::nat_to(NatRule& r, const toml::table& t, const std::string& where, Pos tp) {
  const toml::node* to = t.get("to");
  if (r.type == NatType::Masquerade) {
    if (to)
      r_.error(pos_or(*to, tp),
               fmt::format("{} masquerades, which takes the address of the interface the packet "
                           "leaves by: it has no 'to'",
                           where),
               "for a fixed address use type = \"snat\" with to = \"<address>\"");
    return;
  }
  if (r.type == NatType::Redirect) {
    if (!to) return;
    if (to->is_string())
      r_.error(pos_or(*to, tp),
               fmt::format("'to' of {} must be a port: a redirect delivers to node itself", where),
               "e.g. to = 8080; to send to another address use type = \"dnat\"");
    else
      r.to_port = static_cast<uint16_t>(integer(t, "to", where, tp, 1, 65535).value_or(0));
  } else {
    auto text = str(t, "to", where, tp, true);
    if (!text) return;
    Pos p = pos_or(*to, tp);
    std::string addr = *text, port;
    if (!addr.empty() && addr.front() == '[') {
      auto close = addr.find("]:");
      if (close != std::string::npos) {
        port = addr.substr(close + 2);
        addr = addr.substr(1, close - 1);
      }
    } else if (std::count(addr.begin(), addr.end(), ':') == 1) {
      port = addr.substr(addr.find(':') + 1);
      addr = addr.substr(0, addr.find(':'));
    }
    auto a = IpAddr::parse(addr);
    if (!a || a->unspecified() || a->multicast()) {
      r_.error(p,
               fmt::format("'to' of {} is not an address, ADDRESS:PORT or [IPv6]:PORT: {}", where,
                           shown(*text)),
               fmt::format("e.g. to = \"10.0.0.5\", \"10.0.0.5:8080\" or \"[fd00::5]:8080\"{}",
                           a ? " (a unicast address)" : ""));
      return;
    }
    r.to = a;
    if (!port.empty()) {
      int v = 0;
      bool digits = port.size() <= 5 && std::all_of(port.begin(), port.end(),
                                                    [](char c) { return c >= '0' && c <= '9'; });
      if (digits) v = std::stoi(port);
      if (!digits || v < 1 || v > 65535) {
        r_.error(p, fmt::format("'to' of {} has port {}, not 1..65535", where, shown(port)));
        return;
      }
      r.to_port = static_cast<uint16_t>(v);
    }
    for (const auto* m : {&r.src, &r.dst})
      if (*m && (*m)->addr.family != a->family) {
        r_.error(p,
                 fmt::format(
                     "'to' of {} is IPv{} but the rule matches IPv{} packets: it would never apply",
                     where, a->v4() ? 4 : 6, a->v4() ? 6 : 4),
                 "a packet keeps its address family: write to of the family the rule matches");
        break;
      }
  }
  if (r.to_port && !r.proto)
    r_.error(pos_or(*to, tp),
             fmt::format("'to' of {} maps a port but the rule names no proto", where),
             "a port belongs to a protocol: add proto = \"tcp\", \"udp\" or \"sctp\"");
}

RealServer Parser::parse_real_server(const std::string& where, const toml::table& t, Pos tpos,
                                     FwdMethod default_method) {
  RealServer rs;
  rs.pos = tpos;
  rs.keys = key_positions(t);
  unknown_keys(t, {"node", "address", "port", "method", "weight", "u_thresh", "l_thresh"}, where, tpos);
  rs.node = str(t, "node", where, tpos).value_or("");
  if (auto a = address(t, "address", where, tpos)) rs.addr = *a;
  if (!t.get("node") && !t.get("address"))
    missing("node' or 'address", where, tpos, "name the real server: node = \"rs1\" or address = \"10.0.0.11\"");
  rs.port = static_cast<uint16_t>(integer(t, "port", where, tpos, 1, 65535).value_or(0));
  rs.method = method(t, where, tpos).value_or(default_method);
  rs.weight = static_cast<int>(integer(t, "weight", where, tpos, 0, 65535).value_or(1));
  auto u = integer(t, "u_thresh", where, tpos, 0, UINT32_MAX);
  auto l = integer(t, "l_thresh", where, tpos, 0, UINT32_MAX);
  rs.u_thresh = static_cast<uint32_t>(u.value_or(0));
  rs.l_thresh = static_cast<uint32_t>(l.value_or(0));
  if (rs.l_thresh && rs.u_thresh && rs.l_thresh > rs.u_thresh)
    r_.error(pos_at(t, "l_thresh", tpos),
             fmt::format("l_thresh {} of {} is above its u_thresh {}", rs.l_thresh, where, rs.u_thresh),
             "the lower threshold (when the server is used again) must not exceed the upper one");
  return rs;
}

class Parser::AgentReader final : public AgentTable {
 public:
  AgentReader(Parser& p, const toml::table& t, const std::string& w, Pos tp)
      : AgentTable(w), p_(p), t_(t), tp_(tp) {}
  bool has(std::string_view key) const override { return t_.get(key) != nullptr; }
  bool is_string(std::string_view key) const override { return t_.get(key) && t_.get(key)->is_string(); }
  bool is_array(std::string_view key) const override { return t_.get(key) && t_.get(key)->is_array(); }
  Pos at(std::string_view key) const override { return pos_at(t_, key, tp_); }
  std::optional<std::string> str(std::string_view key, bool required) override {
    return p_.str(t_, key, where, tp_, required);
  }
  std::optional<int64_t> integer(std::string_view key, int64_t lo, int64_t hi) override {
    return p_.integer(t_, key, where, tp_, lo, hi);
  }
  std::vector<std::pair<std::string, Pos>> strings(std::string_view key) override {
    return p_.strings(t_, key, where, tp_);
  }
  void missing(std::string_view key, std::string hint) override { p_.missing(key, where, tp_, std::move(hint)); }
  void error(Pos p, std::string message, std::string hint) override {
    p_.r_.error(p, std::move(message), std::move(hint));
  }
  KeepalivedSpec keepalived() override { return p_.parse_keepalived(t_, where, tp_); }

 private:
  Parser& p_;
  const toml::table& t_;
  Pos tp_;
};

Agent Parser::parse_agent(const std::string& node, const Entry& e) {
  Agent a;
  a.name = e.name;
  a.pos = e.key_pos;
  name_ok(a.name, e.key_pos, "agent");
  std::string where = fmt::format("agent {}:{}", plain(node), plain(a.name));
  const toml::table* t = table_of(*e.value, where, e.key_pos);
  if (!t) return a;
  Pos tp = pos_or(*t, e.key_pos);
  a.keys = key_positions(*t);
  auto kind = str(*t, "kind", where, tp, true);
  if (!kind) return a;
  const AgentKindSpec* k = find_agent_kind(*kind);
  if (!k) {
    std::vector<std::string> kinds;
    for (const auto& spec : agent_kinds()) kinds.push_back(spec.name);
    r_.error(pos_at(*t, "kind", tp), fmt::format("unknown agent kind {} in {}", shown(*kind), where),
             did_you_mean(*kind, kinds, fmt::format("one of {}", fmt::join(kinds, ", "))));
    return a;
  }
  a.kind = k->name;
  if (!k->checks_own_keys) {
    Keys known = {"kind"};
    known.insert(known.end(), k->keys.begin(), k->keys.end());
    known.insert(known.end(), {"restart", "ready_timeout"});
    unknown_keys(*t, known, where, tp);
  }
  AgentReader reader(*this, *t, where, tp);
  k->parse(reader, a);
  if (auto ready = number(*t, "ready_timeout", where, tp)) {
    if (!(*ready >= 0.1 && *ready <= kMaxAgentReadyTimeout))
      r_.error(pos_at(*t, "ready_timeout", tp),
               fmt::format("ready_timeout of {} must be at least 0.1 and at most {} seconds", where,
                           kMaxAgentReadyTimeout),
               "it is how long the agent may take to listen on its port (default 5), e.g. ready_timeout = 30");
    else
      a.ready_timeout_ms = static_cast<int>(*ready * 1000);
  }
  if (auto restart = str(*t, "restart", where, tp)) {
    if (*restart == "on-failure") a.restart_on_failure = true;
    else if (*restart != "no")
      r_.error(pos_at(*t, "restart", tp), fmt::format("restart of {} is {}", where, shown(*restart)),
               did_you_mean(*restart, {"no", "on-failure"}, "one of \"no\" (the default) or \"on-failure\""));
  }
  return a;
}

Check Parser::parse_check(const Entry& e) {
  Check c;
  c.name = e.name;
  c.pos = e.key_pos;
  name_ok(c.name, e.key_pos, "check");
  std::string where = "check " + plain(c.name);
  const toml::table* t = table_of(*e.value, where, e.key_pos);
  if (!t) return c;
  Pos tp = pos_or(*t, e.key_pos);
  c.keys = key_positions(*t);
  auto kind = str(*t, "kind", where, tp, true);
  if (!kind) return c;
  const CheckKindSpec* spec = find_check_kind(*kind);
  if (!spec) {
    std::vector<std::string> kinds;
    for (const auto& k : check_kinds()) kinds.push_back(k.name);
    r_.error(pos_at(*t, "kind", tp), fmt::format("unknown check kind {} in {}", shown(*kind), where),
             did_you_mean(*kind, kinds, fmt::format("one of {}", fmt::join(kinds, ", "))));
    return c;
  }
  c.kind = *kind;
  Keys known = {"kind"};
  known.insert(known.end(), spec->required.begin(), spec->required.end());
  known.insert(known.end(), spec->optional.begin(), spec->optional.end());
  unknown_keys(*t, known, where, tp);
  for (const auto& req : spec->required)
    if (!t->get(req)) missing(req, where, tp);
  if (spec->needs_target && !t->get("to") && !t->get("service"))
    missing("to' or 'service", where, tp,
            "give the target: to = \"<address or node>\", or service = \"<service>\" for its VIP");

  c.from = str(*t, "from", where, tp).value_or("");
  c.to_text = str(*t, "to", where, tp).value_or("");
  c.service = str(*t, "service", where, tp).value_or("");
  // A present but empty value would otherwise pass as "not given" and skip every check
  // of the reference it should have been.
  for (const char* key : {"from", "to", "service"})
    if (const auto* v = t->get(key); v && v->is_string() && v->as_string()->get().empty())
      r_.error(pos_at(*t, key, tp), fmt::format("'{}' of {} is empty", key, where),
               std::string(key) == "from" ? "name the node the check runs in" : "name the target");
  if (spec->needs_target && t->get("to") && t->get("service"))
    r_.error(pos_at(*t, "service", tp), fmt::format("{} has both 'to' and 'service'", where),
             "give one target: to = \"<address or node>\", or service = \"<service>\" for its VIP");
  c.port = static_cast<uint16_t>(integer(*t, "port", where, tp, 1, 65535).value_or(0));
  for (const auto& [s, p] : strings(*t, "expect", where, tp)) c.expect.push_back(s);
  if (const auto* ex = t->get("expect"); ex && ex->is_array() && ex->as_array()->empty())
    r_.error(pos_or(*ex, tp), fmt::format("expect of {} is empty: no body could match", where),
             "list the strings one of which the body must contain, or leave expect out");
  for (const auto* keys : {&spec->required, &spec->optional})
    for (const auto& key : *keys) check_param(*t, key, c, where, tp);
  fill_check_defaults(c);
  if (t->get("banner") && c.params.udp())
    r_.error(pos_at(*t, "banner", tp), fmt::format("{} reads a banner, which needs TCP, but says proto = \"udp\"", where),
             "a banner is what a TCP server says first; for UDP give send and expect");
  if (t->get("send") && !c.params.udp() && !t->get("service"))
    r_.error(pos_at(*t, "send", tp), fmt::format("{} has a UDP payload (send) but is not a UDP check", where),
             "add proto = \"udp\"");
  return c;
}

// One of a check's own keys (check_keys()), read by its reader through the parser's typed
// reads; the shared references (from, to, service, port, expect) are parse_check's.
void Parser::check_param(const toml::table& t, std::string_view key, Check& c, const std::string& where,
                         Pos tp) {
  const CheckKey* k = find_check_key(key);
  const toml::node* v = t.get(key);
  if (!k || !v) return;
  CheckKeyRead read{std::string(key),
                    where,
                    c,
                    r_,
                    pos_or(*v, tp),
                    v->is_array() && v->as_array()->empty(),
                    [&] { return str(t, key, where, tp); },
                    [&](int64_t lo, int64_t hi) { return integer(t, key, where, tp, lo, hi); },
                    [&] { return number(t, key, where, tp); },
                    [&] { return strings(t, key, where, tp); }};
  k->read(read);
}

KeepalivedSpec Parser::parse_keepalived(const toml::table& t, const std::string& where, Pos tp) {
  KeepalivedSpec k;
  const Keys common = {"kind", "services", "restart", "ready_timeout"};
  if (t.get("config")) {
    // A config given verbatim says everything itself; keys that would generate one beside
    // it would be silently ignored, so they are errors.
    Keys known = common;
    known.push_back("config");
    unknown_keys(t, known, where + " (with 'config', keepalived.conf is used as given)", tp);
    k.config = str(t, "config", where, tp).value_or("");
    if (k.config.find_first_not_of(" \t\r\n") == std::string::npos && t.get("config")->is_string())
      r_.error(pos_at(t, "config", tp), fmt::format("config of {} is empty", where),
               "give keepalived.conf's text, or leave config out to have it generated from the topology");
    if (k.config.find('\0') != std::string::npos)
      r_.error(pos_at(t, "config", tp), fmt::format("config of {} contains a NUL byte", where));
  } else {
    Keys known = common;
    known.insert(known.end(), {"interface", "state", "priority", "virtual_router_id", "advert_int", "vips",
                               "gateway"});
    unknown_keys(t, known, where, tp);
    k.vrrp = parse_vrrp(t, where, tp, false);
    if (const auto* g = t.get("gateway"))
      if (const auto* gt = table_of(*g, "gateway of " + where, tp)) {
        VrrpInstance gw = parse_vrrp(*gt, "gateway of " + where, pos_or(*gt, tp), true);
        gw.master = k.vrrp->master;
        gw.priority = k.vrrp->priority;
        gw.advert_int = k.vrrp->advert_int;
        if (gw.virtual_router_id && gw.virtual_router_id == k.vrrp->virtual_router_id)
          r_.error(pos_at(*gt, "virtual_router_id", tp),
                   fmt::format("gateway of {} has virtual_router_id {}, as its main instance", where,
                               gw.virtual_router_id),
                   "the two synced instances are two VRRP routers: give the gateway its own id, e.g. " +
                       std::to_string(gw.virtual_router_id % 255 + 1));
        k.gateway = std::move(gw);
      }
  }
  if (const auto* sv = t.get("services")) {
    if (const auto* arr = sv->as_array()) {
      // services = ["web", "dns"]: every option at its default.
      for (const auto& [name, p] : strings(t, "services", where, tp)) {
        KeepalivedService s;
        s.name = name;
        s.pos = p;
        k.services.push_back(std::move(s));
      }
      if (arr->empty())
        r_.error(pos_or(*sv, tp), fmt::format("services of {} is empty", where),
                 "name the services keepalived manages, or leave services out");
    } else if (const auto* st = table_of(*sv, "services of " + where, tp)) {
      for (const auto& se : entries(*st, tp)) {
        if (!k.config.empty() && se.value->is_table() && !se.value->as_table()->empty())
          r_.error(se.key_pos,
                   fmt::format("service {} of {} has options, but keepalived.conf is given verbatim", plain(se.name),
                               where),
                   "write its health check into the config's virtual_server block, and list it here "
                   "only by name: services = [\"" + se.name + "\"]");
        k.services.push_back(parse_keepalived_service(se, where));
      }
    }
  }
  return k;
}

VrrpInstance Parser::parse_vrrp(const toml::table& t, const std::string& where, Pos tp, bool gateway) {
  VrrpInstance v;
  v.pos = tp;
  v.keys = key_positions(t);
  if (gateway) unknown_keys(t, {"interface", "virtual_router_id", "vips"}, where, tp);
  v.interface = str(t, "interface", where, tp, true).value_or("");
  v.virtual_router_id = static_cast<int>(integer(t, "virtual_router_id", where, tp, 1, 255, true).value_or(0));
  v.vips = prefixes(t, "vips", where, tp);
  if (!t.get("vips"))
    missing("vips", where, tp, "the floating addresses keepalived moves, e.g. vips = [\"10.10.0.100/24\"]");
  else if (const auto* a = t.get("vips")->as_array(); a && a->empty())
    r_.error(pos_at(t, "vips", tp), fmt::format("vips of {} is empty", where),
             "give the floating addresses keepalived moves, e.g. vips = [\"10.10.0.100/24\"]");
  if (gateway) return v;
  if (auto state = str(t, "state", where, tp, true)) {
    if (*state == "MASTER") v.master = true;
    else if (*state != "BACKUP")
      r_.error(pos_at(t, "state", tp), fmt::format("state of {} is {}, not MASTER or BACKUP", where, shown(*state)),
               did_you_mean(*state, {"MASTER", "BACKUP"}, "keepalived's words: \"MASTER\" or \"BACKUP\""));
  }
  // 255 is the address owner's priority (RFC 5798): the floating VIP is nobody's own address.
  v.priority = static_cast<int>(integer(t, "priority", where, tp, 1, 254).value_or(100));
  if (auto adv = number(t, "advert_int", where, tp)) {
    if (!(*adv >= 0.01 && *adv <= 255))
      r_.error(pos_at(t, "advert_int", tp), fmt::format("advert_int of {} must be 0.01..255 seconds", where),
               "it is the VRRP advert interval; the backup takes over after about 3 of them, e.g. advert_int = 1");
    else
      v.advert_int = *adv;
  }
  return v;
}

KeepalivedService Parser::parse_keepalived_service(const Entry& e, const std::string& where) {
  KeepalivedService s;
  s.name = e.name;
  s.pos = e.key_pos;
  const std::string w = fmt::format("service {} of {}", plain(e.name), where);
  const toml::table* t = table_of(*e.value, w, e.key_pos);
  if (!t) return s;
  Pos tp = pos_or(*t, e.key_pos);
  unknown_keys(*t, {"check", "path", "status", "delay_loop", "connect_timeout", "retry", "sorry_server",
                    "inhibit_on_failure"},
               w, tp);
  if (auto c = str(*t, "check", w, tp)) {
    if (*c != "tcp" && *c != "http" && *c != "udp" && *c != "none")
      r_.error(pos_at(*t, "check", tp), fmt::format("check of {} is {}", w, shown(*c)),
               did_you_mean(*c, {"tcp", "http", "udp", "none"},
                            "one of tcp (TCP_CHECK), http (HTTP_GET), udp (UDP_CHECK), none"));
    else
      s.check = *c;
  }
  if (auto p = str(*t, "path", w, tp)) {
    if (p->empty() || p->front() != '/')
      r_.error(pos_at(*t, "path", tp), fmt::format("path of {} must start with '/'", w));
    else
      s.path = *p;
  }
  s.status = static_cast<int>(integer(*t, "status", w, tp, 100, 599).value_or(200));
  if ((t->get("path") || t->get("status")) && s.check != "http")
    r_.error(pos_at(*t, t->get("path") ? "path" : "status", tp),
             fmt::format("{} has {} but its check is {}, not http", w, t->get("path") ? "path" : "status", s.check),
             "path and status belong to an HTTP_GET check: add check = \"http\"");
  for (const char* key : {"delay_loop", "connect_timeout"})
    if (auto d = number(*t, key, w, tp)) {
      if (!(*d >= 0.1 && *d <= 3600))
        r_.error(pos_at(*t, key, tp), fmt::format("{} of {} must be 0.1..3600 seconds", key, w));
      else
        (std::string(key) == "delay_loop" ? s.delay_loop : s.connect_timeout) = *d;
    }
  s.retry = static_cast<int>(integer(*t, "retry", w, tp, 0, 100).value_or(1));
  if (auto sorry = str(*t, "sorry_server", w, tp)) {
    // "ADDRESS", "ADDRESS:PORT" or "[V6]:PORT".
    std::string addr = *sorry, port;
    if (!addr.empty() && addr.front() == '[') {
      auto close = addr.find(']');
      if (close != std::string::npos) {
        if (close + 1 < addr.size() && addr[close + 1] == ':') port = addr.substr(close + 2);
        addr = addr.substr(1, close - 1);
      }
    } else if (std::count(addr.begin(), addr.end(), ':') == 1) {
      port = addr.substr(addr.find(':') + 1);
      addr = addr.substr(0, addr.find(':'));
    }
    auto a = IpAddr::parse(addr);
    int pn = 0;
    bool port_ok = port.empty() || (port.find_first_not_of("0123456789") == std::string::npos && port.size() <= 5 &&
                                    (pn = std::stoi(port)) >= 1 && pn <= 65535);
    if (!a || !port_ok)
      r_.error(pos_at(*t, "sorry_server", tp), fmt::format("sorry_server of {} is {}", w, shown(*sorry)),
               "write ADDRESS or ADDRESS:PORT, e.g. sorry_server = \"10.10.0.2:8080\" ([fd00::2]:8080 for IPv6)");
    else {
      s.sorry_server = *a;
      s.sorry_port = static_cast<uint16_t>(pn);
    }
  }
  s.inhibit_on_failure = boolean(*t, "inhibit_on_failure", w, tp).value_or(false);
  return s;
}

}  // namespace

Topology parse_tables(const toml::table& root, Reporter& r) { return Parser(r).run(root); }

}  // namespace labctl::topo
