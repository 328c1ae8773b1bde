// A proxy out of source ports: without upstream keep-alive an nginx proxy opens a new
// connection to an app for every request, and when it is the side that closes first it
// keeps each of them in TIME_WAIT for a minute (the 4-way close's last state). Every such
// socket holds one of the proxy's ephemeral ports (net.ipv4.ip_local_port_range) for that
// app: once they are all held, connect() fails (EADDRNOTAVAIL) and nginx answers 502.
// Two halves, as diagnose.h: read_proxy_ports reads the kernel, proxy_port_causes judges.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "labctl/checks/checks.h"
#include "labctl/model/topology.h"

namespace labctl {

/// What one proxy's namespace says about its source ports.
struct ProxyPorts {
  std::string node;
  int low = 0, high = 0;  ///< net.ipv4.ip_local_port_range.
  /// Sockets in TIME_WAIT from a port of that range, by the upstream ("10.31.0.23:8080").
  std::map<std::string, int> time_wait;
  int keepalive = 0;  ///< Its nginx agent's upstream keep-alive.
};

/// A cause for each proxy whose TIME_WAIT sockets toward one upstream hold (nearly) every
/// port of its range, naming the count, the range and both fixes (pure).
[[nodiscard]] std::vector<Cause> proxy_port_causes(const std::vector<ProxyPorts>& proxies);
/// Reads every node of `t` that runs an nginx agent.
[[nodiscard]] std::vector<ProxyPorts> read_proxy_ports(const Topology& t);
/// diagnose_lvs, then the proxies' ports: the diagnosis of checks whose requests may cross
/// an L7 proxy (http, handshakes).
[[nodiscard]] std::vector<Cause> diagnose_through_proxies(const Topology& t, const Check& c);

}  // namespace labctl
