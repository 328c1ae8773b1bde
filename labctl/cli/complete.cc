// labctl completion bash          prints the bash completion script
// labctl __complete CWORD WORD...  (hidden) what the script asks: one candidate per line
//
// Candidates come from the CLI's own definition (subcommands, options), so they never drift
// from --help, and from this machine (built-in topologies, running labs, their nodes,
// checks and agents). A last line ":files" asks the shell to offer file names as well.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>

#include "labctl/cli/command.h"
#include "labctl/lab/ipvs_edit.h"
#include "labctl/model/impair.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/lab/state.h"
#include "labctl/model/builtins.h"
#include "labctl/model/load.h"

namespace labctl::cli {
namespace {

// What a positional argument is, for completing it.
enum class Arg {
  None, Files, Topology, Lab, Node, CheckName, Agent, Shell, Iface, IpvsVerb,
  Endpoint, LinkVerb, ImpairKey, LabNode, NodeVerb,
};

struct Completion {
  std::vector<std::string> words;
  bool files = false;    ///< The shell should offer file names too.
  std::string untabled;  ///< A subcommand positional_args() does not know (a bug of ours).
};

// Every subcommand's positional arguments; tests/unit/complete_test.cc keeps this table
// in step with the subcommands `labctl --help` lists.
const std::map<std::string, std::vector<Arg>>& positional_args() {
  // The last kind of a list repeats (validate takes several files, check several checks).
  static const std::map<std::string, std::vector<Arg>> args = {
      {"list", {}},
      {"up", {Arg::Topology, Arg::None}},
      {"validate", {Arg::Topology}},
      {"explain", {Arg::Topology, Arg::None}},
      {"graph", {Arg::Topology, Arg::None}},
      {"down", {Arg::Lab}},
      {"exec", {Arg::Lab, Arg::Node, Arg::Files}},
      {"check", {Arg::Lab, Arg::CheckName}},
      {"status", {Arg::Lab, Arg::None}},
      {"ls", {}},
      {"logs", {Arg::Lab, Arg::Node, Arg::Agent, Arg::None}},
      {"vm", {}},
      {"vm exec", {Arg::Files}},
      {"vm serve", {}},
      {"doctor", {}},
      {"completion", {Arg::Shell, Arg::None}},
      {"ipvs", {Arg::Lab, Arg::IpvsVerb, Arg::None}},
      {"capture", {Arg::Lab, Arg::Node, Arg::Iface, Arg::None}},
      {"trace", {Arg::Lab, Arg::None}},
      {"link", {Arg::Lab, Arg::Endpoint, Arg::LinkVerb, Arg::ImpairKey}},
      {"node", {Arg::Lab, Arg::LabNode, Arg::NodeVerb, Arg::None}},
      {"test", {Arg::Topology}},
      {"measure", {Arg::Lab, Arg::None}},
  };
  return args;
}

const CLI::App* find_sub(const CLI::App* app, const std::string& name) {
  auto subs = app->get_subcommands([&](const CLI::App* s) { return s->get_name() == name; });
  return subs.empty() ? nullptr : subs.front();
}

const CLI::Option* find_opt(const CLI::App* app, const std::string& word) {
  std::string name = word.substr(0, word.find('='));
  for (const auto* o : app->get_options()) {
    for (const auto& l : o->get_lnames())
      if (name == "--" + l) return o;
    for (const auto& s : o->get_snames())
      if (name == "-" + s) return o;
  }
  return nullptr;
}

// The kept topology of a running lab, when this user may read it (root).
std::optional<Topology> kept_topology(const std::string& lab) {
  if (!check_lab_name(lab)) return std::nullopt;
  const std::string kept = state_dir(lab) + "/topology.toml";
  if (::access(kept.c_str(), R_OK) != 0) return std::nullopt;
  LoadResult r = load_topology(kept);
  if (!r.topology) return std::nullopt;
  return std::move(*r.topology);
}

std::vector<std::string> candidates(Arg kind, const std::vector<std::string>& before,
                                    bool& files) {
  std::vector<std::string> out;
  const std::string lab = before.empty() ? "" : before.front();
  switch (kind) {
    case Arg::None: break;
    case Arg::Files: files = true; break;
    case Arg::Topology:
      for (const auto& b : builtin_topologies()) out.emplace_back(b.name);
      files = true;
      break;
    case Arg::Lab: out = running_labs(); break;
    case Arg::Node:
      // Nodes and switches, as exec takes them: the lab's own namespaces.
      for (const auto& ns : lab_namespaces(lab)) out.push_back(ns.substr(lab.size() + 1));
      break;
    case Arg::CheckName:
      if (auto t = kept_topology(lab))
        for (const auto& c : t->checks) out.push_back(c.name);
      break;
    case Arg::Agent:
      if (auto t = kept_topology(lab); t && before.size() >= 2)
        if (const Node* n = t->node(before[1]))
          for (const auto& a : n->agents) out.push_back(a.name);
      break;
    case Arg::Shell: out = {"bash"}; break;
    case Arg::Iface:
      // The node's interfaces as the topology names them (capture also takes lo, tunl0).
      if (auto t = kept_topology(lab); t && before.size() >= 2)
        if (const Node* n = t->node(before[1])) {
          for (const auto& i : n->interfaces) out.push_back(i.name);
          out.push_back("lo");
          if (n->accept_ipip) out.push_back("tunl0");
          if (n->accept_ip6ip6) out.push_back("ip6tnl0");
        }
      break;
    case Arg::IpvsVerb:
      // A director to show, or an edit (cli/ipvs.cc).
      if (auto t = kept_topology(lab))
        for (const auto& n : t->nodes)
          if (!n.services.empty()) out.push_back(n.name);
      for (auto& w : ipvs_edit_words()) out.push_back(std::move(w));
      break;
    case Arg::Endpoint:
      // NODE:IF of every node's interfaces (cli/link.cc).
      if (auto t = kept_topology(lab))
        for (const auto& n : t->nodes)
          for (const auto& i : n.interfaces) out.push_back(n.name + ":" + i.name);
      break;
    case Arg::LinkVerb: out = {"down", "up", "impair", "clear"}; break;
    case Arg::ImpairKey:
      if (before.size() >= 3 && before[2] == "impair")
        for (const auto& k : impair_key_names()) out.push_back(k + "=");
      break;
    case Arg::LabNode:
      if (auto t = kept_topology(lab))
        for (const auto& n : t->nodes) out.push_back(n.name);
      break;
    case Arg::NodeVerb: out = {"crash", "start", "stop-agent", "start-agent"}; break;
  }
  return out;
}

Completion complete(const CLI::App& app, const std::vector<std::string>& words, size_t cword) {
  Completion c;
  const std::string current = cword < words.size() ? words[cword] : "";
  const CLI::App* cmd = &app;
  std::string path;  // "vm exec"
  std::vector<std::string> positionals;
  bool dashdash = false;
  for (size_t i = 1; i < cword && i < words.size(); ++i) {
    const std::string& w = words[i];
    if (dashdash) {
      positionals.push_back(w);
    } else if (w == "--") {
      dashdash = true;
    } else if (w.size() > 1 && w[0] == '-') {
      const CLI::Option* o = find_opt(cmd, w);
      if (o && o->get_type_size_min() > 0 && w.find('=') == std::string::npos) ++i;  // its value
    } else if (positionals.empty() && !dashdash && find_sub(cmd, w)) {
      cmd = find_sub(cmd, w);
      path += (path.empty() ? "" : " ") + w;
    } else {
      positionals.push_back(w);
    }
  }
  auto add = [&](const std::string& s) {
    if (s.starts_with(current)) c.words.push_back(s);
  };
  if (!dashdash && current.starts_with("-")) {
    for (const auto* o : cmd->get_options()) {
      if (o->get_group().empty()) continue;  // hidden
      for (const auto& l : o->get_lnames()) add("--" + l);
      for (const auto& s : o->get_snames()) add("-" + s);
    }
  } else {
    if (positionals.empty() && !dashdash)
      for (const auto* s : cmd->get_subcommands([](const CLI::App* a) { return !a->get_group().empty(); }))
        add(s->get_name());
    auto it = positional_args().find(path);
    if (it == positional_args().end() && !path.empty()) c.untabled = path;
    if (it != positional_args().end() && !it->second.empty()) {
      const auto& kinds = it->second;
      // After "--" comes a command for the node: file names, nothing of ours.
      Arg kind = dashdash ? Arg::Files : kinds[std::min(positionals.size(), kinds.size() - 1)];
      for (const auto& s : candidates(kind, positionals, c.files)) add(s);
    }
  }
  std::sort(c.words.begin(), c.words.end());
  c.words.erase(std::unique(c.words.begin(), c.words.end()), c.words.end());
  return c;
}

std::string bash_completion_script() {
  return R"(# bash completion for labctl (generated by `labctl completion bash`).
# Candidates come from labctl itself: `labctl __complete CWORD WORD...`.
_labctl() {
  local cur=${COMP_WORDS[COMP_CWORD]} line files=0
  COMPREPLY=()
  while IFS= read -r line; do
    if [ "$line" = ":files" ]; then files=1; else COMPREPLY+=("$line"); fi
  done < <("${COMP_WORDS[0]}" __complete "$COMP_CWORD" "${COMP_WORDS[@]}" 2>/dev/null)
  if [ $files -eq 1 ]; then
    local f
    while IFS= read -r f; do COMPREPLY+=("$f"); done < <(compgen -f -- "$cur")
    compopt -o filenames 2>/dev/null  # outside a completion (tests) there is nothing to set
  fi
  return 0
}
complete -F _labctl labctl
)";
}

void setup(CLI::App& app) {
  auto* shown = app.add_subcommand("completion", "Print the shell completion script (bash)");
  shown->footer(
      "Completes subcommands, options, built-in topologies, running labs and their nodes,\n"
      "checks and agents. `make install` installs it; without installing:\n"
      "  source <(labctl completion bash)");
  static std::string shell = "bash";
  shown->add_option("shell", shell, "Shell (only bash)")->check(CLI::IsMember({"bash"}));
  shown->callback([] { std::printf("%s", bash_completion_script().c_str()); });

  // Hidden (empty group): the script's question, answered from the app itself.
  auto* cmd = app.add_subcommand("__complete", "")->group("");
  cmd->prefix_command();
  cmd->callback([&app, cmd] {
    std::vector<std::string> rest = cmd->remaining();
    if (rest.empty()) return;
    size_t cword = 0;
    try {
      cword = std::stoul(rest.front());
    } catch (const std::exception&) {
      return;
    }
    rest.erase(rest.begin());
    Completion c = complete(app, rest, cword);
    for (const auto& w : c.words) std::printf("%s\n", w.c_str());
    if (c.files) std::printf(":files\n");
    if (!c.untabled.empty())
      std::fprintf(stderr, "labctl: completion does not know the arguments of `%s`\n",
                   c.untabled.c_str());
  });
}

}  // namespace

LABCTL_COMMAND(90, setup);

}  // namespace labctl::cli
