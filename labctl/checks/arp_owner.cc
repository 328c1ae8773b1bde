// arp-owner: who answers "who has VIP?". Every reply is collected (arp_probe.h), so a real
// server that also answers fails the check every time, not only when it wins the race to
// the client. IPv6 VIPs have no ARP: for them the client's neighbour table after a connect
// is read, which names only the first answer (see docs/checks.md).
#include <algorithm>
#include <map>
#include <set>

#include "labctl/checks/arp_probe.h"
#include "labctl/checks/check_kind.h"
#include "labctl/checks/diagnose.h"

namespace labctl::check_kind {
namespace {

CheckResult arp_owner(Ctx& ctx, const Check& c) {
  constexpr Millis kArpWait{250};
  ServiceRef f = ctx.t.service(c.service);
  if (!f.service) return failed(c, "no service " + c.service);
  const IpAddr& vip = c.to;
  // Every lab node's MACs, to name who answered.
  std::map<std::string, std::string> owner;  // mac -> "rs1's eth0"
  std::set<std::string> director_macs;
  for (const auto& n : ctx.t.nodes) {
    auto links = links_of(ctx, n.name);
    if (!links) continue;
    for (const auto& l : *links)
      if (!l.mac.empty() && l.name != "lo") {
        owner.emplace(l.mac, n.name + "'s " + l.name);
        if (&n == f.director) director_macs.insert(l.mac);
      }
  }
  auto name_of = [&](const std::string& mac) {
    auto it = owner.find(mac);
    return it != owner.end() ? it->second : mac + " (no lab node has it)";
  };
  // The client's neighbour entry for the VIP, as evidence of what it uses now.
  auto cached = [&]() -> std::string {
    std::string mac;
    (void)ctx.in(c.from, [&]() -> Status {
      TRY_ASSIGN(Rtnl rtnl, Rtnl::open());
      TRY_ASSIGN(auto neigh, rtnl.neighbours(vip.family));
      for (const auto& nb : neigh)
        if (nb.dst == vip && !nb.lladdr.empty()) mac = nb.lladdr;
      return {};
    });
    return mac;
  };
  if (vip.v6()) {
    (void)ctx.in(c.from, [&]() -> Status {
      return patiently(ctx.deadline,
                       [&](Millis timeout) { return tcp_connect(vip, c.port ? c.port : 80, timeout); });
    });
    std::string mac = cached();
    if (mac.empty()) return failed(c, c.from + " has no neighbour entry for " + c.to_text);
    bool ok = director_macs.count(mac) > 0;
    std::string detail = c.from + " resolves VIP " + c.to_text + " to " + name_of(mac) +
                         " (neighbour table: IPv6 has no ARP)";
    if (!ok) detail += "; expected the director " + f.director->name;
    return verdict(c, ok, detail);
  }
  ArpProbeResult probe;
  Status st = ctx.in(c.from, [&]() -> Status {
    // Every answer within the wait counts; none on a slow link: ask again, waiting longer.
    for (Millis wait = kArpWait;; wait *= 2) {
      TRY_ASSIGN(probe, arp_probe(vip, ctx.deadline.probe(wait)));
      if (!probe.answers.empty() || ctx.deadline.over()) break;
    }
    return {};
  });
  if (!st) return failed(c, "ARP for " + c.to_text + " from " + c.from + ": " + st.error().str());
  const std::string asked = "ARP who-has " + c.to_text + " from " + c.from + "'s " + probe.dev;
  if (probe.answers.empty())
    return failed(c, asked + ": nobody answered (expected the director " + f.director->name + ")");
  std::vector<std::string> director_said, others;
  for (const auto& m : probe.answers)
    (director_macs.count(mac_str(m)) ? director_said : others).push_back(name_of(mac_str(m)));
  // Named in a stable order, whichever answered first.
  std::sort(director_said.begin(), director_said.end());
  std::sort(others.begin(), others.end());
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i == 0 ? "" : i + 1 == v.size() ? " and " : ", ") + v[i];
    return s;
  };
  std::string detail = asked + ": ";
  if (director_said.empty()) detail += "the director " + f.director->name + " did not answer; ";
  else detail += "answered by " + join(director_said) + (others.empty() ? " only" : "") + "; ";
  if (!others.empty())
    detail += join(others) + (others.size() == 1 ? " also answers" : " also answer") + " ARP for " + c.to_text + "; ";
  if (std::string mac = cached(); !mac.empty()) detail += c.from + "'s neighbour table: " + name_of(mac);
  else detail += c.from + " has no neighbour entry for it yet";
  return verdict(c, !director_said.empty() && others.empty(), detail);
}

}  // namespace

extern const KindRun arp_owner_kind{"arp-owner", arp_owner, diagnose_lvs, {.arp_only = true}};

}  // namespace labctl::check_kind
