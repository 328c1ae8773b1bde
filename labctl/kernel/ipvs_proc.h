// What a namespace's IPVS shows only under /proc/net: the connection table and the per-cpu
// totals (no netlink command reads either). Pure parsers of the files' text, and readers of
// the calling thread's namespace.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "labctl/base/error.h"
#include "labctl/kernel/ipvs.h"
#include "labctl/model/ip.h"

namespace labctl {

/// One entry of a namespace's connection table (/proc/net/ip_vs_conn; no netlink command
/// reads it).
struct IpvsConn {
  std::string protocol;  ///< As the kernel names it: "TCP", "UDP", "SCTP", ...
  IpAddr client;
  uint16_t client_port = 0;
  IpAddr vip;
  uint16_t vport = 0;
  IpAddr dest;
  uint16_t dport = 0;
  std::string state;     ///< "ESTABLISHED", "TIME_WAIT", "FIN_WAIT", "UDP", "NONE", ...
  uint32_t expires = 0;  ///< Seconds left.
  std::string pe_name;   ///< Persistence engine ("sip"), "" without one.
  std::string pe_data;
};

/// A namespace's IPVS totals from /proc/net/ip_vs_stats_percpu: the per-cpu counters summed
/// (exact: updated per packet) and the estimator's rates (refreshed about every 2 s).
struct IpvsTotals {
  IpvsStats exact;  ///< conns, in/out packets and bytes; rates 0.
  IpvsStats rates;  ///< cps, in/out pps and bps from the estimator.
  size_t cpus = 0;
};

namespace ipvs {

/// The text of /proc/net/ip_vs_conn (IPv4 addresses in hex, IPv6 ones as %pI6 prints them).
[[nodiscard]] Result<std::vector<IpvsConn>> parse_conn_table(const std::string& text);
/// The text of /proc/net/ip_vs_stats_percpu.
[[nodiscard]] Result<IpvsTotals> parse_stats_percpu(const std::string& text);
/// The connection table of the calling thread's namespace (/proc/thread-self/net: after
/// setns, /proc/self/net would be the thread-group leader's namespace).
[[nodiscard]] Result<std::vector<IpvsConn>> read_conn_table();
/// The totals of the calling thread's namespace.
[[nodiscard]] Result<IpvsTotals> read_totals();

}  // namespace ipvs
}  // namespace labctl
