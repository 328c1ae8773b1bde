// The TCP sockets of the calling thread's network namespace, read from
// /proc/thread-self/net/tcp and tcp6 (`ss -tan`): who is connected to whom, in every state.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "labctl/base/error.h"
#include "labctl/model/ip.h"

namespace labctl {

struct TcpSocket {
  IpAddr local;   ///< A v4-mapped IPv6 address (a dual-stack socket's IPv4 peer) is shown as IPv4.
  uint16_t local_port = 0;
  IpAddr remote;
  uint16_t remote_port = 0;
  int state = 0;  ///< TCP_ESTABLISHED (1) ... TCP_LISTEN (10), as netinet/tcp.h numbers them.
};

/// The first four columns of each socket line of a /proc/net/{tcp,tcp6,udp,udp6} table
/// ("   0: 00000000:1F90 00000000:0000 0A ..."): sl, local and remote address:port, state,
/// all as the kernel printed them (hex). The header line and short lines are skipped.
[[nodiscard]] std::vector<std::array<std::string_view, 4>> proc_net_rows(std::string_view table);
/// The sockets in the text of /proc/net/tcp (family AF_INET) or /proc/net/tcp6 (AF_INET6).
[[nodiscard]] std::vector<TcpSocket> parse_proc_net_tcp(std::string_view table, int family);
/// "ESTABLISHED", "TIME_WAIT" ...
[[nodiscard]] std::string tcp_state_name(int state);
/// Every TCP socket of the namespace the calling thread is in (IPv4 and IPv6).
[[nodiscard]] Result<std::vector<TcpSocket>> tcp_sockets_here();

}  // namespace labctl
