// labctl check LAB [CHECK...] [--json]
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "labctl/checks/checks.h"
#include "labctl/cli/check_run.h"
#include "labctl/cli/command.h"
#include "labctl/cli/load.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/lab/state.h"

namespace labctl::cli {

int run_and_print_checks(const Topology& t, const std::vector<std::string>& only, bool json) {
  if (Status st = check_names_known(t, only); !st) die(st.error(), kExitInvalid);
  auto rep = run_checks(t, only);
  if (!rep) die(rep.error());
  if (json) std::printf("%s\n", json_text(checks_json(*rep)).c_str());
  else std::printf("%s", render_checks(*rep).c_str());
  return rep->passed() ? 0 : kExitFailure;
}

namespace {

void setup(CLI::App& app) {
  auto* cmd = app.add_subcommand("check", "Run a running lab's checks");
  cmd->footer(
      "Checks are the assertions in the topology's [checks] tables: reach / no-reach, http,\n"
      "balance (every real server answers, spread per scheduler and weights), bypass\n"
      "(DR/TUN replies never pass the director: its IPVS OutPkts stays 0) and arp-owner\n"
      "(the VIP's ARP entry is the director's MAC). Exit status 0 when all pass, 1 if any\n"
      "fails or none ran, 2 for a check name the lab does not have.\n"
      "Example: labctl check dr-demo");
  static std::string lab;
  static std::vector<std::string> only;
  static bool json = false;
  cmd->add_option("lab", lab, "Running lab (or a built-in name / file that is up)")->required();
  cmd->add_option("checks", only, "Run only these checks (by name)");
  cmd->add_flag("--json", json, "Machine-readable output");
  cmd->callback([] {
    if (Status st = check_privileges(); !st) die(st.error());
    Topology t = running_or_load_or_die(lab);
    if (Status st = check_names_known(t, only); !st) die(st.error(), kExitInvalid);
    if (lab_namespaces(t.name).empty())
      die(Error{"lab " + t.name + " is not up", 0, {}, "`labctl up " + lab + "` first"});
    int rc = run_and_print_checks(t, only, json);
    if (rc) throw ExitError{rc, {}};
  });
}

LABCTL_COMMAND(45, setup);

}  // namespace
}  // namespace labctl::cli
