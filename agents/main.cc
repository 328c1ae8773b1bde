// labagent: the built-in workloads labctl starts inside lab nodes, one subcommand each
// (`labagent --help` lists them; each is defined in its own agents/<name>.cc), and
// `supervise`, which runs one of them (or any command) as its child: readiness, exit
// status, restarts. labctl runs every agent under `supervise`, which decides readiness by
// what listens in the namespace. Servers also write "ready\n" to --ready-fd once listening,
// for direct use. Everything is bounded and listens only inside the lab namespace labctl
// put it in.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "agents/subcommand.h"
#include "labctl/base/version.h"

namespace labagent {
namespace {

std::vector<Subcommand>& registry() {
  static std::vector<Subcommand> all;
  return all;
}

}  // namespace

Registered::Registered(Subcommand s) { registry().push_back(std::move(s)); }

std::vector<Subcommand> subcommands() {
  std::vector<Subcommand> all = registry();
  std::sort(all.begin(), all.end(), [](const Subcommand& a, const Subcommand& b) { return a.name < b.name; });
  return all;
}

}  // namespace labagent

int main(int argc, char** argv) {
  CLI::App app{"labagent: workloads for labctl labs (run inside a lab node by labctl)", "labagent"};
  app.set_version_flag("--version", std::string("labagent ") + labctl::labctl_version());
  app.require_subcommand(1);
  std::vector<std::pair<CLI::App*, int (*)()>> added;
  for (const auto& s : labagent::subcommands()) added.emplace_back(s.add(app), s.run);
  CLI11_PARSE(app, argc, argv);
  for (const auto& [sub, run] : added)
    if (*sub) return run();
  return 2;
}
