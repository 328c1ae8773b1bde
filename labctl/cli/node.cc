// labctl node LAB NODE crash|start   crash a node of a running lab, start it again
#include <cstdio>

#include "labctl/cli/command.h"
#include "labctl/cli/load.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/lab/live_edit.h"
#include "labctl/lab/state.h"

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
      "The namespace, its IPVS table, nft rules and sysctls stay: a crash loses processes and\n"
      "links, not configuration. Edits are taken under the lab's lock, recorded in the lab's\n"
      "state and shown by `labctl status`; `labctl down` removes everything.\n"
      "Exit status: 0 done, 1 the kernel or an agent failed, 2 bad names or usage.\n"
      "\n"
      "Examples: labctl node ha-demo lb1 crash\n"
      "          labctl node ha-demo lb1 start");
  static std::string lab, node, verb;
  static bool json = false;
  cmd->add_option("lab", lab, "Lab name")->required();
  cmd->add_option("node", node, "The node")->required();
  cmd->add_option("action", verb, "crash or start")
      ->required()
      ->check(CLI::IsMember({"crash", "start"}));
  cmd->add_flag("--json", json, "Machine-readable output");
  cmd->callback([] {
    Topology t = running_lab_or_die(lab);
    if (!t.node(node)) {
      std::string names;
      for (const auto& n : t.nodes) names += (names.empty() ? "" : ", ") + n.name;
      die(Error{"lab " + lab + " has no node " + node, 0, {}, "its nodes: " + names},
          kExitInvalid);
    }
    auto done = verb == "crash" ? crash_node(t, node) : start_node(t, node);
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
