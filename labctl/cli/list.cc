// `labctl list`: the built-in topologies and what each one shows.
#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "labctl/model/builtins.h"
#include "labctl/cli/command.h"
#include "labctl/model/load.h"

namespace labctl::cli {
namespace {

void run_list(bool json) {
  auto out = nlohmann::json::array();
  // Demos first, then exercises (labs broken on purpose) in a section of their own.
  std::vector<std::pair<std::string, std::string>> demos, exercises;
  for (const auto& b : builtin_topologies()) {
    LoadResult res = parse_topology(b.text, std::string(b.name) + ".toml");
    std::string desc = res.topology ? res.topology->description : "(does not load: run labctl validate)";
    const bool exercise = res.topology && res.topology->exercise;
    if (json)
      out.push_back({{"name", b.name}, {"description", desc}, {"valid", res.ok()}, {"exercise", exercise}});
    (exercise ? exercises : demos).emplace_back(std::string(b.name), desc);
  }
  if (json) {
    std::printf("%s\n", json_text(out).c_str());
    return;
  }
  for (const auto& [name, desc] : demos) std::printf("%-12s %s\n", name.c_str(), desc.c_str());
  if (exercises.empty()) return;
  std::printf("\nexercises (broken on purpose; `labctl explain NAME` states the task):\n");
  int w = 18;  // as wide as the longest name, so the descriptions line up
  for (const auto& e : exercises) w = std::max(w, static_cast<int>(e.first.size()));
  for (const auto& [name, desc] : exercises) std::printf("%-*s [exercise] %s\n", w, name.c_str(), desc.c_str());
}

void setup_list(CLI::App& app) {
  auto json = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand("list", "Show the built-in topologies: demos, then exercises");
  cmd->add_flag("--json", *json, "Print as JSON");
  cmd->callback([json] { run_list(*json); });
}

LABCTL_COMMAND(10, setup_list);

}  // namespace
}  // namespace labctl::cli
