// Live edits of a running lab's IPVS table (`labctl ipvs LAB set-weight ...`): resolved
// against the topology's names (pure, so unit-tested), carried out through the same
// netlink client as `up` under the lab's lock, and recorded in the lab's state
// (ipvs-edits.json) so that every later command that reads the kept topology (check,
// down --dry-run, ipvs) sees the lab as it is now.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "labctl/base/error.h"
#include "labctl/kernel/ipvs.h"
#include "labctl/model/topology.h"

namespace labctl {

enum class IpvsEditKind {
  SetWeight,       ///< ipvsadm -e ... -w W
  Drain,           ///< weight 0: no new connections, existing ones go on
  AddServer,       ///< ipvsadm -a
  RemoveServer,    ///< ipvsadm -d
  SetScheduler,    ///< ipvsadm -E ... -s NAME
  SetPersistence,  ///< ipvsadm -E ... -p SECONDS (0: not persistent)
  SetTimeouts,     ///< ipvsadm --set TCP TCPFIN UDP
};

/// An edit as the user asked for it, in the topology's names.
struct IpvsEdit {
  IpvsEditKind kind = IpvsEditKind::SetWeight;
  std::string service;  ///< The service's name in the topology.
  std::string server;   ///< A node name, ADDR or ADDR:PORT ([V6]:PORT).
  int weight = 1;       ///< SetWeight, AddServer.
  std::optional<FwdMethod> method;  ///< AddServer: default, the service's other servers'.
  std::string scheduler;            ///< SetScheduler.
  uint32_t persistence = 0;         ///< SetPersistence, seconds.
  IpvsTimeouts timeouts;            ///< SetTimeouts (0: unchanged).
  std::string node;                 ///< SetTimeouts: the director ("" : the lab's one).
};

/// An edit resolved against the topology: which director, service and real server.
struct ResolvedIpvsEdit {
  IpvsEdit edit;
  std::string director;
  VirtualService service;  ///< As the (kept, already edited) topology has it.
  RealServer server;       ///< The server edited, added or removed.
  std::vector<std::string> notes;  ///< Warnings and consequences to tell the user.
};

[[nodiscard]] const char* to_string(IpvsEditKind k);
/// "set-weight" ... "timeouts" back to the kind.
[[nodiscard]] std::optional<IpvsEditKind> parse_ipvs_edit_kind(const std::string& word);
/// Every edit's word, as `labctl ipvs LAB WORD ...` takes it (shell completion lists them).
[[nodiscard]] std::vector<std::string> ipvs_edit_words();

/// Checks names and values against `t`. Errors are the user's (exit 2) and name what
/// exists: the services, a service's real servers, the nodes.
[[nodiscard]] Result<ResolvedIpvsEdit> resolve_ipvs_edit(const Topology& t, const IpvsEdit& e);
/// Changes `t` as the edit changes the lab (pure): weights, servers, scheduler, persistence.
void edit_topology(Topology& t, const ResolvedIpvsEdit& e);

/// Carries the edit out in the director's namespace (read the service back, change what
/// the edit changes, send it), under the lab's lock, then records it in the lab's state.
/// Returns what was done, as one line.
[[nodiscard]] Result<std::string> apply_ipvs_edit(const std::string& lab,
                                                  const ResolvedIpvsEdit& e);

[[nodiscard]] nlohmann::json ipvs_edit_json(const IpvsEdit& e);
[[nodiscard]] Result<IpvsEdit> ipvs_edit_from_json(const nlohmann::json& j);
/// Where a lab's edits are recorded: <state>/ipvs-edits.json.
[[nodiscard]] std::string ipvs_edits_path(const std::string& lab);
/// The lab's recorded edits, oldest first (none when there is no record).
[[nodiscard]] Result<std::vector<IpvsEdit>> recorded_ipvs_edits(const std::string& lab);
/// Applies the lab's recorded edits to its kept topology, in order. An edit that no longer
/// resolves is skipped and named in the result.
[[nodiscard]] std::vector<std::string> apply_recorded_ipvs_edits(Topology& t);

}  // namespace labctl
