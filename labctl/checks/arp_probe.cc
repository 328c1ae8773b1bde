#include "labctl/checks/arp_probe.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if_arp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "labctl/base/fd.h"
#include "labctl/kernel/rtnl.h"

namespace labctl {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
constexpr size_t kArpLen = 28;
constexpr auto kResendAfter = 100ms;

// The route the kernel would pick toward `to` in the calling thread's namespace.
Result<RouteInfo> route_toward(Rtnl& rtnl, const IpAddr& to) {
  TRY_ASSIGN(auto routes, rtnl.routes(AF_INET));
  const RouteInfo* best = nullptr;
  int best_len = -1;
  for (const auto& r : routes) {
    if (r.dst && !r.dst->contains(to)) continue;
    int len = r.dst ? r.dst->len : 0;
    if (len > best_len) best = &r, best_len = len;
  }
  if (!best) return fail("no route toward " + to.str(), "ARP works only on the segment the address is on");
  if (best->via)
    return fail(fmt::format("{} is reached via the gateway {}, not on a link of this node", to.str(), best->via->str()),
                "run the ARP check from a node on the same switch as the address");
  return *best;
}

}  // namespace

std::optional<Mac> parse_mac(const std::string& s) {
  Mac m{};
  unsigned b[6];
  char tail;
  if (std::sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6)
    return std::nullopt;
  for (int i = 0; i < 6; ++i) m[static_cast<size_t>(i)] = static_cast<uint8_t>(b[i]);
  return m;
}

std::string mac_str(const Mac& m) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5]);
}

std::vector<uint8_t> arp_request(const Mac& sender_mac, const IpAddr& sender_ip, const IpAddr& target) {
  std::vector<uint8_t> p(kArpLen, 0);
  p[1] = ARPHRD_ETHER;
  p[2] = ETH_P_IP >> 8;
  p[3] = ETH_P_IP & 0xff;
  p[4] = 6;
  p[5] = 4;
  p[7] = ARPOP_REQUEST;
  std::copy(sender_mac.begin(), sender_mac.end(), p.begin() + 8);
  std::copy_n(sender_ip.bytes.begin(), 4, p.begin() + 14);
  std::copy_n(target.bytes.begin(), 4, p.begin() + 24);  // tha (18..23) stays zero
  return p;
}

std::optional<Mac> parse_arp_reply(const uint8_t* d, size_t len, const IpAddr& target) {
  if (len < kArpLen || !target.v4()) return std::nullopt;
  if (d[0] != 0 || d[1] != ARPHRD_ETHER || d[2] != (ETH_P_IP >> 8) || d[3] != (ETH_P_IP & 0xff) ||
      d[4] != 6 || d[5] != 4 || d[6] != 0 || d[7] != ARPOP_REPLY)
    return std::nullopt;
  if (!std::equal(d + 14, d + 18, target.bytes.begin())) return std::nullopt;  // spa
  Mac m{};
  std::copy(d + 8, d + 14, m.begin());
  return m;
}

Result<ArpProbeResult> arp_probe(const IpAddr& target, std::chrono::milliseconds wait) {
  if (!target.v4()) return fail("ARP asks about IPv4 addresses only, not " + target.str());
  TRY_ASSIGN(Rtnl rtnl, Rtnl::open());
  TRY_ASSIGN(RouteInfo route, route_toward(rtnl, target));
  TRY_ASSIGN(LinkInfo link, rtnl.link(route.dev));
  auto mac = parse_mac(link.mac);
  if (!mac) return fail("interface " + link.name + " has no Ethernet address to send ARP from");
  ArpProbeResult res;
  res.dev = link.name;
  TRY_ASSIGN(auto addrs, rtnl.addresses());
  for (const auto& a : addrs)
    if (a.index == link.index && a.prefix.addr.v4() && a.prefix.addr != target &&
        (!res.sender.family || a.prefix.contains(target)))
      res.sender = a.prefix.addr;
  if (!res.sender.family) return fail("interface " + link.name + " has no IPv4 address to ask from");

  Fd fd(::socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ARP)));
  if (!fd) return fail_errno("ARP socket on " + link.name, errno, "asking ARP needs CAP_NET_RAW (run as root)");
  sockaddr_ll ll{};
  ll.sll_family = AF_PACKET;
  ll.sll_protocol = htons(ETH_P_ARP);
  ll.sll_ifindex = link.index;
  // Bound before the request goes out, so no reply can slip past.
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ll), sizeof ll) != 0)
    return fail_errno("bind ARP socket to " + link.name, errno);
  ll.sll_halen = 6;
  std::memset(ll.sll_addr, 0xff, 6);
  const auto req = arp_request(*mac, res.sender, target);
  auto send = [&]() -> Status {
    if (::sendto(fd.get(), req.data(), req.size(), 0, reinterpret_cast<sockaddr*>(&ll), sizeof ll) < 0)
      return fail_errno("send ARP request on " + link.name, errno);
    return {};
  };
  TRY(send());
  const auto start = Clock::now(), end = start + wait;
  bool resent = false;
  uint8_t buf[256];
  for (auto now = start; now < end; now = Clock::now()) {
    // A second request covers one lost on the way; replies to both are the same owners.
    auto next = resent ? end : std::min(end, start + kResendAfter);
    pollfd p{fd.get(), POLLIN, 0};
    int ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count()) + 1;
    int rc = ::poll(&p, 1, ms);
    if (rc < 0 && errno != EINTR) return fail_errno("poll ARP socket", errno);
    if (!resent && Clock::now() >= start + kResendAfter) {
      resent = true;
      TRY(send());
    }
    if (rc <= 0) continue;
    for (;;) {
      sockaddr_ll from{};
      socklen_t fl = sizeof from;
      ssize_t n = ::recvfrom(fd.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
      if (n < 0) break;
      if (from.sll_pkttype == PACKET_OUTGOING) continue;
      if (auto m = parse_arp_reply(buf, static_cast<size_t>(n), target))
        if (std::find(res.answers.begin(), res.answers.end(), *m) == res.answers.end()) res.answers.push_back(*m);
    }
  }
  return res;
}

}  // namespace labctl
