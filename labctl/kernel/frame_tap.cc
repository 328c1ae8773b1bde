#include "labctl/kernel/frame_tap.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>

namespace labctl {

Result<FrameTap> FrameTap::open(const std::string& dev) {
  const unsigned index = ::if_nametoindex(dev.c_str());
  if (index == 0) return fail_errno("interface " + dev + " to listen on", errno);
  Fd fd(::socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL)));
  if (!fd) return fail_errno("packet socket on " + dev, errno, "listening on an interface needs CAP_NET_RAW (run as root)");
  sockaddr_ll ll{};
  ll.sll_family = AF_PACKET;
  ll.sll_protocol = htons(ETH_P_ALL);
  ll.sll_ifindex = static_cast<int>(index);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ll), sizeof ll) != 0)
    return fail_errno("bind packet socket to " + dev, errno);
  return FrameTap(std::move(fd), dev);
}

Result<int> FrameTap::frames_to(const std::string& mac, std::chrono::milliseconds quiet) {
  int count = 0;
  uint8_t buf[64];  // the Ethernet header is all that is looked at
  for (;;) {
    pollfd p{fd_.get(), POLLIN, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(quiet.count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return fail_errno("poll packet socket on " + dev_, errno);
    if (rc == 0) return count;
    for (;;) {
      sockaddr_ll from{};
      socklen_t fl = sizeof from;
      const ssize_t n = ::recvfrom(fd_.get(), buf, sizeof buf, MSG_TRUNC, reinterpret_cast<sockaddr*>(&from), &fl);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        return fail_errno("read packet socket on " + dev_, errno);
      }
      if (from.sll_pkttype == PACKET_OUTGOING || n < ETH_HLEN) continue;
      char dst[18];
      std::snprintf(dst, sizeof dst, "%02x:%02x:%02x:%02x:%02x:%02x", buf[0], buf[1], buf[2], buf[3], buf[4], buf[5]);
      if (mac == dst) ++count;
    }
  }
}

}  // namespace labctl
