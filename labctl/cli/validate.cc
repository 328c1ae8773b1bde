// `labctl validate FILE|NAME...`: load each topology and print every diagnostic.
#include <cstdio>

#include "labctl/cli/command.h"
#include "labctl/model/load.h"

namespace labctl::cli {
namespace {

struct ValidateArgs {
  std::vector<std::string> topologies;
  bool json = false;
};

void run_validate(const ValidateArgs& a) {
  bool any_error = false;
  auto out = nlohmann::json::array();
  for (const auto& name : a.topologies) {
    LoadResult res = load_topology(name);
    any_error |= !res.ok();
    if (a.json) {
      out.push_back({{"topology", name}, {"valid", res.ok()},
                     {"diagnostics", diagnostics_json(res.diagnostics)}});
      continue;
    }
    for (const auto& d : res.diagnostics) std::fprintf(stderr, "%s\n", format_diagnostic(d).c_str());
    if (res.ok()) std::printf("%s: valid\n", name.c_str());
  }
  if (a.json) std::printf("%s\n", json_text(out).c_str());
  if (any_error) throw ExitError{kExitInvalid, {}};
}

void setup_validate(CLI::App& app) {
  auto args = std::make_shared<ValidateArgs>();
  auto* cmd = app.add_subcommand("validate", "Check topologies and report every problem with file:line:col");
  cmd->add_option("topology", args->topologies, "Topology files or built-in names")->required();
  cmd->add_flag("--json", args->json, "Print the diagnostics as JSON on stdout");
  cmd->callback([args] { run_validate(*args); });
}

LABCTL_COMMAND(20, setup_validate);

}  // namespace
}  // namespace labctl::cli
