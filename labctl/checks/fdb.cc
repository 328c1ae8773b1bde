// fdb: a switch learns which MAC is behind which port from the frames it forwards (the
// course: "交换机有学习能力"). The check pings each named node's address on the switch from
// `from` (each answer is a frame from that node), then reads the bridge's forwarding
// database in the switch's namespace (RTM_GETNEIGH, AF_BRIDGE) and passes when every node's
// MAC, `from`'s too, was learned on that node's own port. It prints what the switch holds.
#include <algorithm>
#include <map>

#include "labctl/checks/check_kind.h"

namespace labctl::check_kind {
namespace {

CheckResult fdb(Ctx& ctx, const Check& c) {
  const std::string& sw = c.params.text("switch");
  const Node* from = ctx.t.node(c.from);
  if (!from) return failed(c, "no node " + c.from);
  std::vector<const Node*> nodes{from};
  std::vector<std::string> pings;
  for (const IpAddr& a : c.params.addresses("targets")) {
    const Node* n = ctx.t.owner_of(a);
    if (!n || n == from) continue;
    nodes.push_back(n);
    Status st = ctx.in(c.from, [&]() -> Status {
      return patiently(ctx.deadline, [&](Millis timeout) { return icmp_echo(a, timeout); });
    });
    pings.push_back(a.str() + (st ? "" : " (no answer)"));
  }
  std::vector<FdbEntry> table;
  Status read = ctx.in(sw, [&]() -> Status {
    TRY_ASSIGN(Rtnl rtnl, Rtnl::open(sw));
    TRY_ASSIGN(table, rtnl.fdb());
    return {};
  });
  std::string detail = c.from + " pinged " + (pings.empty() ? std::string("nobody") : "");
  for (size_t i = 0; i < pings.size(); ++i) detail += (i ? ", " : "") + pings[i];
  if (!read) return failed(c, detail + "; reading switch " + sw + "'s forwarding database: " + read.error().str());
  int learned_total = 0;
  for (const auto& e : table) learned_total += e.learned();
  detail += "; switch " + sw + " learned " + std::to_string(learned_total) + " MAC" + (learned_total == 1 ? "" : "s") + ":";
  std::vector<std::string> missing;
  bool first = true;
  for (const Node* n : nodes) {
    const Interface* iface = nullptr;
    for (const auto& i : n->interfaces)
      if (i.sw == sw) iface = &i;
    if (!iface) continue;
    std::string mac;
    if (auto links = links_of(ctx, n->name))
      for (const auto& l : *links)
        if (l.name == iface->name) mac = l.mac;
    const std::string who = n->name + "'s " + iface->name;
    if (mac.empty()) {
      missing.push_back(who + ": its MAC could not be read");
      continue;
    }
    const FdbEntry* seen = nullptr;
    for (const auto& e : table)
      if (e.mac == mac && e.learned()) seen = &e;
    if (!seen) {
      missing.push_back(who + " " + mac + " not learned");
      continue;
    }
    detail += std::string(first ? " " : ", ") + who + " " + mac + " on port " + seen->dev + " (" +
              rtnl::nud_state_name(seen->state) + ")";
    first = false;
    if (seen->dev != iface->port) missing.push_back(who + " " + mac + " on port " + seen->dev + ", expected " + iface->port);
  }
  for (const auto& m : missing) detail += "; " + m;
  return verdict(c, missing.empty(), detail);
}

}  // namespace

extern const KindRun fdb_kind{"fdb", fdb, nullptr, {}};

}  // namespace labctl::check_kind
