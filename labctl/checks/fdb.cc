// fdb: a switch learns which MAC is behind which port from the frames it forwards (the
// course: "交换机有学习能力"). The check pings each named node's address on the switch from
// `from` (each answer is a frame from that node), then reads the bridge's forwarding
// database in the switch's namespace (RTM_GETNEIGH, AF_BRIDGE) and passes when every node's
// MAC, `from`'s too, was learned on that node's own port. It prints what the switch holds.
// Then the other half of the lesson, flooding before learning: the switch is made to forget
// the first node's MAC, and a third node's interface listens while `from` pings it again:
// the frame for the unknown MAC reaches that third port too (flooded); once the answer has
// taught the switch again, the next one does not (forwarded to the learned port only).
#include <algorithm>
#include <cctype>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "labctl/checks/check_kind.h"
#include "labctl/kernel/frame_tap.h"

namespace labctl::check_kind {
namespace {

using namespace std::chrono_literals;
// How long a listener waits for more frames before it counts what it heard: frames on a
// lab's veths arrive within microseconds, and the ping has already had its answer.
constexpr auto kQuiet = 50ms;

std::string lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// The node's interface on the switch and its MAC as the kernel has it ("" when unread).
std::pair<const Interface*, std::string> on_switch(Ctx& ctx, const Node& n, const std::string& sw) {
  const Interface* iface = nullptr;
  for (const auto& i : n.interfaces)
    if (i.sw == sw) iface = &i;
  std::string mac;
  if (iface)
    if (auto links = links_of(ctx, n.name))
      for (const auto& l : *links)
        if (l.name == iface->name) mac = lower(l.mac);
  return {iface, mac};
}

// Flooding before learning, shown on `target` (pinged from `from`) and heard at a third
// node's port. Returns what was seen; adds to `missing` what was not as it should be.
std::string flooding(Ctx& ctx, const Check& c, const std::string& sw, const Node& from, const Node& target,
                     const IpAddr& target_ip, std::vector<std::string>& missing) {
  const Node* third = nullptr;
  for (const auto& n : ctx.t.nodes)
    if (&n != &from && &n != &target && on_switch(ctx, n, sw).first && !third) third = &n;
  if (!third) return "flooding not shown: switch " + sw + " has no third node to overhear a flooded frame";
  const std::string t_mac = on_switch(ctx, target, sw).second;
  const Interface* w_iface = on_switch(ctx, *third, sw).first;
  const std::string at = third->name + "'s " + w_iface->name;
  std::optional<FrameTap> tap;
  Status opened = ctx.in(third->name, [&]() -> Status {
    TRY_ASSIGN(FrameTap t, FrameTap::open(w_iface->name));
    tap.emplace(std::move(t));
    return {};
  });
  if (!opened) {
    missing.push_back("listening on " + at + ": " + opened.error().str());
    return "";
  }
  auto learned_entry = [&]() -> Result<std::optional<FdbEntry>> {
    std::optional<FdbEntry> found;
    TRY(ctx.in(sw, [&]() -> Status {
      TRY_ASSIGN(Rtnl rtnl, Rtnl::open(sw));
      TRY_ASSIGN(auto table, rtnl.fdb());
      for (const auto& e : table)
        if (lower(e.mac) == t_mac && e.learned()) found = e;
      return {};
    }));
    return found;
  };
  auto ping = [&]() -> Status {
    return ctx.in(c.from, [&]() -> Status {
      return patiently(ctx.deadline, [&](Millis timeout) { return icmp_echo(target_ip, timeout); });
    });
  };
  const std::string who = target.name + "'s MAC " + t_mac;
  // Forget: the switch no longer knows behind which port the target's MAC is.
  auto entry = learned_entry();
  if (!entry || !*entry) {
    missing.push_back("flooding: " + who + " was not learned, nothing to forget");
    return "";
  }
  Status forgot = ctx.in(sw, [&]() -> Status {
    TRY_ASSIGN(Rtnl rtnl, Rtnl::open(sw));
    return rtnl.forget_fdb(**entry);
  });
  if (!forgot) {
    missing.push_back("making switch " + sw + " forget " + who + ": " + forgot.error().str());
    return "";
  }
  (void)tap->frames_to(t_mac, 0ms);  // what came before the switch forgot
  Status first = ping();
  auto flooded = tap->frames_to(t_mac, kQuiet);
  auto relearned = learned_entry();
  Status second = ping();
  auto after = tap->frames_to(t_mac, kQuiet);
  if (!flooded || !after) {
    missing.push_back("reading what reached " + at + ": " + (!flooded ? flooded.error() : after.error()).str());
    return "";
  }
  std::string d = fmt::format("flooding: switch {} forgot {} (bridge fdb del); {}'s next ping to {}{}", sw, who,
                              c.from, target.name, first ? "" : " (no answer)");
  if (*flooded > 0) {
    d += fmt::format(" reached {} too ({} frame{} for that MAC): flooded to every port, since the switch did not "
                     "know where that MAC is",
                     at, *flooded, *flooded == 1 ? "" : "s");
  } else {
    d += fmt::format(": 0 frames for that MAC at {}", at);
    missing.push_back("a frame for " + who + ", which the switch did not know, never reached " + at + ": not flooded");
  }
  if (!relearned || !*relearned) {
    missing.push_back(fmt::format("switch {} did not learn {} again", sw, who));
    return d;
  }
  d += fmt::format("; {}'s answer taught it again (port {}); the ping after that{}: {} frame{} for that MAC at {}",
                   target.name, (*relearned)->dev, second ? "" : " (no answer)", *after, *after == 1 ? "" : "s", at);
  if (*after == 0) d += ": forwarded only to the learned port";
  else missing.push_back(fmt::format("after learning, {} frame{} for {} still reached {}: flooded, not forwarded",
                                     *after, *after == 1 ? "" : "s", who, at));
  return d;
}

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
  if (missing.empty() && nodes.size() > 1) {
    const Node& target = *nodes[1];
    IpAddr target_ip;
    for (const IpAddr& a : c.params.addresses("targets"))
      if (ctx.t.owner_of(a) == &target) {
        target_ip = a;
        break;
      }
    if (std::string f = flooding(ctx, c, sw, *from, target, target_ip, missing); !f.empty()) detail += "; " + f;
  }
  for (const auto& m : missing) detail += "; " + m;
  return verdict(c, missing.empty(), detail);
}

}  // namespace

extern const KindRun fdb_kind{"fdb", fdb, nullptr, {}};

}  // namespace labctl::check_kind
