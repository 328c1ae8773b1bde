#include "labctl/plan/network_number.h"

#include <sys/socket.h>

#include <fmt/format.h>

namespace labctl {
namespace {

std::string named(const Topology& t, const IpAddr& a) {
  const Node* n = t.owner_of(a);
  return n ? fmt::format("{} ({})", a.str(), n->name) : a.str();
}

std::string route_lesson(const Topology& t, const Route& r) {
  const bool v4 = r.family == AF_INET || (r.to && r.to->addr.v4());
  std::string what, match;
  if (!r.to) {
    what = "route default";
    match = v4 ? "mask 0.0.0.0 matches every address (0.0.0.0/0): what no closer route covers"
               : "::/0 matches every address: what no closer route covers";
  } else if (r.to->len == r.to->addr.max_prefix()) {
    what = "route " + r.to->network().str();
    match = v4 ? fmt::format("a host route (mask {}, route -n flags UGH): a packet for {}", ipv4_mask(32),
                             r.to->addr.str())
               : fmt::format("a host route: a packet for {}", r.to->addr.str());
  } else {
    what = "route " + r.to->network().str();
    match = v4 ? fmt::format("destination AND {} = {}: a packet for any address of {}", ipv4_mask(r.to->len),
                             r.to->network().addr.str(), r.to->network().str())
               : fmt::format("a packet for any address of {}", r.to->network().str());
  }
  if (r.via) {
    what += " via " + r.via->str();
    std::string far = r.to && r.to->len == r.to->addr.max_prefix() ? r.to->addr.str() : "the far address";
    return fmt::format("{}: {} goes to the next hop {}; the frame carries the next hop's MAC, so ARP asks "
                       "for {}, never for {}",
                       what, match, named(t, *r.via), r.via->str(), far);
  }
  what += " dev " + r.dev;
  return fmt::format("{}: {} is on-link on {} (Gateway 0.0.0.0): ARP asks for the destination itself", what,
                     match, r.dev);
}

}  // namespace

std::string ipv4_mask(int len) {
  const uint32_t m = len <= 0 ? 0 : len >= 32 ? 0xffffffffu : ~((1u << (32 - len)) - 1);
  return fmt::format("{}.{}.{}.{}", m >> 24, (m >> 16) & 0xff, (m >> 8) & 0xff, m & 0xff);
}

std::vector<std::string> next_hop_lessons(const Topology& t, const Node& n) {
  std::vector<std::string> out;
  for (const auto& r : n.routes) out.push_back(route_lesson(t, r));
  return out;
}

}  // namespace labctl
