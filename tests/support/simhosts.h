// Simulated hosts for the tests of labs across machines (issue 28): this machine has one
// kernel and no second machine, so each "host" is a set of namespaces on it.
//
// Host i of n (named hN, N = i) has its own network, mount, UTS and PID namespaces; PID 1
// is `simhost init`, which gives it a private tmpfs on /run (its /run/netns and /run/labctl
// are its own), a fresh /proc and /sys, the hostname hN and an empty /root/.bashrc (this
// machine's may take 0.25 s, for every ssh command), and runs Debian's sshd. Its eth0
// (192.168.77.N/24, MTU 1500) is a veth whose peer sits on a bridge in an underlay
// namespace of the harness. Nothing is created in the machine's root namespace, nor in its
// /run: the namespaces are bound in the harness's private folder (mkdtemp, 0700), which
// also holds the keys (ed25519, made for the run), each sshd_config, the client's
// ssh_config and known_hosts (each host's key: no trust on first use), the ControlPath
// sockets and the logs. The folder is outside /run, so every host sees it too: labctl on
// h1 reaches h2 with the same `ssh -F CONFIG h2`.
//
// ssh reaches a host through `simhost proxy` (its ProxyCommand), which connects from inside
// the host's network namespace: the underlay is reachable from nowhere else.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "labctl/base/error.h"

namespace labctl::test {

class SimHosts {
 public:
  /// Starts hosts h1..hn (1 <= n <= 200), each with sshd answering, or says what failed
  /// (and leaves nothing behind). `simhost` is the path of the simhost program. The hosts
  /// are killed with the thread that started them (PR_SET_PDEATHSIG), so a test that
  /// crashes leaves no host running: start them on the test's own thread.
  [[nodiscard]] static Result<SimHosts> start(int n, const std::string& simhost);
  /// The simhost program of this build tree (LABCTL_BINARY_DIR/tests/simhost).
  [[nodiscard]] static std::string default_program();

  SimHosts(SimHosts&&) noexcept;
  SimHosts& operator=(SimHosts&&) noexcept;
  SimHosts(const SimHosts&) = delete;
  SimHosts& operator=(const SimHosts&) = delete;
  /// Stops every host (stop()).
  ~SimHosts();

  /// Kills every host's init (the kernel then kills its whole PID namespace), waits for
  /// it, unbinds the namespaces (the underlay and its bridge go with theirs) and removes
  /// the private folder. Idempotent; the error lists what could not be removed.
  Status stop();

  [[nodiscard]] int size() const;
  /// "hN" for i = N.
  [[nodiscard]] std::string name(int i) const;
  /// Host i's underlay address, "192.168.77.i".
  [[nodiscard]] std::string underlay(int i) const;
  /// The harness's private folder.
  [[nodiscard]] const std::string& dir() const;
  /// The ssh_config to use as `ssh -F CONFIG hN ...` (from the machine or from any host).
  [[nodiscard]] std::string ssh_config() const;
  /// The file host i's network namespace is bound at (enter it with setns/nsenter --net).
  [[nodiscard]] std::string netns_file(int i) const;
  /// The pid (in the machine's PID namespace) of host i's init.
  [[nodiscard]] pid_t init_pid(int i) const;
  /// {ssh, -F, CONFIG, hN}: append a remote command (one shell string) to run it.
  [[nodiscard]] std::vector<std::string> ssh_argv(int i) const;

  /// Runs argv on host i over ssh (shell-quoted word by word); its stdout, or an error
  /// with its exit status and stderr. The harness keeps one multiplexed connection per
  /// host for these, apart from ssh_config's ControlPath (which is labctl's to use).
  [[nodiscard]] Result<std::string> run(
      int i, const std::vector<std::string>& argv,
      std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

  /// Names under host i's /run/netns (read through its init's view of the file system).
  [[nodiscard]] std::vector<std::string> netns_names(int i) const;
  /// Entries of a folder of host i's own /run, e.g. "labctl" (empty if it is not there).
  [[nodiscard]] std::vector<std::string> run_dir(int i, const std::string& sub) const;
  /// Every live process in host i's PID namespace (pids as the machine sees them).
  [[nodiscard]] std::vector<pid_t> pids(int i) const;
  /// What a lab could have left on host i: its /run/netns entries, its processes other
  /// than init and sshd (the listener and open sessions), its interfaces other than lo and
  /// eth0. One line each ("h1: process 812 sleep 1000"); empty when the host is clean.
  [[nodiscard]] std::vector<std::string> leftovers(int i) const;

  /// How long start() took.
  [[nodiscard]] std::chrono::milliseconds start_time() const;

 private:
  struct State;
  explicit SimHosts(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

}  // namespace labctl::test
