// What a running lab looks like, read back from the kernel (not from our own state):
// per namespace its links, addresses, routes, processes and IPVS services.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "labctl/base/error.h"
#include "labctl/kernel/ipvs.h"
#include "labctl/kernel/qdisc.h"
#include "labctl/kernel/rtnl.h"
#include "labctl/plan/agent.h"

namespace labctl {

struct ProcessInfo {
  pid_t pid = 0;
  std::string cmdline;  ///< argv joined by spaces.
};

struct NetnsStatus {
  std::string ns;
  std::string member;  ///< Node or switch name (ns without the "<lab>-" prefix).
  std::vector<LinkInfo> links;
  /// Root qdiscs that carry an impairment (netem, tbf), as the kernel reads them back.
  std::vector<QdiscInfo> impairments;
  std::vector<AddrInfo> addresses;
  std::vector<RouteInfo> routes;
  std::vector<ProcessInfo> processes;
  /// The node's agents as their supervisors recorded them; an agent recorded as running
  /// whose supervisor is no longer in the namespace shows as "gone".
  std::vector<AgentState> agents;
  std::vector<IpvsService> services;  ///< Empty when IPVS is unavailable or unused.
  std::vector<std::vector<IpvsDest>> dests;  ///< Parallel to services.
  std::vector<IpvsDaemon> sync;  ///< The IPVS sync daemons running (GET_DAEMON).
  /// The all-zero FDB entries of its VXLAN devices: the other hosts each one floods to.
  /// Read only where a VXLAN device is (a switch stretched across hosts).
  std::vector<FdbEntry> vxlan_remotes;
  std::string error;                  ///< Why something could not be read, if so.
};

struct LabStatus {
  std::string lab;
  bool has_state = false;  ///< /run/labctl/<lab> exists.
  std::vector<NetnsStatus> namespaces;
};

[[nodiscard]] Result<LabStatus> lab_status(const std::string& lab);
/// Every agent state recorded in the lab's state folder (agents/*.json), sorted by node and
/// agent; unreadable records are skipped.
[[nodiscard]] std::vector<AgentState> read_agent_states(const std::string& lab);
/// "node:agent exited (code 1)" for each agent that is not as it should be (agent_ok), with
/// "gone" for one recorded running whose supervisor is not among `pids` of its node.
[[nodiscard]] std::vector<std::string> failed_agents(const LabStatus& s);
[[nodiscard]] nlohmann::json status_json(const LabStatus& s);
/// The impairment on link `l` as the kernel holds it ("10mbit, delay 20ms"), nullopt when
/// it has none: what status shows beside the link, and --json as its "impair".
[[nodiscard]] std::optional<std::string> link_impairment(const NetnsStatus& n, const LinkInfo& l);
/// A VXLAN link's VNI, local address, port and remotes ("vni 4242 local 192.168.77.1 port
/// 4789 remotes 192.168.77.2,192.168.77.3"), nullopt for any other link.
[[nodiscard]] std::optional<std::string> link_vxlan(const NetnsStatus& n, const LinkInfo& l);
/// Human-readable, one block per namespace.
[[nodiscard]] std::string render_status(const LabStatus& s);

}  // namespace labctl
