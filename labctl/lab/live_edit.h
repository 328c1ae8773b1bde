// Live failures and edits of a running lab (`labctl link`, `labctl node`; issue 23): cut and
// restore a link, change a link's impairment, crash and start a node. As IPVS edits
// (lab/ipvs_edit.h): resolved against the topology's names (pure, so unit-tested), carried
// out in the lab's namespaces under the lab's lock, recorded in the lab's state
// (live-edits.json), and shown by `status`.
//
// A cut link is the far end of NODE:IF set down: a switch link's bridge-side port in the
// switch's namespace, a node-to-node link's peer interface. A veth end set down takes the
// carrier of both ends (veth_close), so NODE:IF stays administratively up with NO-CARRIER,
// keeping its addresses and routes, as a node whose cable was pulled does. (The far node of
// a node-to-node link sees its own interface set down: the kernel drops its routes over it,
// and `link ... up` puts that node's addresses and routes back from the lab's plan.)
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "labctl/base/error.h"
#include "labctl/model/impair.h"
#include "labctl/model/topology.h"

namespace labctl {

enum class LiveEditKind {
  LinkDown,   ///< labctl link LAB NODE:IF down
  LinkUp,     ///< labctl link LAB NODE:IF up
  Impair,     ///< labctl link LAB NODE:IF impair KEY=VALUE...
  Clear,      ///< labctl link LAB NODE:IF clear
  NodeCrash,  ///< labctl node LAB NODE crash
  NodeStart,  ///< labctl node LAB NODE start
};

/// An edit as the user asked for it, in the topology's names.
struct LiveEdit {
  LiveEditKind kind = LiveEditKind::LinkDown;
  std::string node;
  std::string interface;   ///< Link edits: the node's interface.
  Impairment impairment;   ///< Impair: the whole new impairment of the interface's egress.
};

/// "NODE:IF" split at its last ':'; both halves non-empty, else an error naming the form.
[[nodiscard]] Result<std::pair<std::string, std::string>> parse_endpoint(const std::string& text);
/// `KEY=VALUE` words in tc's spelling (model/impair.h: set_impair_key) as one impairment;
/// errors name the key and the accepted forms. Rules between keys (impairment_problems)
/// are checked too.
[[nodiscard]] Result<Impairment> parse_impair_args(const std::vector<std::string>& words);

/// A link of the lab, seen from one node's interface.
struct LinkEnds {
  std::string node, interface;  ///< The end named (NODE:IF).
  std::string ns;               ///< NODE's namespace.
  std::string far_ns, far_dev;  ///< The end set down to cut it (switch port or peer).
  std::string far;              ///< "switch s1 port p1" or "node r1 eth0", for messages.
  bool far_is_node = false;     ///< A node-to-node link.
  std::string far_node;         ///< The far node (node-to-node links only).
};

/// Resolves NODE:IF against `t`; unknown names are the user's errors and list what exists.
[[nodiscard]] Result<LinkEnds> resolve_link(const Topology& t, const std::string& node,
                                            const std::string& interface);
/// Every link of the lab once, each seen from a node (switch links from their node, a
/// node-to-node link from the node whose name sorts first), in topology order.
[[nodiscard]] std::vector<LinkEnds> lab_links(const Topology& t);

/// What the lab's edits, folded in order, leave changed.
struct LiveState {
  std::set<std::pair<std::string, std::string>> links_down;  ///< (node, interface)
  std::map<std::pair<std::string, std::string>, Impairment> impaired;  ///< Edited live.
  std::set<std::pair<std::string, std::string>> cleared;     ///< Impairment removed live.
  std::set<std::string> crashed;                               ///< Nodes.
  [[nodiscard]] bool empty() const;
};
[[nodiscard]] LiveState fold_live_edits(const std::vector<LiveEdit>& edits);

[[nodiscard]] const char* to_string(LiveEditKind k);
[[nodiscard]] nlohmann::json live_edit_json(const LiveEdit& e);
[[nodiscard]] Result<LiveEdit> live_edit_from_json(const nlohmann::json& j);
[[nodiscard]] nlohmann::json live_state_json(const LiveState& s);
/// status's lines for what the edits left changed ("" when nothing is): links cut, nodes
/// crashed, impairments edited live.
[[nodiscard]] std::string render_live_state(const LiveState& s);

/// Where a lab's edits are recorded: <state>/live-edits.json.
[[nodiscard]] std::string live_edits_path(const std::string& lab);
/// The lab's recorded edits, oldest first (none when there is no record).
[[nodiscard]] Result<std::vector<LiveEdit>> recorded_live_edits(const std::string& lab);

// The edits themselves: each under the lab's lock, read back from the kernel, then
// recorded. Each returns what was done, as one line.

/// Sets the far end of the link down (cut) or up (restore, and the far node's addresses
/// and routes put back when it is a node), and reads both ends' carrier back.
[[nodiscard]] Result<std::string> set_link(const Topology& t, const LinkEnds& l, bool up);
/// Replaces the root qdisc of NODE:IF's egress with `imp`, or removes it (`imp` empty), and
/// reads it back.
[[nodiscard]] Result<std::string> impair_link(const Topology& t, const LinkEnds& l,
                                              const Impairment& imp);

/// Crashes `node`: every process in its namespace (its agents, their supervisors, anything
/// `labctl exec` started there) gets SIGKILL at once, as a machine that loses power, and
/// its interfaces are set down (their peers lose carrier).
[[nodiscard]] Result<std::string> crash_node(const Topology& t, const std::string& node);
/// Starts a crashed node again: its interfaces up, the addresses and routes the kernel
/// dropped put back from the lab's plan, its agents started as `up` starts them, each
/// waited for until ready.
[[nodiscard]] Result<std::string> start_node(const Topology& t, const std::string& node);

/// A link as `labctl link LAB` lists it, read from the kernel.
struct LinkRow {
  LinkEnds ends;
  std::string state;      ///< "up", "down" (a cut link) or "no-carrier".
  std::string qdisc;      ///< The root qdisc's kind ("" when none of its own).
  std::string impairment; ///< impairment_summary of the root qdisc, "" when none.
  std::string error;      ///< Why it could not be read, if so.
};
[[nodiscard]] std::vector<LinkRow> read_links(const Topology& t);
[[nodiscard]] std::string render_links(const std::vector<LinkRow>& rows);
[[nodiscard]] nlohmann::json links_json(const std::vector<LinkRow>& rows);

}  // namespace labctl
