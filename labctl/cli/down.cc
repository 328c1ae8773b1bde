// labctl down LAB... | --all
#include <cstdio>

#include "labctl/cli/command.h"
#include "labctl/lab/lifecycle.h"

namespace labctl::cli {
namespace {

void setup(CLI::App& app) {
  auto* cmd = app.add_subcommand("down", "Stop a lab's agents and remove its namespaces and state");
  cmd->footer(
      "Idempotent: a lab that is not up is not an error. Finds the lab's namespaces by the\n"
      "mark labctl puts on them, so it works even when /run/labctl/LAB is gone. Only\n"
      "namespaces named LAB-* that carry LAB's mark are touched.");
  static std::vector<std::string> labs;
  static bool all = false;
  cmd->add_option("lab", labs, "Lab name(s)");
  cmd->add_flag("--all", all, "Take down every lab on this machine");
  cmd->callback([] {
    if (all == !labs.empty()) throw ExitError{kExitInvalid, "down: give lab names or --all"};
    if (Status st = check_privileges(); !st) die(st.error());
    std::vector<std::string> targets = all ? running_labs() : labs;
    int failed = 0;
    for (const auto& lab : targets) {
      if (Status st = lab_down(lab); !st) {
        std::fprintf(stderr, "labctl: error: %s\n", st.error().str().c_str());
        ++failed;
      } else {
        std::printf("lab %s is down\n", lab.c_str());
      }
    }
    if (failed) throw ExitError{kExitFailure, {}};
  });
}

LABCTL_COMMAND(30, setup);

}  // namespace
}  // namespace labctl::cli
