// labctl status [LAB] [--json]   and   labctl ls [--json]
#include <algorithm>
#include <cstdio>

#include "labctl/cli/command.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/kernel/netns.h"
#include "labctl/kernel/process.h"
#include "labctl/lab/state.h"
#include "labctl/lab/status.h"

namespace labctl::cli {
namespace {

void print_json(const nlohmann::json& j) { std::printf("%s\n", json_text(j).c_str()); }

void setup_status(CLI::App& app) {
  auto* cmd = app.add_subcommand("status", "Show running labs as the kernel sees them");
  cmd->footer(
      "For each node: interfaces with state and addresses, routes, IPVS services with their\n"
      "real servers and counters, its agents (running, exited (code N), killed (SIGx), with\n"
      "restarts; as their supervisors recorded them) and the processes running in it.\n"
      "Everything else is read back from the kernel, not from labctl's own records.");
  static std::string lab;
  static bool json = false;
  cmd->add_option("lab", lab, "Lab name (default: every running lab)");
  cmd->add_flag("--json", json, "Machine-readable output");
  cmd->callback([] {
    if (!lab.empty())
      if (Status st = check_lab_name(lab); !st) die(st.error(), kExitInvalid);
    if (Status st = check_privileges(); !st) die(st.error());
    std::vector<std::string> labs = lab.empty() ? running_labs() : std::vector<std::string>{lab};
    nlohmann::json all = nlohmann::json::array();
    for (const auto& l : labs) {
      auto s = lab_status(l);
      if (!s) die(s.error());
      if (json) all.push_back(status_json(*s));
      else std::printf("%s", render_status(*s).c_str());
    }
    if (json) print_json(lab.empty() ? all : all.at(0));
    else if (labs.empty()) std::printf("no labs are up\n");
  });
}

void setup_ls(CLI::App& app) {
  auto* cmd = app.add_subcommand("ls", "List running labs");
  static bool json = false;
  cmd->add_flag("--json", json, "Machine-readable output");
  cmd->callback([] {
    if (Status st = check_privileges(); !st) die(st.error());
    nlohmann::json all = nlohmann::json::array();
    if (!json) std::printf("%-20s %-11s %-7s %s\n", "LAB", "NAMESPACES", "PROCS", "STATE");
    for (const auto& l : running_labs()) {
      auto nss = lab_namespaces(l);
      size_t procs = 0;
      for (const auto& ns : nss) procs += pids_in_netns(netns_path(ns)).size();
      auto st = labs_with_state();
      bool state = std::find(st.begin(), st.end(), l) != st.end();
      // An agent that exited or was killed makes the lab not ok (status says more).
      std::vector<std::string> failed;
      if (auto s = lab_status(l)) failed = failed_agents(*s);
      if (json) {
        all.push_back({{"lab", l}, {"namespaces", nss}, {"processes", procs}, {"state", state},
                       {"ok", !nss.empty() && failed.empty()}, {"failed_agents", failed}});
        continue;
      }
      std::string what = nss.empty() ? "stale state only (labctl down cleans it up)"
                         : !failed.empty()
                             ? "agent " + failed.front() +
                                   (failed.size() > 1 ? " (+" + std::to_string(failed.size() - 1) + " more)" : "") +
                                   "; labctl status " + l
                         : state ? "ok"
                                 : "no state (labctl down still finds it)";
      std::printf("%-20s %-11zu %-7zu %s\n", l.c_str(), nss.size(), procs, what.c_str());
    }
    if (json) print_json(all);
  });
}

LABCTL_COMMAND(50, setup_status);
LABCTL_COMMAND(51, setup_ls);

}  // namespace
}  // namespace labctl::cli
