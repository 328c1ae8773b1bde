#include "labctl/cli/hosts_relay.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>

#include "labctl/base/file.h"
#include "labctl/cli/command.h"
#include "labctl/lab/remote.h"
#include "labctl/lab/state.h"
#include "labctl/model/hosts.h"
#include "labctl/model/load.h"

extern char** environ;

namespace labctl::cli {

std::vector<std::string> positional_arguments(const CLI::App& app, const std::vector<std::string>& args) {
  std::vector<std::string> out;
  if (args.empty()) return out;
  const CLI::App* cmd = nullptr;
  try {
    cmd = app.get_subcommand(args[0]);
  } catch (const CLI::OptionNotFound&) {
    return out;
  }
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") break;
    if (!a.starts_with("-") || a == "-") {
      out.push_back(a);
      continue;
    }
    if (a.find('=') != std::string::npos) continue;  // --opt=value
    const CLI::Option* opt = cmd->get_option_no_throw(a);
    if (opt && opt->get_items_expected_max() > 0)
      i += static_cast<size_t>(std::max(1, opt->get_items_expected_min()));
  }
  return out;
}

std::optional<Topology> hosts_lab_topology(const std::string& lab) {
  if (!check_lab_name(lab)) return std::nullopt;
  for (const auto& path : {state_dir(lab) + "/topology.toml", controller_topology_path(lab)}) {
    auto text = read_regular_file(path, 16 << 20);
    if (!text) continue;
    LoadResult r = parse_topology(*text, path);
    if (r.ok() && multi_host(*r.topology)) return std::move(*r.topology);
  }
  return std::nullopt;
}

namespace {

// The node a command line is about: the second positional argument (NODE or NODE:IF) of
// the commands that take one, or the value of --from.
std::optional<std::string> node_argument(const CLI::App& app, const std::vector<std::string>& args) {
  static const std::set<std::string> second = {"exec", "logs", "capture", "link", "node", "ipvs"};
  // Not trace: it captures on every host at once from wherever it runs (trace/host_frames.h).
  static const std::set<std::string> from = {"measure"};
  if (args.empty()) return std::nullopt;
  if (second.contains(args[0])) {
    auto pos = positional_arguments(app, args);
    if (pos.size() < 2) return args[0] == "ipvs" ? std::optional<std::string>("") : std::nullopt;
    return pos[1].substr(0, pos[1].find(':'));
  }
  if (from.contains(args[0]))
    for (size_t i = 1; i < args.size() && args[i] != "--"; ++i) {
      if (args[i] == "--from" && i + 1 < args.size()) return args[i + 1];
      if (args[i].starts_with("--from=")) return args[i].substr(7);
    }
  return std::nullopt;
}

}  // namespace

std::optional<int> relay_if_node_elsewhere(const CLI::App& app, const std::vector<std::string>& args) {
  auto node = node_argument(app, args);
  if (!node) return std::nullopt;
  auto pos = positional_arguments(app, args);
  if (pos.empty()) return std::nullopt;
  const std::string& lab = pos[0];
  auto rec = find_hosts_record(lab);
  if (!rec) return std::nullopt;
  auto t = hosts_lab_topology(lab);
  if (!t) return std::nullopt;
  std::string host;
  if (const Node* n = t->node(*node)) {
    host = host_of(*t, *n);
  } else if (args[0] == "ipvs") {
    // `ipvs LAB` and its edits act on the lab's directors: on their host when they share one.
    std::set<std::string> hosts;
    for (const auto& d : t->nodes)
      if (!d.services.empty()) hosts.insert(host_of(*t, d));
    if (hosts.size() == 1) host = *hosts.begin();
  }
  if (host.empty() || host == rec->self) return std::nullopt;  // here, or no such node: the command says
  auto it = std::find_if(rec->remotes.begin(), rec->remotes.end(), [&](const RemoteHost& h) { return h.name == host; });
  if (it == rec->remotes.end()) {
    std::fprintf(stderr,
                 "labctl: error: node %s of lab %s runs on host %s, the machine the lab was brought up from, "
                 "which has no ssh destination in [hosts]\n  hint: run this command there\n",
                 node->c_str(), lab.c_str(), host.c_str());
    return kExitFailure;
  }
  std::vector<std::string> words = {it->labctl};
  words.insert(words.end(), args.begin(), args.end());
  std::vector<std::string> argv = ssh_command(*it, "", words);
  // The user's terminal goes along for an interactive command (a shell in the node).
  if (::isatty(STDIN_FILENO) == 1 && ::isatty(STDOUT_FILENO) == 1) {
    auto t_at = std::find(argv.begin(), argv.end(), "-T");
    if (t_at != argv.end()) *t_at = "-t";
  }
  std::vector<char*> c;
  for (auto& a : argv) c.push_back(a.data());
  c.push_back(nullptr);
  ::execve(argv[0].c_str(), c.data(), environ);
  std::fprintf(stderr, "labctl: error: cannot run %s to reach host %s: %s\n", argv[0].c_str(), host.c_str(),
               std::strerror(errno));
  return kExitFailure;
}

}  // namespace labctl::cli
