// labctl down LAB... | --all | --dry-run LAB
#include <cstdio>

#include "labctl/base/display.h"
#include "labctl/cli/command.h"
#include "labctl/cli/load.h"
#include "labctl/cli/vm_lab.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/lab/multihost.h"
#include "labctl/lab/state.h"
#include "labctl/plan/planner.h"
#include "labctl/plan/render.h"

namespace labctl::cli {
namespace {

void print_report(const std::string& lab, const DownReport& r) {
  if (!r.found_anything()) {
    std::printf("no lab %s is up: nothing to take down\n", lab.c_str());
  } else {
    std::printf("lab %s is down (%zu namespace%s removed)\n", lab.c_str(), r.namespaces,
                r.namespaces == 1 ? "" : "s");
    if (r.placeholders > 0)
      std::printf("  also removed %zu unfinished namespace file%s an interrupted up left\n",
                  r.placeholders, r.placeholders == 1 ? "" : "s");
  }
  if (!r.unmarked.empty()) {
    std::fprintf(stderr, "labctl: left alone: %zu namespace%s named %s-* but not made by labctl:\n",
                 r.unmarked.size(), r.unmarked.size() == 1 ? "" : "s", lab.c_str());
    for (const auto& ns : r.unmarked) std::fprintf(stderr, "  %s\n", shown(ns).c_str());
    std::fprintf(stderr, "  if they are yours to remove: ip netns del NAME\n");
  }
}

void setup(CLI::App& app) {
  auto* cmd = app.add_subcommand("down", "Stop a lab's agents and remove its namespaces and state");
  cmd->footer(
      "Idempotent: a lab that is not up is not an error. Finds the lab's namespaces by the\n"
      "mark labctl (and the --dry-run script) puts on them, so it works even when its state\n"
      "(/run/labctl/labs/LAB) is gone, and removes the unfinished namespace files a killed\n"
      "`up` can leave. Only namespaces named LAB-* that carry LAB's mark are touched; others\n"
      "of that name are listed and left alone.\n"
      "A lab in a micro-VM (docs/vm.md): the guest takes it down, then its qemu (the process\n"
      "its state records, nothing else) is stopped and its host state removed; a qemu that\n"
      "already died is cleaned up after.\n"
      "A lab across hosts (docs/multihost.md): every host's part is taken down, over ssh,\n"
      "from whichever of its hosts this runs on (each part keeps the list of hosts).\n"
      "  labctl down --dry-run dr-demo > down.sh   # the teardown as ip/kill commands");
  static std::vector<std::string> labs;
  static bool all = false, dry_run = false, here = false;
  cmd->add_option("lab", labs, "Lab name(s); with --dry-run a built-in name or file too");
  cmd->add_flag("--all", all, "Take down every lab on this machine");
  cmd->add_flag("--here", here, "A lab across hosts: take down only this host's part of it");
  cmd->add_flag("-n,--dry-run", dry_run,
                "Print the teardown script of `up --dry-run` instead of doing anything");
  cmd->callback([] {
    if (all == !labs.empty()) throw ExitError{kExitInvalid, "down: give lab names or --all"};
    if (dry_run) {
      if (all || labs.size() != 1)
        throw ExitError{kExitInvalid, "down --dry-run: give exactly one lab"};
      std::printf("%s", render_down_script(make_plan(running_or_load_or_die(labs[0]))).c_str());
      return;
    }
    for (const auto& lab : labs)
      if (Status st = check_lab_name(lab); !st) die(st.error(), kExitInvalid);
    if (Status st = check_privileges(); !st) die(st.error());
    std::vector<std::string> targets = all ? running_labs() : labs;
    int failed = 0;
    for (const auto& lab : targets) {
      // A lab across hosts: every host's part (this one's too).
      if (auto rec = here ? std::nullopt : find_hosts_record(lab)) {
        for (const auto& d : multihost_down(*rec)) {
          std::fprintf(d.ok ? stdout : stderr, "%s%s: %s\n", d.ok ? "" : "labctl: error: host ", d.host.c_str(),
                       d.said.c_str());
          failed += !d.ok;
        }
        continue;
      }
      // A VM-hosted lab (its state holds vm/).
      if (!inside_vm()) {
        bool vm_failed = false;
        if (down_vm(lab, vm_failed)) {
          if (vm_failed) ++failed;
          // Namespaces of the lab on this kernel go too, whatever the micro-VM was.
          if (lab_namespaces(lab).empty()) continue;
        }
      }
      auto report = lab_down(lab);
      if (!report) {
        std::fprintf(stderr, "labctl: error: %s\n", report.error().str().c_str());
        ++failed;
      } else {
        print_report(lab, *report);
      }
    }
    if (failed) throw ExitError{kExitFailure, {}};
  });
}

LABCTL_COMMAND(30, setup);

}  // namespace
}  // namespace labctl::cli
