// Phase one, agents: each kind's own keys through its parse hook (agent_spec.h), and the
// keepalived agent's VRRP instances and managed services.
#include <algorithm>

#include <fmt/format.h>

#include "labctl/base/display.h"
#include "labctl/model/diag.h"
#include "labctl/model/parser.h"
#include "labctl/model/rules.h"
#include "labctl/model/agent_spec.h"

namespace labctl::topo {

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
  NginxSpec nginx() override { return p_.parse_nginx(t_, where, tp_); }

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

std::string Parser::verbatim_config(const toml::table& t, const Keys& common, const std::string& where, Pos tp,
                                    std::string_view file, std::string_view generated_from) {
  // A config given verbatim says everything itself; keys that would generate one beside
  // it would be silently ignored, so they are errors.
  Keys known = common;
  known.push_back("config");
  unknown_keys(t, known, fmt::format("{} (with 'config', {} is used as given)", where, file), tp);
  std::string config = str(t, "config", where, tp).value_or("");
  if (config.find_first_not_of(" \t\r\n") == std::string::npos && t.get("config")->is_string())
    r_.error(pos_at(t, "config", tp), fmt::format("config of {} is empty", where),
             fmt::format("give {}'s text, or leave config out to have it generated from {}", file, generated_from));
  else if (config.find('\0') != std::string::npos)
    r_.error(pos_at(t, "config", tp), fmt::format("config of {} contains a NUL byte", where));
  return config;
}

KeepalivedSpec Parser::parse_keepalived(const toml::table& t, const std::string& where, Pos tp) {
  KeepalivedSpec k;
  const Keys common = {"kind", "services", "restart", "ready_timeout"};
  if (t.get("config")) {
    k.config = verbatim_config(t, common, where, tp, "keepalived.conf", "the topology");
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

}  // namespace labctl::topo
