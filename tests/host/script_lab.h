// Runs rendered dry-run scripts for real (host and kernel tiers) and always cleans up what
// the plan names: its agents' processes and its namespaces, nothing else.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "labctl/plan/plan.h"
#include "labctl/plan/render.h"
#include "labctl/base/shell_quote.h"

namespace labctl::test {

struct RunResult {
  int status = -1;     ///< Exit status, or -1 when it did not exit normally.
  std::string output;  ///< stdout and stderr together.
};

/// Runs `bash -c cmd` with the build's labagent first on PATH and collects its output.
inline RunResult run_shell(const std::string& cmd) {
  std::string path = std::string(LABCTL_BINARY_DIR) + "/agents:" + std::getenv("PATH");
  std::string full = "PATH=" + shell_quote(path) + " bash -c " + shell_quote(cmd) + " 2>&1";
  RunResult r;
  FILE* p = ::popen(full.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

inline RunResult run_script(const std::string& script, const std::string& name) {
  std::string path = ::testing::TempDir() + "/" + name + ".sh";
  std::ofstream(path) << script;
  RunResult r = run_shell("bash " + path);
  std::filesystem::remove(path);
  return r;
}

/// Owns a lab built by a script: the destructor runs the teardown and then removes anything
/// of the plan's that is left (a failed script stops halfway).
class ScriptLab {
 public:
  explicit ScriptLab(Plan p) : plan_(std::move(p)) {}
  ScriptLab(const ScriptLab&) = delete;
  ScriptLab& operator=(const ScriptLab&) = delete;
  ~ScriptLab() {
    down_ = run_script(render_down_script(plan_), plan_.lab + "-down");
    for (const auto& s : plan_.steps) {
      const auto* ns = std::get_if<step::CreateNetns>(&s.step);
      if (!ns || !std::filesystem::exists("/run/netns/" + ns->ns)) continue;
      (void)run_shell("ip netns pids " + ns->ns + " | xargs -r kill -9; ip netns del " + ns->ns);
    }
    std::filesystem::remove_all("/run/labctl-script/" + plan_.lab);
    std::error_code ec;  // the parent goes only when no other lab uses it
    std::filesystem::remove("/run/labctl-script", ec);
  }

  RunResult up() { return run_script(render_script(plan_), plan_.lab + "-up"); }
  /// Runs cmd in the member's namespace, retrying for up to `tries` × 100 ms until it
  /// exits 0 (agents take a moment to listen).
  RunResult exec_until_ok(const std::string& member, const std::string& cmd, int tries = 50) {
    RunResult r;
    for (int i = 0; i < tries; ++i) {
      r = run_shell("ip netns exec " + plan_.lab + "-" + member + " " + cmd);
      if (r.status == 0) break;
      ::usleep(100 * 1000);
    }
    return r;
  }
  const Plan& plan() const { return plan_; }

 private:
  Plan plan_;
  RunResult down_;
};

/// Whether any namespace the plan creates still exists.
inline bool any_netns_left(const Plan& p) {
  for (const auto& s : p.steps)
    if (const auto* ns = std::get_if<step::CreateNetns>(&s.step))
      if (std::filesystem::exists("/run/netns/" + ns->ns)) return true;
  return false;
}

}  // namespace labctl::test
