// `labctl list`: the built-in topologies and what each one shows.
#include <cstdio>

#include "labctl/model/builtins.h"
#include "labctl/cli/command.h"
#include "labctl/model/load.h"

namespace labctl::cli {
namespace {

void run_list(bool json) {
  auto out = nlohmann::json::array();
  for (const auto& b : builtin_topologies()) {
    LoadResult res = parse_topology(b.text, std::string(b.name) + ".toml");
    std::string desc = res.topology ? res.topology->description : "(does not load: run labctl validate)";
    if (json)
      out.push_back({{"name", b.name}, {"description", desc}, {"valid", res.ok()}});
    else
      std::printf("%-12s %s\n", std::string(b.name).c_str(), desc.c_str());
  }
  if (json) std::printf("%s\n", json_text(out).c_str());
}

void setup_list(CLI::App& app) {
  auto json = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand("list", "Show the built-in topologies");
  cmd->add_flag("--json", *json, "Print as JSON");
  cmd->callback([json] { run_list(*json); });
}

LABCTL_COMMAND(10, setup_list);

}  // namespace
}  // namespace labctl::cli
