#include "labctl/checks/proxy_ports.h"

#include <fmt/format.h>
#include <netinet/tcp.h>

#include <sstream>

#include "labctl/checks/diagnose.h"
#include "labctl/kernel/netns.h"
#include "labctl/kernel/sysctl.h"
#include "labctl/kernel/tcp_sockets.h"

namespace labctl {

std::vector<Cause> proxy_port_causes(const std::vector<ProxyPorts>& proxies) {
  std::vector<Cause> out;
  for (const auto& p : proxies) {
    const int ports = p.high - p.low + 1;
    if (ports <= 0) continue;
    for (const auto& [upstream, held] : p.time_wait) {
      // A connect() in flight holds a port too: nearly all held is already out of ports.
      if (held * 10 < ports * 9) continue;
      out.push_back(
          {p.node,
           fmt::format("{} holds {} connections to {} in TIME_WAIT, and its ip_local_port_range {}-{} gives it {} "
                       "source ports: each one closed first by {} keeps its port for 60 s, so a new connect() to "
                       "{} finds none free (EADDRNOTAVAIL) and nginx answers 502 Bad Gateway",
                       p.node, held, upstream, p.low, p.high, ports, p.node, upstream),
           fmt::format("widen the range: [nodes.{}.sysctl] net.ipv4.ip_local_port_range = \"32768 60999\"; or keep "
                       "upstream connections alive (keepalive = 16 in {}'s nginx agent){}",
                       p.node, p.node, p.keepalive ? "" : ", so that a few connections carry every request")});
    }
  }
  return out;
}

std::vector<ProxyPorts> read_proxy_ports(const Topology& t) {
  std::vector<ProxyPorts> out;
  for (const auto& n : t.nodes) {
    const Agent* proxy = nullptr;
    for (const auto& a : n.agents)
      if (a.nginx) proxy = &a;
    if (!proxy) continue;
    ProxyPorts p;
    p.node = n.name;
    p.keepalive = proxy->nginx->keepalive;
    auto ns = open_netns(netns_name(t.name, n.name));
    if (!ns) continue;
    Status st = run_in_netns(ns->get(), [&]() -> Status {
      TRY_ASSIGN(std::string range, read_sysctl("net.ipv4.ip_local_port_range"));
      std::istringstream in(range);
      if (!(in >> p.low >> p.high)) return fail("ip_local_port_range is '" + range + "'");
      TRY_ASSIGN(auto sockets, tcp_sockets_here());
      for (const auto& s : sockets)
        if (s.state == TCP_TIME_WAIT && s.local_port >= p.low && s.local_port <= p.high)
          ++p.time_wait[(s.remote.v6() ? "[" + s.remote.str() + "]" : s.remote.str()) + ":" +
                        std::to_string(s.remote_port)];
      return {};
    });
    if (st) out.push_back(std::move(p));
  }
  return out;
}

std::vector<Cause> diagnose_through_proxies(const Topology& t, const Check& c) {
  std::vector<Cause> causes = diagnose_lvs(t, c);
  for (auto& x : proxy_port_causes(read_proxy_ports(t))) causes.push_back(std::move(x));
  return causes;
}

}  // namespace labctl
