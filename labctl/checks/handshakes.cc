// handshakes: who takes part in a TCP handshake, the course's L4-versus-L7 argument read
// from the kernel. While `requests` GETs run from the `from` node, each on a connection of
// its own, every node's own Tcp: counters (/proc/net/snmp of its namespace: ActiveOpens
// counts the SYNs its connect()s sent, PassiveOpens the SYNs its listeners answered) are
// read before and after, and its sockets after. The check passes when
//   - the client opened one connection per request (+N active);
//   - an LVS director of the target took part in none (+0 passive, +0 active) and holds no
//     socket on the VIP: it forwards packets and never completes a handshake;
//   - the first tier behind it (the real servers, or the node holding the address) accepted
//     them all (+N passive, summed);
//   - each nginx proxy among them opened a connection of its own to an upstream per request
//     it accepted (+passive active), or fewer when it keeps upstream connections alive;
//   - the apps behind the proxies accepted exactly the connections the proxies opened.
// The counters belong to the whole namespace: other traffic of the lab during the check
// counts too (a lab's checks run one at a time).
#include <fmt/format.h>
#include <sys/socket.h>

#include <algorithm>
#include <map>
#include <set>

#include "labctl/checks/check_kind.h"
#include "labctl/checks/proxy_ports.h"
#include "labctl/kernel/tcp_counters.h"
#include "labctl/kernel/tcp_sockets.h"

namespace labctl::check_kind {
namespace {

struct Seen {
  TcpCounters before, after;
  TcpCensus census;
  bool vip_socket = false;  ///< A director holding a socket on the VIP:port (it should not).
};

// The nginx agent of `n` that listens on `port` with a generated config, or nullptr.
const NginxSpec* proxy_on(const Node& n, uint16_t port) {
  for (const auto& a : n.agents)
    if (a.nginx && a.nginx->config.empty() && a.port == port) return &*a.nginx;
  return nullptr;
}

// The upstream group a proxy sends `path` to (the longest route prefix), nullptr when the
// proxy answers the path itself (name_path) or no route matches.
const NginxUpstream* group_for(const NginxSpec& k, const std::string& path) {
  if (!k.name_path.empty() && path == k.name_path) return nullptr;
  const NginxRoute* best = nullptr;
  for (const auto& r : k.routes)
    if (path.rfind(r.path, 0) == 0 && (!best || r.path.size() > best->path.size())) best = &r;
  if (!best) return nullptr;
  for (const auto& u : k.upstreams)
    if (u.name == best->upstream) return &u;
  return nullptr;
}

std::string delta(uint64_t d) { return "+" + std::to_string(d); }

// A node's TCP counters and sockets, read in its namespace wherever it runs (Ctx::read_proc).
Result<TcpCounters> counters_of(Ctx& ctx, const std::string& node) {
  TRY_ASSIGN(std::string snmp, ctx.read_proc(node, "net/snmp"));
  return parse_snmp_tcp(snmp);
}

Result<std::vector<TcpSocket>> sockets_of(Ctx& ctx, const std::string& node) {
  TRY_ASSIGN(std::string v4, ctx.read_proc(node, "net/tcp"));
  std::vector<TcpSocket> out = parse_proc_net_tcp(v4, AF_INET);
  if (auto v6 = ctx.read_proc(node, "net/tcp6")) {  // absent on a kernel without IPv6
    auto more = parse_proc_net_tcp(*v6, AF_INET6);
    out.insert(out.end(), more.begin(), more.end());
  }
  return out;
}

CheckResult handshakes(Ctx& ctx, const Check& c) {
  const Topology& t = ctx.t;
  const int n = static_cast<int>(c.params.integer("requests"));
  const std::string path = c.params.text("path");

  // The tiers: the directors of the target address, the nodes that answer it, and the
  // apps the proxies among those forward the path to.
  std::vector<const Node*> directors, tier1, proxies, apps;
  auto add = [](std::vector<const Node*>& v, const Node* x) {
    if (x && std::find(v.begin(), v.end(), x) == v.end()) v.push_back(x);
  };
  for (const auto& node : t.nodes)
    for (const auto& s : node.services)
      if (!s.fwmark && s.vip == c.to && (s.port == c.port || s.port == 0)) {
        add(directors, &node);
        for (const auto& rs : s.real_servers) add(tier1, rs.node.empty() ? t.owner_of(rs.addr) : t.node(rs.node));
      }
  if (directors.empty()) add(tier1, t.owner_of(c.to));
  std::map<const Node*, const NginxSpec*> proxy_spec;
  for (const Node* p : tier1)
    if (const NginxSpec* k = proxy_on(*p, c.port)) {
      add(proxies, p);
      proxy_spec[p] = k;
      if (const NginxUpstream* u = group_for(*k, path))
        for (const auto& s : u->servers) add(apps, t.owner_of(s.addr));
    }

  std::map<std::string, Seen> seen;
  for (const auto& node : t.nodes) {
    auto before = counters_of(ctx, node.name);
    if (!before) return failed(c, "reading " + node.name + "'s TCP counters: " + before.error().str());
    seen[node.name].before = *before;
  }
  int answered = 0;
  std::string error;
  Status sent = ctx.in(c.from, [&]() -> Status {
    for (int i = 0; i < n; ++i) {
      auto a = http_get(c.to, c.port, path, ctx.deadline.probe());
      if (!a) {
        error = a.error().str();
        break;
      }
      ++answered;
      ctx.report(std::to_string(answered) + " of " + std::to_string(n) + " requests");
    }
    return {};
  });
  if (!sent) return failed(c, sent.error().str());
  for (const auto& node : t.nodes) {
    const bool director = std::find(directors.begin(), directors.end(), &node) != directors.end();
    Status st = [&]() -> Status {
      Seen& s = seen[node.name];
      TRY_ASSIGN(s.after, counters_of(ctx, node.name));
      TRY_ASSIGN(auto sockets, sockets_of(ctx, node.name));
      s.census = census(sockets);
      if (director)
        for (const auto& k : sockets)
          if (k.local == c.to && k.local_port == c.port) s.vip_socket = true;
      return {};
    }();
    if (!st) return failed(c, "reading " + node.name + "'s TCP counters: " + st.error().str());
  }

  const std::string how = fmt::format("{} GET{} http://{}{} from {}", n, n == 1 ? "" : "s", target_of(c), path, c.from);
  if (answered < n)
    return failed(c, fmt::format("{}: request {} failed: {}", how, answered + 1, error));

  auto d = [&](const Node* x) { return seen[x->name].after - seen[x->name].before; };
  auto is = [](const std::vector<const Node*>& v, const Node* x) { return std::find(v.begin(), v.end(), x) != v.end(); };
  std::vector<std::string> wrong;
  std::string table;
  uint64_t tier1_passive = 0, proxies_active = 0, apps_passive = 0;
  for (const auto& node : t.nodes) {
    const Node* x = &node;
    const TcpCounters dx = d(x);
    const Seen& s = seen[node.name];
    std::string role;
    if (node.name == c.from) role = "client";
    else if (is(directors, x)) role = "L4 director";
    else if (is(proxies, x)) role = "L7 proxy";
    else if (is(tier1, x)) role = "server";
    else if (is(apps, x)) role = "app";
    if (role.empty() && dx.passive_opens == 0 && dx.active_opens == 0) continue;  // not on the path
    if (role.empty()) role = "not on the path";
    table += fmt::format("{}{}: passive {}, active {}", table.empty() ? "" : "; ",
                         role == node.name ? node.name : node.name + " (" + role + ")", delta(dx.passive_opens),
                         delta(dx.active_opens));
    if (s.census.in("TIME_WAIT")) table += fmt::format(", {} in TIME_WAIT now", s.census.in("TIME_WAIT"));
    if (node.name == c.from && dx.active_opens != static_cast<uint64_t>(n))
      wrong.push_back(fmt::format("{} opened {} connections for {} requests", node.name, dx.active_opens, n));
    if (is(directors, x)) {
      if (dx.passive_opens || dx.active_opens)
        wrong.push_back(fmt::format("director {} took part in {} handshake(s): LVS forwards packets and never "
                                    "completes one (is something on it connecting or listening?)",
                                    node.name, dx.passive_opens + dx.active_opens));
      if (s.vip_socket)
        wrong.push_back(fmt::format("director {} holds a socket on {}: a process there answers the VIP itself",
                                    node.name, target_of(c)));
      else
        table += ", no socket on the VIP";
    }
    if (is(tier1, x)) tier1_passive += dx.passive_opens;
    if (is(apps, x) && !is(tier1, x)) apps_passive += dx.passive_opens;
    if (auto it = proxy_spec.find(x); it != proxy_spec.end()) {
      proxies_active += dx.active_opens;
      const NginxSpec& k = *it->second;
      if (!group_for(k, path)) {
        if (dx.active_opens)
          wrong.push_back(fmt::format("proxy {} answers {} itself but opened {} connection(s)", node.name, path,
                                      dx.active_opens));
      } else if (k.keepalive == 0 && dx.active_opens != dx.passive_opens) {
        wrong.push_back(fmt::format("proxy {} accepted {} connections but opened {} to its upstreams (without "
                                    "upstream keep-alive, one each)",
                                    node.name, dx.passive_opens, dx.active_opens));
      } else if (k.keepalive > 0 && dx.active_opens > dx.passive_opens) {
        wrong.push_back(fmt::format("proxy {} keeps upstream connections alive but opened {} for {} accepted",
                                    node.name, dx.active_opens, dx.passive_opens));
      }
    }
  }
  std::string sums;
  if (!tier1.empty()) {
    std::string names;
    for (const Node* x : tier1) names += (names.empty() ? "" : "+") + x->name;
    sums += fmt::format("; {} accepted {} of {}", names, tier1_passive, n);
    if (tier1_passive != static_cast<uint64_t>(n))
      wrong.push_back(fmt::format("{} accepted {} connections for {} requests", names, tier1_passive, n));
  }
  if (!proxies.empty() && !apps.empty()) {
    sums += fmt::format("; the apps accepted {} for the proxies' {}", apps_passive, proxies_active);
    if (apps_passive != proxies_active)
      wrong.push_back(fmt::format("the apps accepted {} connections but the proxies opened {}", apps_passive,
                                  proxies_active));
    bool kept = false;
    for (const auto& [p, k] : proxy_spec) kept = kept || k->keepalive > 0;
    if (kept && proxies_active < static_cast<uint64_t>(n))
      sums += fmt::format(" (upstream keep-alive saved {} handshakes)", static_cast<uint64_t>(n) - proxies_active);
  }
  std::string detail = how + ": " + table + sums;
  for (const auto& w : wrong) detail += "; " + w;
  return verdict(c, wrong.empty(), detail);
}

}  // namespace

// A failed request is explained as http's are (the LVS causes, and a proxy out of ports).
extern const KindRun handshakes_kind{"handshakes", handshakes, diagnose_through_proxies, {}};

}  // namespace labctl::check_kind
