// A director's IPVS table read back from the kernel with labctl's names (`labctl ipvs`):
// services and real servers as `ipvsadm -Ln` shows them, the connection timeouts, the
// namespace's exact totals and, on request, its connection table. Rendering is pure.
//
// Counters, honestly: per-service and per-server counters and every rate come from the
// kernel's estimator, which refreshes them about every 2 s. Only the namespace's totals
// have exact per-cpu copies (/proc/net/ip_vs_stats_percpu); the kernel exposes no
// per-service per-cpu counters.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "labctl/base/error.h"
#include "labctl/kernel/ipvs.h"
#include "labctl/kernel/ipvs_proc.h"
#include "labctl/model/topology.h"

namespace labctl {

struct IpvsTableDest {
  IpvsDest dest;
  std::string node;  ///< The lab node holding the address on an interface, "" if none.
};

struct IpvsTableService {
  IpvsService service;
  std::string name;  ///< The topology's name of the service, "" when the topology has none.
  std::vector<IpvsTableDest> dests;
};

struct IpvsTable {
  std::string lab;
  std::string node;  ///< The director.
  std::string ns;
  IpvsInfo info;
  IpvsTimeouts timeouts;
  std::vector<IpvsTableService> services;
  std::optional<IpvsTotals> totals;  ///< nullopt when ip_vs_stats_percpu cannot be read.
  bool with_conns = false;
  std::vector<IpvsConn> conns;
};

/// Nodes that have IPVS services in the topology, in topology order.
[[nodiscard]] std::vector<std::string> director_nodes(const Topology& t);
/// `node` when it is a node of the lab, or the lab's one director when `node` is empty.
/// Errors name what exists (an unknown node, no director, several directors).
[[nodiscard]] Result<std::string> pick_director(const Topology& t, const std::string& node);
/// The node that holds `a` on an interface (not lo, where DR real servers keep the VIP),
/// "" when none does.
[[nodiscard]] std::string node_holding(const Topology& t, const IpAddr& a);

/// Whether the kernel's service is the topology's: protocol, address and port, or fwmark
/// and family.
[[nodiscard]] bool same_service(const IpvsService& live, const VirtualService& v);

/// Reads `node`'s table from inside its namespace (lab `t.name`); with `conns` its
/// connection table too.
[[nodiscard]] Result<IpvsTable> read_ipvs_table(const Topology& t, const std::string& node,
                                                bool conns);
/// Names a table read elsewhere: services by the topology's names, servers by node.
void name_ipvs_table(const Topology& t, IpvsTable& table);

enum class IpvsView {
  List,         ///< ipvsadm -Ln
  Stats,        ///< ipvsadm -Ln --stats --exact
  Rate,         ///< ipvsadm -Ln --rate
  Connections,  ///< ipvsadm -Lnc
  Timeouts,     ///< ipvsadm -L --timeout
};

/// The table as ipvsadm prints it, with labctl's names in a last column and a line on how
/// fresh the counters are.
[[nodiscard]] std::string render_ipvs(const IpvsTable& t, IpvsView v);
/// Every field, for scripts.
[[nodiscard]] nlohmann::json ipvs_json(const IpvsTable& t);
/// ipvs_json read back: how a check on one host of a lab across hosts reads a director on
/// another (`labctl ipvs LAB NODE --json` there). Services, real servers and their
/// counters; not the connection table. Errors name the field that is missing or wrong.
[[nodiscard]] Result<IpvsTable> ipvs_table_from_json(const nlohmann::json& j);

/// "Route", "Masq", "Tunnel", "Local", "Bypass": ipvsadm's names of forward methods.
[[nodiscard]] const char* forward_name(uint32_t fwd_method);
/// The scheduler flags as ipvsadm names them ("sh-fallback,sh-port", "flag-1"), "" if none.
[[nodiscard]] std::string sched_flag_names(const std::string& scheduler, uint32_t flags);
/// "TCP", "UDP", "SCTP" as ipvsadm prints protocols.
[[nodiscard]] std::string protocol_name(int protocol);

}  // namespace labctl
