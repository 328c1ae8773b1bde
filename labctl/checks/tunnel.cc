#include "labctl/checks/check_kind.h"
#include "labctl/checks/diagnose.h"

#include <algorithm>

namespace labctl::check_kind {
namespace {

// The IPIP devices a real server decapsulates on: tunl0 (ipip's catch-all), ip6tnl0
// (ip6_tunnel's, for IPv6 TUN) and its own ipip tunnels. Their rx counters count decapsulated
// packets and are exact at once.
Result<std::map<std::string, uint64_t>> tunnel_rx(Ctx& ctx, const Node& n) {
  TRY_ASSIGN(auto links, links_of(ctx, n.name));
  std::map<std::string, uint64_t> rx;
  for (const auto& l : links) {
    bool mine = (l.name == "tunl0" && n.accept_ipip) || (l.name == "ip6tnl0" && n.accept_ip6ip6);
    for (const auto& tu : n.tunnels) mine = mine || tu.name == l.name;
    if (mine) rx[l.name] = l.rx_packets;
  }
  return rx;
}

// tunnel: every TUN real server the director's table gives weight received the check's
// requests encapsulated: its tunnel device's rx counter rose.
CheckResult tunnel(Ctx& ctx, const Check& c) {
  ServiceRef f = ctx.t.service(c.service);
  if (!f.service) return failed(c, "no service " + c.service);
  auto live = live_service(ctx, *f.director, *f.service);
  if (!live) return failed(c, live.error().str());
  struct Rs {
    const Node* node;
    std::map<std::string, uint64_t> before;
  };
  std::vector<Rs> servers;
  for (const auto& d : live->dests) {
    if (d.weight <= 0) continue;  // quiesced: the director sends it nothing new
    if (d.fwd_method != 2)        // IP_VS_CONN_F_TUNNEL
      return failed(c, "the director forwards to " + d.addr.str() + " by " +
                  (d.method ? std::string(to_string(*d.method)) : std::to_string(d.fwd_method)) +
                  ", not by tunnel (ipvsadm -i)");
    const Node* n = ctx.t.owner_of(d.addr);
    if (!n) return failed(c, "no lab node has the real server address " + d.addr.str());
    auto rx = tunnel_rx(ctx, *n);
    if (!rx) return failed(c, rx.error().str());
    if (rx->empty())
      return failed(c, n->name + " has no tunnel device to receive on (accept_ipip = true gives it tunl0)");
    servers.push_back({n, *rx});
  }
  std::sort(servers.begin(), servers.end(), [](const Rs& a, const Rs& b) { return a.node->name < b.node->name; });
  if (servers.empty())
    return failed(c, "the director's IPVS table has no real server of weight > 0");
  // Counters rise as the packets arrive, so the check stops once every server has some.
  // Failed requests do not stop it: encapsulated packets that arrive but get no answer
  // (rp_filter, no VIP on tunl0) are exactly what this check tells apart.
  std::string rx_text, silent, error;
  auto read_all = [&]() -> bool {
    rx_text.clear();
    silent.clear();
    for (const auto& s : servers) {
      auto after = tunnel_rx(ctx, *s.node);
      if (!after) {
        error = after.error().str();
        return true;
      }
      uint64_t got = 0;
      for (const auto& [dev, rx] : *after) {
        const uint64_t d = rx - (s.before.count(dev) ? s.before.at(dev) : rx);
        got += d;
        rx_text += (rx_text.empty() ? "" : ", ") + s.node->name + " " + dev + " rx +" + std::to_string(d);
      }
      if (got == 0) silent += (silent.empty() ? "" : ", ") + s.node->name;
    }
    return silent.empty();
  };
  const int n = static_cast<int>(c.params.integer("requests"));
  auto q = send_requests(
      ctx, c, n,
      [&](const Requests&) -> std::string {
        return read_all() ? "every real server's tunnel received packets" : "";
      },
      false);
  if (!q) return failed(c, q.error().str());
  read_all();
  if (!error.empty()) return failed(c, error);
  CheckResult r;
  r.passed = silent.empty();
  r.detail = exchange_name(c) + ": " + q->text() + "; packets decapsulated: " + rx_text;
  if (!r.passed) r.detail += "; no encapsulated packet reached " + silent;
  return r;
}

}  // namespace

extern const KindRun tunnel_kind{"tunnel", tunnel, diagnose_lvs, {}};

}  // namespace labctl::check_kind
