// labagent nginx: writes the agent's nginx.conf into its own folder, has nginx test it
// (`nginx -t`, whose complaint, file and line, lands in the agent's log and so in `up`'s
// error), then becomes nginx (exec), in the foreground. The supervisor's child is then
// nginx's master process: it sees how nginx ends, and its SIGTERM is nginx's fast stop. The
// config travels in argv so that `labctl up` and the --dry-run script start it the same way.
#include "labctl/plan/nginx.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "agents/subcommand.h"
#include "labctl/base/file.h"

extern char** environ;

namespace labagent {
namespace {

std::vector<char*> c_argv(std::vector<std::string>& argv) {
  std::vector<char*> c;
  for (auto& s : argv) c.push_back(s.data());
  c.push_back(nullptr);
  return c;
}

int fail(const std::string& what) {
  std::fprintf(stderr, "labagent nginx: %s\n", what.c_str());
  return 1;
}

int run_nginx(const std::string& dir, const std::string& config) {
  // labctl made the folders above it private (lab/state.h); the --dry-run script's are
  // its own. The agent's own folder is private either way: nginx runs as root, and its
  // temp folders (made by nginx, 0700) go inside it.
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(dir).parent_path(), ec);
  if (auto st = labctl::make_private_dir(dir); !st) return fail(st.error().str());
  // A stale pid file from a killed run is harmless to nginx, but would name somebody else.
  std::filesystem::remove(dir + "/nginx.pid", ec);
  if (auto st = labctl::write_text(dir + "/nginx.conf", config); !st) return fail(st.error().str());

  const std::string program = labctl::nginx_program();
  std::vector<std::string> test = labctl::nginx_command(program, dir, /*test=*/true);
  auto test_c = c_argv(test);
  pid_t pid = 0;
  if (int err = ::posix_spawn(&pid, test_c[0], nullptr, nullptr, test_c.data(), environ); err != 0)
    return fail("cannot run " + program + ": " + std::strerror(err) + " (install Debian's nginx package, or set "
                "LABCTL_NGINX)");
  int ws = 0;
  while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
    return fail("nginx rejects the configuration " + dir + "/nginx.conf (nginx -t says why above)");

  std::vector<std::string> argv = labctl::nginx_command(program, dir);
  auto c = c_argv(argv);
  ::execv(c[0], c.data());
  return fail("cannot run " + program + ": " + std::strerror(errno));
}

std::string dir, config;

CLI::App* add(CLI::App& app) {
  auto* nginx = app.add_subcommand(
      "nginx", "write DIR/nginx.conf, test it (nginx -t), then run nginx in the foreground with DIR as its prefix");
  nginx->add_option("--dir", dir, "directory for nginx.conf, its pid file and temp folders")->required();
  nginx->add_option("--config", config, "the text of nginx.conf")->required();
  return nginx;
}

int run() { return run_nginx(dir, config); }

const Registered registered{{"nginx", add, run}};

}  // namespace
}  // namespace labagent
