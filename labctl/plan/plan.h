// A plan is an ordered list of steps, each a plain value. The planner (planner.h) makes it
// from a topology without touching the system; an Executor (executor.h) carries it out.
// Every step can be shown as the equivalent shell command (for --dry-run), carries a
// one-line "why" when it is not obvious (for explain), and has an undo.
#pragma once

#include <sys/socket.h>

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "labctl/model/topology.h"

namespace labctl {
namespace step {

/// Create the named network namespace "/run/netns/<ns>" and mark it as the lab's own.
struct CreateNetns {
  std::string ns;
  std::string lab;
  std::string member;  ///< The node or switch it holds.
};
struct CreateBridge {
  std::string ns;
  std::string name;
  int mtu = 0;
};
/// A veth pair created inside `ns`, its peer placed directly into `peer_ns`.
struct CreateVeth {
  std::string ns;
  std::string name;
  std::string peer_ns;
  std::string peer_name;
  int mtu = 0;  ///< Applies to both ends; 0: kernel default.
  std::string mac;
  std::string peer_mac;
};
struct SetMaster {
  std::string ns;
  std::string dev;
  std::string master;
};
struct LinkUp {
  std::string ns;
  std::string dev;
};
struct AddAddress {
  std::string ns;
  std::string dev;
  IpPrefix addr;
  int scope = 0;  ///< RT_SCOPE_*: 0 universe (global), RT_SCOPE_HOST for `scope = "host"`.
  /// IPv6: added with preferred lifetime 0, so the kernel never picks it as a source address.
  bool deprecated = false;
};
struct AddRoute {
  std::string ns;
  Route route;
};
struct SetSysctl {
  std::string ns;
  std::string key;  ///< Dotted form.
  std::string value;
};
/// Make sure the ipip module is loaded so tunl0 exists in `ns` (LVS-TUN real server); with
/// family AF_INET6 ip6_tunnel, so ip6tnl0 exists (IPv6 LVS-TUN real server).
struct EnableIpip {
  std::string ns;
  int family = AF_INET;  ///< AF_INET (ipip, tunl0) or AF_INET6 (ip6_tunnel, ip6tnl0).
};
struct CreateIpip {
  std::string ns;
  Tunnel tunnel;
};
struct AddIpvsService {
  std::string ns;
  VirtualService service;  ///< real_servers is ignored here.
};
struct AddIpvsDest {
  std::string ns;
  VirtualService service;  ///< Identifies the service; real_servers is ignored.
  RealServer dest;
};
struct StartAgent {
  std::string ns;
  std::string lab;
  std::string node;
  Agent agent;
};
/// Load a node's packet rules (its `marks` and `nat`) as one nftables transaction.
struct ApplyNftRules {
  std::string ns;
  std::string ruleset;  ///< nft_ruleset(): the text `nft -f` would read.
};

}  // namespace step

using Step = std::variant<step::CreateNetns, step::CreateBridge, step::CreateVeth, step::SetMaster,
                          step::LinkUp, step::AddAddress, step::AddRoute, step::SetSysctl,
                          step::EnableIpip, step::CreateIpip, step::AddIpvsService,
                          step::AddIpvsDest, step::StartAgent, step::ApplyNftRules>;

struct PlannedStep {
  Step step;
  std::string node;  ///< The node or switch this step belongs to (explain groups by it).
  std::string why;   ///< One line of why, "" when the step is self-explanatory.
};

struct Plan {
  std::string lab;
  std::vector<PlannedStep> steps;
};

/// Whether the step is one rtnetlink request in its namespace (links, addresses, routes),
/// so that a run of them can go to the kernel in one batch.
[[nodiscard]] bool is_rtnetlink_step(const Step& s);
/// The namespace a step acts in.
[[nodiscard]] const std::string& step_netns(const Step& s);
/// The equivalent shell command (ip, ipvsadm, sysctl ...), runnable as root.
/// The mark put on every namespace of a lab (as lo's alias), by `up` and by the --dry-run
/// script alike, so that `down` finds a lab's namespaces without its state and never
/// touches anybody else's.
[[nodiscard]] std::string netns_mark(const std::string& lab);
/// The lab a mark names, or nullopt when it is no labctl mark.
[[nodiscard]] std::optional<std::string> lab_of_mark(std::string_view mark);
/// Where the --dry-run script keeps its agents' pids and logs.
[[nodiscard]] std::string script_dir(const std::string& lab);
[[nodiscard]] std::string shell_command(const Step& s);
/// The shell command that undoes the step.
[[nodiscard]] std::string undo_command(const Step& s);
/// A short description for progress and error messages, e.g. "create veth eth0 in dr-demo-rs1".
[[nodiscard]] std::string describe(const Step& s);
/// The step's kind as a stable kebab-case word ("create-veth"), for --json.
[[nodiscard]] std::string step_type(const Step& s);

/// The program and arguments an agent runs (labagent for the built-in kinds).
[[nodiscard]] std::vector<std::string> agent_argv(const step::StartAgent& s);

}  // namespace labctl
