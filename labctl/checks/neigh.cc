// neigh: after a ping from a node to an address, its neighbour (ARP) table must hold an
// entry for `neighbour` (by default the address pinged) with the MAC of the node that owns
// it, or, with entry = "absent", no entry for it at all. The lesson of the course's link
// layer: a frame is addressed to the next hop, so ARP asks for the next hop's address and
// never for a far destination. It prints the whole table it read. The entries for both
// addresses are deleted before the ping, so the verdict is about this ping's traffic.
#include <algorithm>
#include <map>

#include "labctl/checks/check_kind.h"

namespace labctl::check_kind {
namespace {

CheckResult neigh(Ctx& ctx, const Check& c) {
  const auto& nbs = c.params.addresses("neighbour");
  if (nbs.empty()) return failed(c, "no neighbour address to look for");
  const IpAddr nb = nbs.front();
  const bool absent = c.params.text("entry") == "absent";
  const std::string& owner = c.params.text("owner");
  // Every lab node's MACs, to name whose an entry holds.
  std::map<std::string, std::string> mac_owner;  // mac -> "host1's eth0"
  std::vector<std::string> owner_macs;
  for (const auto& n : ctx.t.nodes) {
    auto links = links_of(ctx, n.name);
    if (!links) continue;
    for (const auto& l : *links)
      if (!l.mac.empty() && l.name != "lo") {
        mac_owner.emplace(l.mac, n.name + "'s " + l.name);
        if (n.name == owner) owner_macs.push_back(l.mac);
      }
  }
  auto name_of = [&](const std::string& mac) {
    auto it = mac_owner.find(mac);
    return it != mac_owner.end() ? mac + " (" + it->second + ")" : mac;
  };
  // What earlier traffic left in the table proves nothing: the entries for the neighbour
  // and the target are forgotten first (`ip neigh del`), so what is there after the ping
  // is what this ping made the kernel ask for.
  Status forgot = ctx.in(c.from, [&]() -> Status {
    TRY_ASSIGN(Rtnl rtnl, Rtnl::open(c.from));
    TRY_ASSIGN(auto before, rtnl.neighbours(AF_INET));
    for (const auto& e : before)
      if (e.dst == nb || e.dst == c.to) TRY(rtnl.forget_neighbour(e));
    return {};
  });
  if (!forgot) return failed(c, "clearing " + c.from + "'s ARP entries first: " + forgot.error().str());
  Status ping = ctx.in(c.from, [&]() -> Status {
    return patiently(ctx.deadline, [&](Millis timeout) { return icmp_echo(c.to, timeout); });
  });
  std::vector<NeighInfo> table;
  Status read = ctx.in(c.from, [&]() -> Status {
    TRY_ASSIGN(Rtnl rtnl, Rtnl::open(c.from));
    TRY_ASSIGN(table, rtnl.neighbours(AF_INET));
    return {};
  });
  std::string detail = "ping " + c.to_text + " from " + c.from + (ping ? " answered" : " failed: " + ping.error().str());
  if (!read) return failed(c, detail + "; reading " + c.from + "'s ARP table: " + read.error().str());
  std::string listed;
  const NeighInfo* found = nullptr;
  for (const auto& e : table) {
    if (e.dst == nb) found = &e;
    listed += (listed.empty() ? "" : ", ") + e.dst.str() + " " +
              (e.lladdr.empty() ? std::string("(no MAC)") : name_of(e.lladdr)) + " " + rtnl::nud_state_name(e.state);
  }
  detail += "; " + c.from + "'s ARP table: " + (listed.empty() ? "empty" : listed);
  if (absent) {
    if (!found) detail += "; no entry for " + nb.str() + ": " + c.from + " never asked who has it";
    else detail += "; it holds an entry for " + nb.str() + " (it must not: it ARPed for it)";
    return verdict(c, !found, detail);
  }
  if (!found) return failed(c, detail + "; no entry for " + nb.str());
  if (found->lladdr.empty())
    return failed(c, detail + "; " + nb.str() + " is " + rtnl::nud_state_name(found->state) + ": nobody answered ARP");
  const bool ok = std::find(owner_macs.begin(), owner_macs.end(), found->lladdr) != owner_macs.end();
  if (!ok) detail += "; expected a MAC of " + owner;
  return verdict(c, ok, detail);
}

}  // namespace

extern const KindRun neigh_kind{"neigh", neigh, nullptr, {}};

}  // namespace labctl::check_kind
