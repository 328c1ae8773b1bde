// A plan is an ordered list of steps, each a plain value. The planner (planner.h) makes it
// from a topology without touching the system; an Executor (executor.h) carries it out.
//
// A step type is one struct here and one block in a steps_*.cc file (steps_link.cc: namespaces,
// links, addresses, routes, tunnels; steps_ipvs.cc: IPVS; steps_node.cc: sysctls, agents,
// packet rules). The struct names what the step carries and declares what every step type has
// (the `PlanStep` contract below): its stable type name for --json, whether it is one
// rtnetlink request, and its forms as the equivalent shell command (for --dry-run), its undo,
// a one-line description and its fields as JSON. Everything else about a step is generic; only
// the executor (lab/netlink_executor.cc) carries each type out on its own.
#pragma once

#include <sys/socket.h>

#include <concepts>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "labctl/model/topology.h"

namespace labctl {

/// What every step type has. kType: a stable kebab-case word ("create-veth"), for --json.
/// kRtnetlink: the step is one rtnetlink request in its namespace (a link, address, route),
/// so that a run of them can go to the kernel in one batch.
template <class S>
concept PlanStep = requires(const S& s) {
  requires std::same_as<decltype(S::kType), const std::string_view>;
  requires std::same_as<decltype(S::kRtnetlink), const bool>;
  { s.ns } -> std::convertible_to<const std::string&>;  // the namespace it acts in
  { s.shell() } -> std::same_as<std::string>;           // the equivalent command, runnable as root
  { s.undo() } -> std::same_as<std::string>;            // the command that undoes it ("": none)
  { s.describe() } -> std::same_as<std::string>;        // for progress and error messages
  requires std::same_as<decltype(&S::fields), nlohmann::json (S::*)() const>;
};

namespace step {

/// Create the named network namespace "/run/netns/<ns>" and mark it as the lab's own.
struct CreateNetns {
  static constexpr std::string_view kType = "create-netns";
  static constexpr bool kRtnetlink = false;
  std::string ns;
  std::string lab;
  std::string member;  ///< The node or switch it holds.
  [[nodiscard]] std::string shell() const;
  [[nodiscard]] std::string undo() const;
  [[nodiscard]] std::string describe() const;
  [[nodiscard]] nlohmann::json fields() const;
};
struct CreateBridge {
  static constexpr std::string_view kType = "create-bridge";
  static constexpr bool kRtnetlink = true;
  std::string ns;
  std::string name;
  int mtu = 0;
  [[nodiscard]] std::string shell() const;
  [[nodiscard]] std::string undo() const;
  [[nodiscard]] std::string describe() const;
  [[nodiscard]] nlohmann::json fields() const;
};
/// A veth pair created inside `ns`, its peer placed directly into `peer_ns`.
struct CreateVeth {
  static constexpr std::string_view kType = "create-veth";
  static constexpr bool kRtnetlink = true;
  std::string ns;
  std::string name;
  std::string peer_ns;
  std::string peer_name;
  int mtu = 0;  ///< Applies to both ends; 0: kernel default.
  std::string mac;
  std::string peer_mac;
  [[nodiscard]] std::string shell() const;
  [[nodiscard]] std::string undo() const;
  [[nodiscard]] std::string describe() const;
  [[nodiscard]] nlohmann::json fields() const;
};
struct SetMaster {
  static constexpr std::string_view kType = "set-master";
  static constexpr bool kRtnetlink = true;
  std::string ns;
  std::string dev;
  std::string master;
  [[nodiscard]] std::string shell() const;
  [[nodiscard]] std::string undo() const;
  [[nodiscard]] std::string describe() const;
  [[nodiscard]] nlohmann::json fields() const;
};
struct LinkUp {
  static constexpr std::string_view kType = "link-up";
  static constexpr bool kRtnetlink = true;
  std::string ns;
  std::string dev;
  [[nodiscard]] std::string shell() const;
  [[nodiscard]] std::string undo() const;
  [[nodiscard]] std::string describe() const;
  [[nodiscard]] nlohmann::json fields() const;
};
/// An interface's declared impairment as its root qdisc (netem, or tbf for a rate alone),
/// set while the link is still down, where it costs microseconds (issue 23).
struct SetImpairment {
  static constexpr std::string_view kType = "set-impairment";
  static constexpr bool kRtnetlink = true;
  std::string ns;
  std::string dev;
  Impairment impair;
  int mtu = 0;  ///< The link's MTU (0: kernel default), for tbf's bucket.
  [[nodiscard]] std::string shell() const;
  [[nodiscard]] std::string undo() const;
  [[nodiscard]] std::string describe() const;
  [[nodiscard]] nlohmann::json fields() const;
};
struct AddAddress {
  static constexpr std::string_view kType = "add-address";
  static constexpr bool kRtnetlink = true;
  std::string ns;
  std::string dev;
  IpPrefix addr;
  int scope = 0;  ///< RT_SCOPE_*: 0 universe (global), RT_SCOPE_HOST for `scope = "host"`.
  /// IPv6: added with preferred lifetime 0, so the kernel never picks it as a source address.
  bool deprecated = false;
  [[nodiscard]] std::string shell() const;
  [[nodiscard]] std::string undo() const;
  [[nodiscard]] std::string describe() const;
  [[nodiscard]] nlohmann::json fields() const;
};
struct AddRoute {
  static constexpr std::string_view kType = "add-route";
  static constexpr bool kRtnetlink = true;
  std::string ns;
  Route route;
  [[nodiscard]] std::string shell() const;
  [[nodiscard]] std::string undo() const;
  [[nodiscard]] std::string describe() const;
  [[nodiscard]] nlohmann::json fields() const;
};
struct SetSysctl {
  static constexpr std::string_view kType = "set-sysctl";
  static constexpr bool kRtnetlink = false;
  std::string ns;
  std::string key;  ///< Dotted form.
  std::string value;
  [[nodiscard]] std::string shell() const;
  [[nodiscard]] std::string undo() const;
  [[nodiscard]] std::string describe() const;
  [[nodiscard]] nlohmann::json fields() const;
};
/// One host's end of a switch stretched across hosts (issue 28): a VXLAN device in the
/// switch's namespace `ns`, attached to its bridge, with one all-zero FDB entry per other host
/// (unicast head-end replication: broadcast and multicast reach every host; learning stays on,
/// so unicast goes straight to the right one). Left down: a LinkUp brings it up.
/// Not an rtnetlink step of `ns`'s batch: the device is created through a socket in the
/// executor's own namespace (the host's), which keeps its UDP socket there, and born in `ns`.
struct CreateVxlan {
  static constexpr std::string_view kType = "create-vxlan";
  static constexpr bool kRtnetlink = false;
  std::string ns;                ///< The switch's namespace, where the device lives.
  std::string name;              ///< The device, at most 15 bytes.
  uint32_t vni = 0;              ///< 1..16777215.
  IpAddr local;                  ///< This host's underlay address.
  std::vector<IpAddr> remotes;   ///< The other hosts' underlay addresses.
  uint16_t port = 4789;          ///< UDP, on the underlay.
  int mtu = 0;                   ///< 0: kernel default.
  std::string mac;               ///< "": the kernel's.
  std::string master;            ///< The switch's bridge in `ns`.
  [[nodiscard]] std::string shell() const;
  [[nodiscard]] std::string undo() const;
  [[nodiscard]] std::string describe() const;
  [[nodiscard]] nlohmann::json fields() const;
};
/// Make sure the ipip module is loaded so tunl0 exists in `ns` (LVS-TUN real server); with
/// family AF_INET6 ip6_tunnel, so ip6tnl0 exists (IPv6 LVS-TUN real server).
struct EnableIpip {
  static constexpr std::string_view kType = "enable-ipip";
  static constexpr bool kRtnetlink = true;
  std::string ns;
  int family = AF_INET;  ///< AF_INET (ipip, tunl0) or AF_INET6 (ip6_tunnel, ip6tnl0).
  [[nodiscard]] std::string shell() const;
  [[nodiscard]] std::string undo() const;
  [[nodiscard]] std::string describe() const;
  [[nodiscard]] nlohmann::json fields() const;
};
struct CreateIpip {
  static constexpr std::string_view kType = "create-ipip";
  static constexpr bool kRtnetlink = true;
  std::string ns;
  Tunnel tunnel;
  [[nodiscard]] std::string shell() const;
  [[nodiscard]] std::string undo() const;
  [[nodiscard]] std::string describe() const;
  [[nodiscard]] nlohmann::json fields() const;
};
struct AddIpvsService {
  static constexpr std::string_view kType = "add-ipvs-service";
  static constexpr bool kRtnetlink = false;
  std::string ns;
  VirtualService service;  ///< real_servers is ignored here.
  [[nodiscard]] std::string shell() const;
  [[nodiscard]] std::string undo() const;
  [[nodiscard]] std::string describe() const;
  [[nodiscard]] nlohmann::json fields() const;
};
struct AddIpvsDest {
  static constexpr std::string_view kType = "add-ipvs-dest";
  static constexpr bool kRtnetlink = false;
  std::string ns;
  VirtualService service;  ///< Identifies the service; real_servers is ignored.
  RealServer dest;
  [[nodiscard]] std::string shell() const;
  [[nodiscard]] std::string undo() const;
  [[nodiscard]] std::string describe() const;
  [[nodiscard]] nlohmann::json fields() const;
};
/// Start the IPVS connection-sync daemon in one role (ipvsadm --start-daemon): a master
/// multicasts its connections on `interface`, a backup learns them there.
struct StartIpvsSync {
  static constexpr std::string_view kType = "start-ipvs-sync";
  static constexpr bool kRtnetlink = false;
  std::string ns;
  bool master = true;  ///< Else the backup daemon.
  std::string interface;
  uint32_t id = 0;
  [[nodiscard]] std::string shell() const;
  [[nodiscard]] std::string undo() const;
  [[nodiscard]] std::string describe() const;
  [[nodiscard]] nlohmann::json fields() const;
};
struct StartAgent {
  static constexpr std::string_view kType = "start-agent";
  static constexpr bool kRtnetlink = false;
  std::string ns;
  std::string lab;
  std::string node;
  Agent agent;
  [[nodiscard]] std::string shell() const;
  [[nodiscard]] std::string undo() const;
  [[nodiscard]] std::string describe() const;
  [[nodiscard]] nlohmann::json fields() const;
};
/// Load a node's packet rules (its `marks` and `nat`) as one nftables transaction.
struct ApplyNftRules {
  static constexpr std::string_view kType = "apply-nft";
  static constexpr bool kRtnetlink = false;
  std::string ns;
  std::string ruleset;  ///< nft_ruleset(): the text `nft -f` would read.
  [[nodiscard]] std::string shell() const;
  [[nodiscard]] std::string undo() const;
  [[nodiscard]] std::string describe() const;
  [[nodiscard]] nlohmann::json fields() const;
};

}  // namespace step

using Step = std::variant<step::CreateNetns, step::CreateBridge, step::CreateVeth, step::SetMaster,
                          step::SetImpairment, step::LinkUp, step::AddAddress, step::AddRoute, step::SetSysctl,
                          step::EnableIpip, step::CreateIpip, step::CreateVxlan, step::AddIpvsService,
                          step::AddIpvsDest, step::StartIpvsSync, step::StartAgent, step::ApplyNftRules>;

namespace detail {
template <class V>
inline constexpr bool kPlanSteps = false;
template <class... S>
inline constexpr bool kPlanSteps<std::variant<S...>> = (PlanStep<S> && ...);

template <class V>
inline constexpr bool kDistinctTypes = false;
template <class... S>
inline constexpr bool kDistinctTypes<std::variant<S...>> = [] {
  const std::string_view names[] = {S::kType...};
  for (std::size_t i = 0; i < sizeof...(S); ++i)
    for (std::size_t j = i + 1; j < sizeof...(S); ++j)
      if (names[i] == names[j]) return false;
  return true;
}();
}  // namespace detail
static_assert(detail::kPlanSteps<Step>, "every step type declares what PlanStep asks");
static_assert(detail::kDistinctTypes<Step>, "two step types share a kType");

struct PlannedStep {
  Step step;
  std::string node;  ///< The node or switch this step belongs to (explain groups by it).
  std::string why;   ///< One line of why, "" when the step is self-explanatory.
};

struct Plan {
  std::string lab;
  std::vector<PlannedStep> steps;
};

// What every step type has (PlanStep), for a step of any type.
[[nodiscard]] bool is_rtnetlink_step(const Step& s);
[[nodiscard]] const std::string& step_netns(const Step& s);
[[nodiscard]] std::string shell_command(const Step& s);
[[nodiscard]] std::string undo_command(const Step& s);
/// e.g. "create veth eth0 in dr-demo-rs1".
[[nodiscard]] std::string describe(const Step& s);
[[nodiscard]] std::string step_type(const Step& s);

/// The mark put on every namespace of a lab (as lo's alias), by `up` and by the --dry-run
/// script alike, so that `down` finds a lab's namespaces without its state and never
/// touches anybody else's.
[[nodiscard]] std::string netns_mark(const std::string& lab);
/// The lab a mark names, or nullopt when it is no labctl mark.
[[nodiscard]] std::optional<std::string> lab_of_mark(std::string_view mark);
/// Where the --dry-run script keeps its agents' pids and logs.
[[nodiscard]] std::string script_dir(const std::string& lab);

/// The program and arguments an agent runs (labagent for the built-in kinds).
[[nodiscard]] std::vector<std::string> agent_argv(const step::StartAgent& s);

}  // namespace labctl
