// labctl logs LAB NODE [AGENT] [-n N] [-f]
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "labctl/base/display.h"
#include "labctl/base/file.h"
#include "labctl/cli/command.h"
#include "labctl/lab/agent_logs.h"
#include "labctl/lab/state.h"
#include "labctl/model/diag.h"
#include "labctl/model/load.h"
#include "labctl/model/rules.h"

namespace labctl::cli {
namespace {

using namespace std::chrono_literals;

std::string fmt_join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// The topology the lab was built from (its state keeps it): the one list of its nodes and
// agents, so a typo gets a did-you-mean and a node without agents says so.
Topology running_topology(const std::string& lab) {
  const std::string dir = state_dir(lab);
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    if (ec.value() == EACCES)
      die(Error{
          "cannot look into " + dir, EACCES, {}, "a lab's state belongs to root: run with sudo"});
    std::vector<std::string> labs = labs_with_state();
    die(Error{"lab " + lab + " is not up (no state in " + dir + ")",
              0,
              {},
              topo::did_you_mean(lab, labs, "`labctl ls` lists running labs")});
  }
  const std::string kept = dir + "/topology.toml";
  // Written by up from a topology the loader read, so never larger than it allows.
  auto text = read_regular_file(kept, topo::kMaxFileBytes);
  if (!text)
    die(Error{"cannot read " + kept,
              text.error().errnum,
              {},
              "a lab's state belongs to root: run with sudo"});
  LoadResult r = parse_topology(*text, kept);
  if (!r.ok())
    die(Error{
        "the topology kept in " + kept + " no longer loads", 0, {}, "labctl validate " + kept});
  return std::move(*r.topology);
}

void setup(CLI::App& app) {
  auto* cmd = app.add_subcommand("logs", "Print (or follow) the logs of a node's agents");
  cmd->footer(
      "Examples:\n"
      "  labctl logs dr-demo rs1 web          # the web agent's log (access lines, errors)\n"
      "  labctl logs dr-demo rs1              # every agent of rs1, each line prefixed 'AGENT | '\n"
      "  labctl logs -f -n 20 dr-demo rs1     # the last 20 lines, then follow until Ctrl-C\n"
      "Logs live in /run/labctl/labs/LAB/logs/NODE/AGENT.log (root's): without root this\n"
      "works only where those files are readable.");
  static std::string lab, node, agent;
  static long lines = -1;
  static bool follow = false;
  cmd->add_option("lab", lab, "Lab name")->required();
  cmd->add_option("node", node, "Node name")->required();
  cmd->add_option("agent", agent, "Agent name (default: every agent of the node)");
  cmd->add_option("-n,--lines", lines, "Only the last N lines of each log")
      ->check(CLI::Range(0L, 100000000L));
  cmd->add_flag("-f,--follow", follow,
                "Keep printing what is appended, until Ctrl-C or the lab goes down");
  cmd->callback([] {
    if (Status st = check_lab_name(lab); !st) die(st.error(), kExitInvalid);
    const Topology t = running_topology(lab);
    const Node* n = t.node(node);
    if (!n) {
      std::vector<std::string> names;
      for (const auto& x : t.nodes) names.push_back(x.name);
      die(Error{"lab " + lab + " has no node " + shown(node),
                0,
                {},
                topo::did_you_mean(node, names, "its nodes: " + fmt_join(names))},
          kExitInvalid);
    }
    std::vector<std::string> names;
    for (const auto& a : n->agents) names.push_back(a.name);
    if (names.empty())
      die(Error{"node " + node + " of lab " + lab + " has no agents",
                0,
                {},
                "agents are declared in the topology (agents.NAME = {...}); see docs/topology.md"},
          kExitInvalid);
    if (!agent.empty() && std::find(names.begin(), names.end(), agent) == names.end())
      die(Error{"node " + node + " of lab " + lab + " has no agent " + shown(agent),
                0,
                {},
                topo::did_you_mean(agent, names, "its agents: " + fmt_join(names))},
          kExitInvalid);
    std::vector<LogSource> logs;
    for (const auto& a : names) {
      if (!agent.empty() && a != agent) continue;
      auto srcs = open_agent_log(agent.empty() ? a : "", agent_log_path(lab, node, a), lines);
      if (!srcs) die(srcs.error());
      for (auto& src : *srcs) logs.push_back(std::move(src));
    }
    auto print = [](const std::string& line) { std::fwrite(line.data(), 1, line.size(), stdout); };
    for (auto& src : logs)
      if (Status st = pump_log(src, !follow, print); !st) die(st.error());
    std::fflush(stdout);
    if (!follow) return;
    const std::string dir = state_dir(lab);
    for (;;) {
      std::this_thread::sleep_for(200ms);
      for (auto& src : logs)
        if (Status st = pump_log(src, false, print); !st) die(st.error());
      std::fflush(stdout);
      // `down` removes the state: nothing more will be written.
      if (::access(dir.c_str(), F_OK) != 0) {
        for (auto& src : logs) (void)pump_log(src, true, print);
        std::fprintf(stderr, "labctl: lab %s went down\n", lab.c_str());
        return;
      }
    }
  });
}

LABCTL_COMMAND(55, setup);

}  // namespace
}  // namespace labctl::cli
