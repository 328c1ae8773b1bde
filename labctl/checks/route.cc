// route: the kernel's own route lookup from a node (`ip route get ADDR`, RTM_GETROUTE over
// rtnetlink) must give the expected next hop, device and source. It prints what the kernel
// answered: a next hop is the machine the frame is addressed to (ARP asks for it), on-link
// means the destination itself is on the wire (route -n's gateway 0.0.0.0).
#include <linux/rtnetlink.h>

#include "labctl/checks/check_kind.h"

namespace labctl::check_kind {
namespace {

CheckResult route(Ctx& ctx, const Check& c) {
  RouteLookup got;
  Status st = ctx.in(c.from, [&]() -> Status {
    TRY_ASSIGN(Rtnl rtnl, Rtnl::open(c.from));
    TRY_ASSIGN(got, rtnl.route_get(c.to));
    return {};
  });
  const std::string asked = "ip route get " + c.to_text + " on " + c.from;
  // The error names the lookup and the node already: "ip route get X in NODE (ENETUNREACH ...)".
  if (!st) return failed(c, st.error().str());
  std::string detail = asked + ": " + got.str();
  if (got.type == RTN_LOCAL)
    detail += " (an address of " + c.from + " itself)";
  else if (got.via)
    detail += " (next hop " + got.via->str() + ": " + c.from + " ARPs for " + got.via->str() + ", not for " +
              c.to_text + ")";
  else
    detail += " (on-link: " + c.to_text + " is on " + c.from + "'s own wire, it ARPs for it directly)";
  std::vector<std::string> wrong;
  if (c.params.has("via")) {
    const auto& want = c.params.addresses("via");
    const std::string want_s = want.empty() ? "on-link (no next hop)" : "via " + want.front().str();
    const std::string got_s = got.via ? "via " + got.via->str() : "on-link (no next hop)";
    if (want.empty() ? got.via.has_value() : got.via != want.front()) wrong.push_back(got_s + ", expected " + want_s);
  }
  if (const std::string& dev = c.params.text("dev"); !dev.empty() && got.dev != dev)
    wrong.push_back("dev " + (got.dev.empty() ? std::string("none") : got.dev) + ", expected " + dev);
  if (const auto& src = c.params.addresses("src"); !src.empty() && got.src != src.front())
    wrong.push_back("src " + (got.src ? got.src->str() : std::string("none")) + ", expected " + src.front().str());
  for (const auto& w : wrong) detail += "; " + w;
  return verdict(c, wrong.empty(), detail);
}

}  // namespace

extern const KindRun route_kind{"route", route, nullptr, {}};

}  // namespace labctl::check_kind
