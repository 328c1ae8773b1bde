// The steps that set up what runs on a node: sysctls, agents, packet rules. Each as the
// command an administrator would type, its inverse, a description and its fields.
#include <nlohmann/json.hpp>

#include "labctl/base/shell_quote.h"
#include "labctl/plan/agent.h"
#include "labctl/plan/nft.h"
#include "labctl/plan/plan.h"
#include "labctl/plan/step_shell.h"

namespace labctl {
namespace {

using nlohmann::json;
using step_shell::in_netns;

// A folder per node, as in labctl's own state (lab/state.h): "NODE-AGENT" would give
// node a's agent b-c and node a-b's agent c one log and one pid file.
std::string node_dir(const step::StartAgent& a) { return script_dir(a.lab) + "/" + a.node; }
std::string agent_base(const step::StartAgent& a) { return node_dir(a) + "/" + a.agent.name; }

std::string script_log_path(const step::StartAgent& s) { return agent_base(s) + ".log"; }
std::string script_pid_path(const step::StartAgent& s) { return agent_base(s) + ".pid"; }

}  // namespace

std::vector<std::string> agent_argv(const step::StartAgent& s) {
  // The script runs labagent from PATH, unsupervised.
  Agent a = s.agent;
  if (agent_needs_dir(a)) a.params["dir"] = agent_base(s) + "." + agent_dir_name(a);
  return labctl::agent_argv(a, s.node, "labagent");
}

namespace step {

// SetSysctl.
std::string SetSysctl::shell() const {
  return shell_join(in_netns(ns, {"sysctl", "-qw", key + "=" + value}));
}
// The old value is not known to a plan; the namespace takes the setting with it.
std::string SetSysctl::undo() const { return std::string(); }
std::string SetSysctl::describe() const { return "set " + key + "=" + value + " in " + ns; }
json SetSysctl::fields() const { return {{"key", key}, {"value", value}}; }

// StartAgent. `ip netns exec` execs the program, so $! is the agent's own pid.
std::string StartAgent::shell() const {
  return "(umask 077 && mkdir -p " + shell_quote(node_dir(*this)) + ") && { " +
         shell_join(in_netns(ns, agent_argv(*this))) + " </dev/null >" +
         shell_quote(script_log_path(*this)) + " 2>&1 & echo $! >" +
         shell_quote(script_pid_path(*this)) + "; }";
}
std::string StartAgent::undo() const {
  std::string pid = shell_quote(script_pid_path(*this));
  return "kill \"$(cat " + pid + ")\" && rm -f " + pid;
}
std::string StartAgent::describe() const {
  return "start agent " + agent.name + " (" + agent.kind + ") in " + ns;
}
json StartAgent::fields() const {
  return {{"node", node},
          {"name", agent.name},
          {"kind", agent.kind},
          {"port", agent.port},
          {"argv", agent_argv(*this)}};
}

// ApplyNftRules: the ruleset as nft reads it, in one transaction: what `up` hands libnftables.
std::string ApplyNftRules::shell() const {
  return shell_join(in_netns(ns, {"nft", "-f", "-"})) + " <<'EOF'\n" + ruleset + "EOF";
}
std::string ApplyNftRules::undo() const {
  return shell_join(in_netns(ns, {"nft", "delete", "table", "inet", kNftTable}));
}
std::string ApplyNftRules::describe() const {
  return std::string("load packet rules (nft table inet ") + kNftTable + ") in " + ns;
}
json ApplyNftRules::fields() const { return {{"ruleset", ruleset}}; }

}  // namespace step
}  // namespace labctl
