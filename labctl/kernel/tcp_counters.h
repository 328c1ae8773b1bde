// Who took part in how many TCP handshakes: a namespace's own TCP counters (the "Tcp:" lines
// of /proc/net/snmp, what `nstat` and `netstat -s` read) and its sockets counted by state.
// Read before and after some traffic, the difference says which node opened connections
// (ActiveOpens: a connect() sent a SYN), which accepted them (PassiveOpens: a listener
// answered a SYN), and which holds TIME_WAIT afterwards. An LVS director forwarding packets
// shows +0 of each; a proxy shows one passive and one active open per request.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "labctl/base/error.h"
#include "labctl/kernel/tcp_sockets.h"

namespace labctl {

/// The counters of one namespace at one moment (all since the namespace was made).
struct TcpCounters {
  uint64_t active_opens = 0;   ///< SYNs sent by connect() (SYN_SENT entered).
  uint64_t passive_opens = 0;  ///< SYNs a listener answered (SYN_RECV entered).
  uint64_t attempt_fails = 0;  ///< Opens that failed (refused, reset before established).
  uint64_t estab_resets = 0;   ///< Established connections reset.
  uint64_t curr_estab = 0;     ///< A gauge: ESTABLISHED or CLOSE_WAIT now.
  uint64_t out_rsts = 0;       ///< Resets sent.
};

/// `after - before` for the counters (a gauge, curr_estab, is taken from `after`).
[[nodiscard]] TcpCounters operator-(const TcpCounters& after, const TcpCounters& before);

/// The Tcp: header and value lines of /proc/net/snmp's text; an error when they are missing
/// or their columns disagree.
[[nodiscard]] Result<TcpCounters> parse_snmp_tcp(std::string_view snmp);
/// The counters of the calling thread's namespace (/proc/thread-self/net/snmp).
[[nodiscard]] Result<TcpCounters> tcp_counters_here();

/// A namespace's TCP sockets counted by state (tcp_state_name's names), listeners apart.
struct TcpCensus {
  std::map<std::string, int> by_state;  ///< "ESTABLISHED" -> 3, "TIME_WAIT" -> 40, ...
  int listening = 0;
  int connected = 0;  ///< Every socket that is not a listener (TIME_WAIT included).
  [[nodiscard]] int in(const std::string& state) const {
    auto it = by_state.find(state);
    return it == by_state.end() ? 0 : it->second;
  }
};

[[nodiscard]] TcpCensus census(const std::vector<TcpSocket>& sockets);
/// census(tcp_sockets_here()).
[[nodiscard]] Result<TcpCensus> tcp_census_here();

}  // namespace labctl
