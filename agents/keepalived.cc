// labagent keepalived: writes the agent's keepalived.conf into its own directory, then
// becomes keepalived (exec), in the foreground. The supervisor's child is then keepalived
// itself: it sees how keepalived ends, and its SIGTERM is keepalived's clean stop (VIPs
// released with a priority-0 advert, IPVS entries removed). The config travels in argv so
// that `labctl up` and the --dry-run script start it the same way.
#include "labctl/plan/keepalived.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "agents/common.h"
#include "agents/subcommand.h"
#include "labctl/base/file.h"

namespace labagent {
namespace {

int run_keepalived(const std::string& dir, const std::string& config) {
  // labctl made the folders above it private (lab/state.h); the --dry-run script's are
  // its own. The agent's own folder is private either way: keepalived runs as root.
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(dir).parent_path(), ec);
  if (auto st = labctl::make_private_dir(dir); !st) {
    std::fprintf(stderr, "labagent keepalived: %s\n", st.error().str().c_str());
    return 1;
  }
  // keepalived refuses to start when a pid file names a live process: a stale one from a
  // run that was killed names a dead one or somebody else's, so they go.
  for (const char* f : {"keepalived.pid", "vrrp.pid", "checkers.pid"})
    std::filesystem::remove(dir + "/" + f, ec);
  if (auto st = labctl::write_text(dir + "/keepalived.conf", config); !st) {
    std::fprintf(stderr, "labagent keepalived: %s\n", st.error().str().c_str());
    return 1;
  }
  std::vector<std::string> argv = labctl::keepalived_command(labctl::keepalived_program(), dir);
  std::vector<char*> c;
  for (auto& s : argv) c.push_back(s.data());
  c.push_back(nullptr);
  ::execv(c[0], c.data());
  std::fprintf(stderr,
               "labagent keepalived: cannot run %s: %s (install Debian's keepalived package)\n",
               c[0], std::strerror(errno));
  return 127;
}

std::string dir, config;

CLI::App* add(CLI::App& app) {
  auto* keepalived = app.add_subcommand(
      "keepalived", "write DIR/keepalived.conf and run keepalived in the foreground, its pid files in DIR");
  keepalived->add_option("--dir", dir, "directory for keepalived.conf and the pid files")->required();
  keepalived->add_option("--config", config, "the text of keepalived.conf")->required();
  return keepalived;
}

int run() { return run_keepalived(dir, config); }

const Registered registered{{"keepalived", add, run}};

}  // namespace
}  // namespace labagent
