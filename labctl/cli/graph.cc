// labctl graph LAB|FILE [--format dot|mermaid]: the lab as a picture's source.
#include <cstdio>

#include "labctl/cli/command.h"
#include "labctl/cli/load.h"
#include "labctl/plan/graph.h"

namespace labctl::cli {
namespace {

void setup(CLI::App& app) {
  auto* cmd = app.add_subcommand("graph", "Print the lab as a Graphviz or Mermaid diagram");
  cmd->footer(
      "Examples:\n"
      "  labctl graph dr-demo | dot -Tsvg > dr-demo.svg\n"
      "  labctl graph --format mermaid tun-demo   # paste into Markdown\n"
      "Needs no root and changes nothing.");
  static std::string what;
  static std::string format = "dot";
  cmd->add_option("lab", what, "Built-in lab name (see `labctl list`) or path to a .toml file")
      ->required();
  cmd->add_option("-f,--format", format, "dot (Graphviz) or mermaid")
      ->check(CLI::IsMember({"dot", "mermaid"}))
      ->capture_default_str();
  cmd->callback([] {
    Topology t = load_or_die(what);
    std::fputs((format == "mermaid" ? render_mermaid(t) : render_dot(t)).c_str(), stdout);
  });
}

LABCTL_COMMAND(41, setup);

}  // namespace
}  // namespace labctl::cli
