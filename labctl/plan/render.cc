#include "labctl/plan/render.h"

#include "labctl/base/shell_quote.h"

#include <algorithm>
#include <sstream>

#include "labctl/plan/agent.h"

namespace labctl {
namespace {

constexpr std::size_t kCommentWidth = 98;

void comment(std::ostringstream& out, const std::string& text) {
  for (const auto& line : wrap_words(text, kCommentWidth - 2)) out << "# " << line << "\n";
}

bool has_step(const Plan& p, auto pred) {
  return std::any_of(p.steps.begin(), p.steps.end(),
                     [&](const PlannedStep& s) { return pred(s.step); });
}

bool runs_labagent(const Step& s) {
  const auto* a = std::get_if<step::StartAgent>(&s);
  return a && agent_runs_labagent(a->agent);
}

bool uses_ipvs(const Step& s) {
  return std::holds_alternative<step::AddIpvsService>(s) ||
         std::holds_alternative<step::AddIpvsDest>(s) || std::holds_alternative<step::StartIpvsSync>(s);
}

/// "need PROGRAM" guard: fail before touching the system when a tool is missing.
void require(std::ostringstream& out, const std::string& program, const std::string& why) {
  out << "command -v " << program << " >/dev/null || { echo \"" << program
      << " is not on PATH (" << why << ")\" >&2; exit 1; }\n";
}

}  // namespace

std::vector<std::string> wrap_words(const std::string& text, std::size_t width) {
  std::vector<std::string> lines;
  std::istringstream words(text);
  std::string word, line;
  while (words >> word) {
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      lines.push_back(line);
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

std::string render_script(const Plan& p) {
  std::ostringstream out;
  out << "#!/usr/bin/env bash\n"
      << "# Builds the lab \"" << p.lab << "\" with plain ip, sysctl and ipvsadm commands: what\n"
      << "# `labctl up " << p.lab << "` does over netlink (this is `labctl up --dry-run`).\n"
      << "# Run it as root on a kernel with IPVS and IPIP. It stops at the first failing\n"
      << "# command. Its namespaces carry labctl's mark, so `labctl down " << p.lab << "` removes\n"
      << "# them; `labctl down --dry-run " << p.lab << "` prints the same teardown as a script.\n"
      << "set -euo pipefail\n"
      << "trap 'echo \"failed at line $LINENO: $BASH_COMMAND\" >&2' ERR\n";
  if (has_step(p, runs_labagent)) require(out, "labagent", "it serves the lab's agents");
  if (has_step(p, uses_ipvs)) require(out, "ipvsadm", "it configures IPVS");
  if (has_step(p, [](const Step& s) { return std::holds_alternative<step::ApplyNftRules>(s); }))
    require(out, "nft", "it loads packet rules (marks, NAT) with nftables");
  if (has_step(p, [](const Step& s) { return std::holds_alternative<step::CreateVxlan>(s); }))
    require(out, "bridge", "it gives VXLAN devices their remote hosts (iproute2)");
  std::size_t prev_type = std::variant_npos;
  for (const auto& s : p.steps) {
    // A blank line between kinds of step groups the script the way the planner phases it.
    if (s.step.index() != prev_type) out << "\n";
    prev_type = s.step.index();
    if (!s.why.empty()) comment(out, s.why);
    out << shell_command(s.step) << "\n";
  }
  return out.str();
}

std::string render_down_script(const Plan& p) {
  std::ostringstream out;
  out << "#!/usr/bin/env bash\n"
      << "# Tears down the lab \"" << p.lab << "\": stops its agents, then deletes its\n"
      << "# namespaces, which takes every interface, address, route, sysctl and IPVS service\n"
      << "# inside them along. Keeps going when a command fails and exits 1 if any did.\n"
      << "set -uo pipefail\n"
      << "status=0\n";
  // Only processes outlive their namespace's name; everything else goes with `netns del`.
  for (auto it = p.steps.rbegin(); it != p.steps.rend(); ++it)
    if (std::holds_alternative<step::StartAgent>(it->step))
      out << undo_command(it->step) << " || status=1\n";
  for (auto it = p.steps.rbegin(); it != p.steps.rend(); ++it)
    if (std::holds_alternative<step::CreateNetns>(it->step))
      out << undo_command(it->step) << " || status=1\n";
  if (has_step(p, runs_labagent)) out << "rm -rf " << shell_quote(script_dir(p.lab)) << "\n";
  out << "exit $status\n";
  return out.str();
}

namespace {
nlohmann::json step_json(const Plan& p, std::size_t i) {
  const auto& s = p.steps[i];
  return {{"index", i + 1},
          {"type", step_type(s.step)},
          {"ns", step_netns(s.step)},
          {"node", s.node},
          {"fields", std::visit([](const auto& x) { return x.fields(); }, s.step)},
          {"description", describe(s.step)},
          {"shell", shell_command(s.step)},
          {"undo", undo_command(s.step)},
          {"why", s.why}};
}
}  // namespace

nlohmann::json plan_json(const Plan& p) {
  nlohmann::json steps = nlohmann::json::array();
  for (std::size_t i = 0; i < p.steps.size(); ++i) steps.push_back(step_json(p, i));
  return {{"lab", p.lab}, {"steps", steps}};
}

void write_plan_json(std::ostream& out, const Plan& p) {
  out << "{\"lab\": " << nlohmann::json(p.lab).dump() << ", \"steps\": [";
  for (std::size_t i = 0; i < p.steps.size(); ++i)
    out << (i ? ",\n" : "\n") << step_json(p, i).dump();
  out << "\n]}\n";
}

}  // namespace labctl
