// labagent echo: TCP or UDP payloads back to their sender.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "agents/common.h"
#include "agents/subcommand.h"

namespace labagent {
namespace {

// Replies leave from the address each datagram was sent to: a socket bound to the
// wildcard would otherwise pick the route's source, which through an LVS-DR VIP is the real
// server's own address, and the client (a connected socket, or any careful one) drops it.
// IPV6_RECVPKTINFO on the dual-stack socket covers IPv4 too: for a v4-mapped datagram the
// kernel reports the destination as ::ffff:a.b.c.d, and takes it back as the source.
int run_echo_udp(uint16_t port, int ready_fd) {
  int fd = listen_on(port, SOCK_DGRAM);
  if (fd < 0) return die("bind udp port " + std::to_string(port));
  int one = 1;
  if (::setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) != 0)
    return die("IPV6_RECVPKTINFO");
  signal_ready(ready_fd);
  static char buf[65536];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in6_pktinfo))];
  for (;;) {
    sockaddr_in6 peer{};
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    msg.msg_name = &peer;
    msg.msg_namelen = sizeof peer;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(fd, &msg, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return die("recvmsg");
    }
    const in6_pktinfo* to = nullptr;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
      if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO)
        to = reinterpret_cast<const in6_pktinfo*>(CMSG_DATA(c));
    iov.iov_len = static_cast<size_t>(n);
    msghdr reply{};
    reply.msg_name = &peer;
    reply.msg_namelen = msg.msg_namelen;
    reply.msg_iov = &iov;
    reply.msg_iovlen = 1;
    if (to) {
      in6_pktinfo from = *to;
      // The interface only matters for a link-local address; elsewhere routing picks it
      // (an LVS-DR reply need not leave where the request came in).
      if (!IN6_IS_ADDR_LINKLOCAL(&from.ipi6_addr)) from.ipi6_ifindex = 0;
      reply.msg_control = control;
      reply.msg_controllen = CMSG_SPACE(sizeof from);
      cmsghdr* c = CMSG_FIRSTHDR(&reply);
      c->cmsg_level = IPPROTO_IPV6;
      c->cmsg_type = IPV6_PKTINFO;
      c->cmsg_len = CMSG_LEN(sizeof from);
      std::memcpy(CMSG_DATA(c), &from, sizeof from);
    }
    ::sendmsg(fd, &reply, 0);
  }
}

int run_echo_tcp(uint16_t port, int ready_fd) {
  int lfd = listen_on(port, SOCK_STREAM);
  if (lfd < 0) return die("listen on port " + std::to_string(port));
  signal_ready(ready_fd);
  for (;;) {
    int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return die("accept");
    }
    // One connection at a time, each bounded by the I/O timeout: enough for lab checks.
    set_timeouts(c, kIoTimeoutMs);
    char buf[16384];
    for (;;) {
      ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0 || !write_all(c, std::string(buf, static_cast<size_t>(n)))) break;
    }
    ::close(c);
  }
}

uint16_t port = 7;
bool udp = false;
int ready_fd = -1;

CLI::App* add(CLI::App& app) {
  auto* echo = app.add_subcommand("echo", "echo TCP (or UDP) payloads back");
  echo->add_option("--port", port, "port to listen on")->default_val(7);
  echo->add_flag("--udp", udp, "UDP instead of TCP");
  echo->add_option("--ready-fd", ready_fd, "write \"ready\" to this fd once listening");
  return echo;
}

int run() { return udp ? run_echo_udp(port, ready_fd) : run_echo_tcp(port, ready_fd); }

const Registered registered{{"echo", add, run}};

}  // namespace
}  // namespace labagent
