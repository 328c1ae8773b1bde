// labctl exec LAB NODE [-- CMD...]
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "labctl/base/display.h"
#include "labctl/cli/command.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/base/file.h"
#include "labctl/lab/netlink_executor.h"
#include "labctl/kernel/netns.h"
#include "labctl/kernel/process.h"
#include "labctl/lab/state.h"
#include "labctl/model/rules.h"
#include "labctl/model/topology.h"

namespace labctl::cli {
namespace {

// An rc file for the interactive shell: the user's own bashrc, then a prompt naming the
// lab and node (so nobody types into the wrong namespace).
std::string write_rcfile(const std::string& lab, const std::string& node) {
  std::string path = state_dir(lab) + "/bashrc-" + node;
  const std::string rc = "[ -f ~/.bashrc ] && . ~/.bashrc\n"
                         "PS1='[" + lab + ":" + node + "] \\u@\\h:\\w\\$ '\n";
  return write_text(path, rc) ? path : "";
}

void setup(CLI::App& app) {
  auto* cmd = app.add_subcommand("exec", "Run a command (or a shell) inside a lab node");
  cmd->footer(
      "Examples:\n"
      "  labctl exec dr-demo client -- curl -s http://10.0.0.100/\n"
      "  labctl exec dr-demo director        # an interactive shell in the node\n"
      "The command runs in the node's network namespace with /sys remounted, as\n"
      "`ip netns exec dr-demo-client ...` would; stdin, stdout, stderr and the exit status\n"
      "pass through.");
  static std::string lab, node;
  static std::vector<std::string> argv;
  cmd->add_option("lab", lab, "Lab name")->required();
  cmd->add_option("node", node, "Node (or switch) name")->required();
  cmd->add_option("command", argv, "Command and arguments (after --)");
  cmd->callback([] {
    if (Status st = check_lab_name(lab); !st) die(st.error(), kExitInvalid);
    if (topo::bad_name(node))
      die(Error{"lab " + lab + " has no node " + shown(node), 0, {},
                "node names are letters, digits, '_' and '-'; `labctl status " + lab +
                    "` lists them"},
          kExitInvalid);
    if (Status st = check_privileges(); !st) die(st.error());
    const std::string ns = netns_name(lab, node);
    if (read_netns_mark(ns) != netns_mark(lab)) {
      Error e{"lab " + lab + " has no node " + node, 0, {}, {}};
      auto nss = lab_namespaces(lab);
      if (nss.empty()) e.hint = "lab " + lab + " is not up; `labctl ls` lists running labs";
      else {
        e.hint = "its nodes and switches:";
        for (const auto& n : nss) e.hint += " " + n.substr(lab.size() + 1);
      }
      die(e);
    }
    auto fd = open_netns(ns);
    if (!fd) die(fd.error());
    std::vector<std::string> env = {"LABCTL_LAB=" + lab, "LABCTL_NODE=" + node};
    std::vector<std::string> run = argv;
    if (run.empty()) {
      const char* shell = std::getenv("SHELL");
      std::string sh = shell && *shell ? shell : "/bin/bash";
      std::string rc = sh.find("bash") != std::string::npos ? write_rcfile(lab, node) : "";
      run = rc.empty() ? std::vector<std::string>{sh} : std::vector<std::string>{sh, "--rcfile", rc, "-i"};
      env.push_back("PS1=[" + lab + ":" + node + "] \\w\\$ ");
    }
    Error e = exec_in_netns(fd->get(), run, env);
    std::fprintf(stderr, "labctl: error: %s\n", e.str().c_str());
    throw ExitError{e.errnum == ENOENT ? 127 : 126, {}};
  });
}

LABCTL_COMMAND(40, setup);

}  // namespace
}  // namespace labctl::cli
