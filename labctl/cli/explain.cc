// labctl explain LAB|FILE [--json]: what `up` would do, node by node, and why.
#include <cstdio>
#include <iostream>

#include "labctl/base/file.h"
#include "labctl/cli/command.h"
#include "labctl/cli/load.h"
#include "labctl/model/builtins.h"
#include "labctl/plan/exercise.h"
#include "labctl/plan/explain.h"
#include "labctl/plan/render.h"
#include "labctl/plan/planner.h"
#include "labctl/plan/roles.h"

namespace labctl::cli {
namespace {

nlohmann::json members_json(const Topology& t) {
  Roles r(t);
  auto out = nlohmann::json::array();
  for (const auto& n : t.nodes)
    out.push_back({{"name", n.name}, {"kind", "node"}, {"role", r.role_name(n)},
                   {"ns", netns_name(t.name, n.name)}});
  for (const auto& s : t.switches)
    out.push_back({{"name", s.name}, {"kind", "switch"}, {"role", "switch"},
                   {"ns", netns_name(t.name, s.name)}});
  return out;
}

void setup(CLI::App& app) {
  auto* cmd = app.add_subcommand("explain", "Show what `up` would do, node by node, and why");
  cmd->footer(
      "Examples:\n"
      "  labctl explain dr-demo          # every step with the LVS idea behind it\n"
      "  labctl explain --json nat-demo  # the same as data\n"
      "  labctl explain dr-demo-noarp    # an exercise: the task, not the plan (it would tell)\n"
      "  labctl explain --toml dr-demo-noarp > mylab.toml   # its topology, to repair\n"
      "Needs no root and changes nothing.");
  static std::string what;
  static bool json = false, toml = false;
  cmd->add_option("lab", what, "Built-in lab name (see `labctl list`) or path to a .toml file")
      ->required();
  cmd->add_flag("--json", json, "Print the plan as JSON: every step's type, fields, command, why");
  cmd->add_flag("--toml", toml, "Print the topology's TOML as written (a built-in's source, or the file)");
  cmd->callback([] {
    std::string text;
    Topology t = load_or_die(what, &text);
    if (toml) {
      // The text that was loaded, not a second read: the file may have changed since, and a
      // file named like a built-in lab is that file, not the built-in.
      std::fwrite(text.data(), 1, text.size(), stdout);
      return;
    }
    if (t.exercise) {
      // The plan lists what the lab has, and so what it lacks: not for an exercise.
      if (json) std::printf("%s\n", json_text(exercise_json(t)).c_str());
      else std::fputs(render_exercise(t).c_str(), stdout);
      return;
    }
    Plan plan = make_plan(t);
    if (json) {
      auto j = plan_json(plan);
      j["members"] = members_json(t);
      std::printf("%s\n", json_text(j).c_str());
      return;
    }
    std::fputs(render_explain(t, plan).c_str(), stdout);
  });
}

LABCTL_COMMAND(40, setup);

}  // namespace
}  // namespace labctl::cli
