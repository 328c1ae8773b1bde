// The crash sweep shared by the host and kernel tiers: `labctl up` SIGKILLed at many
// moments spread evenly over its whole measured run, its state folder removed, then the
// real `labctl down LAB`. Whatever of the lab is still there afterwards is a leftover.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "labctl/kernel/netns.h"
#include "labctl/lab/state.h"

namespace labctl::test {

struct SweepResult {
  int kills = 0;
  int finished_first = 0;      ///< Runs that were done before their kill landed.
  double up_ms = 0;            ///< The measured duration the offsets spread over.
  std::vector<std::string> leftovers;  ///< "kill 17 at 3.2 ms: /run/netns/x-a" and the like.
};

inline pid_t spawn_quiet(const std::string& exe, const std::vector<std::string>& args) {
  pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<char*> argv{const_cast<char*>(exe.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(devnull, 0);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execv(exe.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

inline int wait_status(pid_t pid) {
  int ws = 0;
  ::waitpid(pid, &ws, 0);
  return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

/// What `sh -c cmd` prints on stdout.
inline std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

/// How many labagent processes run on this machine, whatever their path (in the micro-VM's
/// kernel tier, where nothing else runs beside the test).
inline int count_labagents() {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string pid = e.path().filename();
    if (pid.empty() || !std::isdigit(static_cast<unsigned char>(pid[0]))) continue;
    std::error_code ec;
    auto exe = std::filesystem::read_symlink(e.path() / "exe", ec);
    if (!ec && exe.filename() == "labagent") ++n;
  }
  return n;
}

/// How many processes run the program `exe` on this machine.
inline int count_processes_of(const std::filesystem::path& exe) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string pid = e.path().filename();
    if (pid.empty() || !std::isdigit(static_cast<unsigned char>(pid[0]))) continue;
    std::error_code ec;
    auto target = std::filesystem::read_symlink(e.path() / "exe", ec);
    if (!ec && target == exe) ++n;
  }
  return n;
}

/// The sweep's own copy of labagent, in a private folder (mkdtemp, 0700), which every
/// `labctl` the sweep runs is told to use (LABCTL_AGENT, set for the sweep's duration):
/// its processes are counted by that path, so the labagents of other tests running on the
/// machine at the same time (another tier, another checkout) never count as leftovers.
class PrivateLabagent {
 public:
  explicit PrivateLabagent(const std::string& labctl) {
    const char* env = std::getenv("LABCTL_AGENT");
    if (env && *env) old_ = env;
    const std::filesystem::path bin = std::filesystem::path(labctl).parent_path();
    std::filesystem::path from = old_;
    if (from.empty()) {  // where labctl itself looks: the build tree's agents/, or beside it
      from = bin.parent_path() / "agents" / "labagent";
      if (!std::filesystem::exists(from)) from = bin / "labagent";
    }
    char tmpl[] = "/tmp/labctl-sweep-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) return;
    dir_ = tmpl;
    path_ = dir_ + "/labagent";
    std::error_code ec;
    std::filesystem::copy_file(from, path_, ec);
    if (ec) return;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec, ec);
    ::setenv("LABCTL_AGENT", path_.c_str(), 1);
    active_ = true;
  }
  ~PrivateLabagent() {
    if (active_) {
      if (old_.empty()) ::unsetenv("LABCTL_AGENT");
      else ::setenv("LABCTL_AGENT", old_.c_str(), 1);
    }
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  PrivateLabagent(const PrivateLabagent&) = delete;
  PrivateLabagent& operator=(const PrivateLabagent&) = delete;
  [[nodiscard]] bool ok() const { return active_; }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string old_, dir_, path_;
  bool active_ = false;
};

/// Everything of `lab` on this machine: names under /run/netns (namespaces and
/// placeholders alike), its state folder and its lock file.
inline std::vector<std::string> traces_of(const std::string& lab) {
  std::vector<std::string> out;
  for (const auto& ns : list_netns())
    if (ns.rfind(lab + "-", 0) == 0) out.push_back(netns_path(ns));
  std::error_code ec;
  if (std::filesystem::exists(state_dir(lab), ec)) out.push_back(state_dir(lab));
  const std::string lock = state_root() + "/locks/" + lab + ".lock";
  if (std::filesystem::exists(lock, ec)) out.push_back(lock);
  return out;
}

/// Kills `labctl up UP_ARG` (which builds lab `lab`) `kills` times, at offsets spread
/// evenly from 0 to 1.2 times its measured duration (and up to four times more, later,
/// when none of those runs was done before its kill).
inline SweepResult kill_sweep(const std::string& labctl, const std::string& lab,
                              const std::string& up_arg, int kills) {
  using clock = std::chrono::steady_clock;
  SweepResult r;
  PrivateLabagent agent(labctl);
  if (!agent.ok()) {
    r.leftovers.push_back("could not make the sweep's own copy of labagent under /tmp");
    return r;
  }
  const int agents_before = count_processes_of(agent.path());
  // The duration of a whole `up` (process start to exit): the median of five, after a
  // first run that warms caches and is not counted (cold runs took twice as long).
  std::vector<double> runs;
  for (int i = 0; i < 6; ++i) {
    auto t0 = clock::now();
    const int rc = wait_status(spawn_quiet(labctl, {"up", up_arg}));
    runs.push_back(std::chrono::duration<double, std::milli>(clock::now() - t0).count());
    // The count sees the lab's own agents (or a leftover could never be seen).
    if (i == 0 && rc == 0 && count_processes_of(agent.path()) <= agents_before)
      r.leftovers.push_back("the lab's agents do not run from " + agent.path() + " (LABCTL_AGENT)");
    wait_status(spawn_quiet(labctl, {"down", lab}));
    if (rc != 0) {
      r.leftovers.push_back("`labctl up " + up_arg + "` failed (exit " + std::to_string(rc) +
                            ") before any kill");
      return r;
    }
  }
  runs.erase(runs.begin());
  std::sort(runs.begin(), runs.end());
  r.up_ms = runs[runs.size() / 2];
  // One kill at `at_ms` after start, then `down` without state, then what is left.
  auto kill_at = [&](int k, double at_ms) {
    pid_t pid = spawn_quiet(labctl, {"up", up_arg});
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(at_ms));
    ::kill(pid, SIGKILL);
    if (wait_status(pid) == 0) ++r.finished_first;
    ++r.kills;
    std::error_code ec;
    std::filesystem::remove_all(state_dir(lab), ec);
    const int rc = wait_status(spawn_quiet(labctl, {"down", lab}));
    const std::string when = "kill " + std::to_string(k) + " at " + std::to_string(at_ms) + " ms";
    if (rc != 0) r.leftovers.push_back(when + ": `labctl down` exited " + std::to_string(rc));
    for (const auto& t : traces_of(lab)) r.leftovers.push_back(when + ": " + t);
    if (int now = count_processes_of(agent.path()); now != agents_before)
      r.leftovers.push_back(when + ": " + std::to_string(now - agents_before) + " labagent(s)");
  };
  for (int k = 0; k < kills && r.leftovers.size() <= 20; ++k)
    kill_at(k, r.up_ms * 1.2 * k / kills);
  // The sweep must reach the end of up: if the machine got slower than it was measured,
  // so that no run was done before its kill, later offsets make sure one is.
  for (double f : {1.5, 2.0, 3.0, 5.0})
    if (r.finished_first == 0) kill_at(r.kills, r.up_ms * f);
  return r;
}

}  // namespace labctl::test
