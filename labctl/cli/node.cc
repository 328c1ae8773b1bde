// labctl node LAB NODE crash|start                  crash a node of a running lab, start it again
// labctl node LAB NODE stop-agent|start-agent AGENT  stop one of its agents, start it again
#include <algorithm>
#include <cstdio>

#include "labctl/cli/command.h"
#include "labctl/cli/load.h"
#include "labctl/lab/agent_control.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/lab/live_edit.h"
#include "labctl/lab/state.h"
#include "labctl/plan/agent.h"

namespace labctl::cli {
namespace {

void setup(CLI::App& app) {
  auto* cmd = app.add_subcommand("node", "Crash a node of a running lab, or start it again");
  cmd->footer(
      "  labctl node LAB NODE crash   every process in NODE's namespace (its agents, their\n"
      "                               supervisors, `labctl exec` shells) gets SIGKILL at once:\n"
      "                               no graceful exit (a keepalived sends no goodbye advert);\n"
      "                               then its interfaces are set down (peers lose carrier)\n"
      "  labctl node LAB NODE start   its interfaces up, the addresses and routes the kernel\n"
      "                               dropped put back, its agents started as `up` starts\n"
      "                               them, each waited for until ready\n"
      "  labctl node LAB NODE stop-agent AGENT    that agent stopped as `down` stops it (a\n"
      "                               keepalived sends its goodbye advert); start-agent AGENT\n"
      "                               starts it again as `up` did and waits until it is ready\n"
      "The namespace, its IPVS table, nft rules and sysctls stay: a crash loses processes and\n"
      "links, not configuration. Edits are taken under the lab's lock, recorded in the lab's\n"
      "state and shown by `labctl status`; `labctl down` removes everything.\n"
      "Exit status: 0 done, 1 the kernel or an agent failed, 2 bad names or usage.\n"
      "\n"
      "Examples: labctl node ha-demo lb1 crash\n"
      "          labctl node ha-demo lb1 start\n"
      "          labctl node ha-demo lb1 stop-agent vrrp");
  static std::string lab, node, verb, agent;
  static bool json = false;
  cmd->add_option("lab", lab, "Lab name")->required();
  cmd->add_option("node", node, "The node")->required();
  cmd->add_option("action", verb, "crash, start, stop-agent or start-agent")
      ->required()
      ->check(CLI::IsMember({"crash", "start", "stop-agent", "start-agent"}));
  cmd->add_option("agent", agent, "The agent (stop-agent, start-agent)");
  cmd->add_flag("--json", json, "Machine-readable output");
  cmd->callback([] {
    Topology t = running_lab_or_die(lab);
    if (!t.node(node)) {
      std::string names;
      for (const auto& n : t.nodes) names += (names.empty() ? "" : ", ") + n.name;
      die(Error{"lab " + lab + " has no node " + node, 0, {}, "its nodes: " + names},
          kExitInvalid);
    }
    const bool agent_verb = verb == "stop-agent" || verb == "start-agent";
    if (agent_verb != !agent.empty())
      die(Error{agent_verb ? verb + " needs the agent's name" : verb + " takes no agent", 0, {},
                "labctl node LAB NODE stop-agent AGENT"},
          kExitInvalid);
    Result<std::string> done = std::string();
    if (agent_verb) {
      const Node* n = t.node(node);
      if (std::none_of(n->agents.begin(), n->agents.end(), [](const Agent& a) { return a.name == agent; })) {
        std::string names;
        for (const auto& a : n->agents) names += (names.empty() ? "" : ", ") + a.name;
        die(Error{"node " + node + " has no agent " + agent, 0, {}, names.empty() ? "it has none" : "its agents: " + names},
            kExitInvalid);
      }
      Status st = verb == "stop-agent" ? stop_agent(t, node, agent, kKeepalivedStopGrace + std::chrono::seconds(2))
                                       : start_agent(t, node, agent);
      if (!st) die(st.error());
      done = node + "'s agent " + agent + (verb == "stop-agent" ? " stopped" : " runs again");
    } else {
      done = verb == "crash" ? crash_node(t, node) : start_node(t, node);
    }
    if (!done) die(done.error());
    if (json)
      std::printf("%s\n", json_text({{"edit", "node-" + verb}, {"done", *done}}).c_str());
    else
      std::printf("%s\n", done->c_str());
  });
}

LABCTL_COMMAND(54, setup);

}  // namespace
}  // namespace labctl::cli
