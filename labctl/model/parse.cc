// Phase one: the TOML tree as written (toml++ keeps every position) to the model, checking
// what each value and table can show on its own. Every problem is reported and parsing goes
// on, so one run shows all of them. This file holds the Parser's generic readers and the top
// level (parser.h); each section of the schema has a file of its own.
#include <arpa/inet.h>

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "labctl/base/display.h"
#include "labctl/model/diag.h"
#include "labctl/model/parser.h"
#include "labctl/model/rules.h"

namespace labctl::topo {

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
  unknown_keys(root, {"version", "name", "description", "exercise", "hosts", "place", "switches", "nodes", "checks"},
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

  if (auto place = str(root, "place", "the topology", top)) {
    topo.place_pos = pos_at(root, "place", top);
    if (*place == "auto")
      topo.place_auto = true;
    else
      r_.error(topo.place_pos, fmt::format("place {} is not a placement labctl knows", shown(*place)),
               "place = \"auto\" spreads the nodes without `host` over the hosts; leave it out to run them "
               "on the local host");
  }
  if (const auto* h = root.get("hosts"))
    if (const auto* t = table_of(*h, "'hosts'", top))
      for (const auto& e : entries(*t, top)) topo.hosts.push_back(parse_host(e));
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
  unknown_keys(*t, {"task", "look_at", "breaks", "hints"}, where, tp);
  ex.task = str(*t, "task", where, tp, true).value_or("");
  ex.hints = boolean(*t, "hints", where, tp).value_or(true);
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

Topology parse_tables(const toml::table& root, Reporter& r) { return Parser(r).run(root); }

}  // namespace labctl::topo
