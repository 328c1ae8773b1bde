// The labctl entry point: builds the CLI11 app from the registered commands and maps
// ExitError to the process exit status. Nothing else lives here.
#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "labctl/base/version.h"
#include "labctl/cli/command.h"
#include "labctl/cli/hosts_relay.h"
#include "labctl/cli/vm_lab.h"

namespace labctl::cli {
namespace {

struct Registered {
  int order;
  SetupFn setup;
};

std::vector<Registered>& registry() {
  static std::vector<Registered> r;
  return r;
}

}  // namespace

bool register_command(int order, SetupFn setup) {
  registry().push_back({order, setup});
  return true;
}

void die(const Error& e, int code) {
  std::fprintf(stderr, "labctl: error: %s\n", e.str().c_str());
  throw ExitError{code, {}};
}

}  // namespace labctl::cli

int main(int argc, char** argv) {
  // One malloc arena: with one per thread, glibc grows and trims the executor thread's heap
  // with an mprotect per step (10,000 of them for a 1000-node lab, ~10% of its up).
  ::mallopt(M_ARENA_MAX, 1);
  using namespace labctl::cli;
  CLI::App app{
      "labctl builds Linux network labs (namespaces, veth, bridges, routes, sysctls, IPVS,\n"
      "IPIP) from TOML topologies and checks that they work.",
      "labctl"};
  app.set_version_flag("--version", std::string("labctl ") + labctl::labctl_version());
  app.require_subcommand(1);
  auto& r = registry();
  std::stable_sort(r.begin(), r.end(),
                   [](const auto& a, const auto& b) { return a.order < b.order; });
  for (const auto& c : r) c.setup(app);
  // A lab that lives in a micro-VM: the labctl inside it answers (cli/vm_lab.h).
  if (auto code = relay_if_vm_hosted(app, argc, argv)) return *code;
  // A node of a lab across hosts that runs on another host: its host answers.
  if (auto code = relay_if_node_elsewhere(app, command_line_args())) return *code;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : kExitInvalid;
  } catch (const ExitError& e) {
    if (!e.message.empty()) std::fprintf(stderr, "labctl: %s\n", e.message.c_str());
    return e.code;
  }
  return 0;
}
