// Diagnosis of a failed check: the lab read back from the kernel (addresses, routes,
// sysctls, listening sockets, tunl0, the director's IPVS table) and compared with what LVS
// needs, naming the usual causes with the topology line that cures each. Two halves, so the
// judgement is testable without root: gather_facts reads the kernel into a LabFacts value,
// decide_causes is a pure function of the topology, the check and those facts.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "labctl/checks/checks.h"
#include "labctl/kernel/ipvs.h"
#include "labctl/kernel/rtnl.h"
#include "labctl/model/topology.h"

namespace labctl {

/// What one node's namespace holds, as the kernel says. A node whose namespace could not
/// be read has read == false and yields no cause.
struct NodeFacts {
  bool read = false;
  std::vector<LinkInfo> links;
  std::vector<AddrInfo> addrs;
  std::vector<RouteInfo> routes;               ///< Main table, IPv4 and IPv6.
  std::map<std::string, std::string> sysctls;  ///< Dotted key -> value, for the keys read.
  std::set<uint16_t> tcp_listen;               ///< Ports with a socket in LISTEN (v4 or v6).
  std::set<uint16_t> udp_bound;                ///< Ports with a bound UDP socket.
};

/// A service as the director's IPVS table holds it now.
struct ServiceFacts {
  bool read = false;     ///< The table could be read (false on a kernel without IPVS).
  bool present = false;  ///< The service is in it.
  std::vector<IpvsDest> dests;
  std::string scheduler;  ///< As the table has it now (a live `ipvsadm -E` changes it).
  bool persistent = false;
  uint32_t timeout = 0;   ///< Persistence timeout in seconds.
};

struct LabFacts {
  std::map<std::string, NodeFacts> nodes;       ///< By node name.
  std::map<std::string, ServiceFacts> services;  ///< By service name.
};

/// The services a check is about: the one it names, else those whose VIP it targets.
[[nodiscard]] std::vector<const VirtualService*> services_of(const Topology& t, const Check& c);

/// Reads what decide_causes needs from the kernel: the director of each service the check
/// is about, its real servers (from the IPVS table when it can be read) and the `from`
/// node. Bounded: a fixed set of dumps and sysctl reads per node. Never fails; what cannot
/// be read is left out.
[[nodiscard]] LabFacts gather_facts(const Topology& t, const Check& c);

/// The usual LVS causes for the failure of check `c`, judged from the kernel's facts
/// (pure), looking where its kind's entry says (LvsFocus). Kinds without a diagnosis (those
/// that assert something is unreachable) get none.
[[nodiscard]] std::vector<Cause> decide_causes(const Topology& t, const Check& c,
                                               const LabFacts& f);

/// The causes of a failed keepalived check (failover) in a split brain: given which
/// directors hold the VIP now (`holders`, read from their namespaces), each keepalived
/// router of the pair that runs VRRP on another segment than the one `from` reaches the
/// VIP on, with the interface to run it on instead (pure).
[[nodiscard]] std::vector<Cause> split_brain_causes(const Topology& t, const Check& c,
                                                    const std::vector<std::string>& holders);

/// The keepalived directors of the check's service that hold its VIP (c.to) now.
[[nodiscard]] std::vector<std::string> vip_holders(const Topology& t, const Check& c);

/// gather_facts + decide_causes: the LVS causes, the diagnosis of most kinds of check.
[[nodiscard]] std::vector<Cause> diagnose_lvs(const Topology& t, const Check& c);

/// The causes for a check that failed, by its kind's own diagnosis (check_kind.h's KindRun).
[[nodiscard]] std::vector<Cause> diagnose(const Topology& t, const Check& c);

/// Ports in LISTEN (tcp) or bound (udp) from the text of /proc/net/{tcp,tcp6,udp,udp6}.
[[nodiscard]] std::set<uint16_t> parse_proc_net_ports(std::string_view text, bool tcp);

}  // namespace labctl
