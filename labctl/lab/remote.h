// Another host of a lab spread over several (docs/multihost.md), reached with the user's own
// OpenSSH: one master connection per host (ControlMaster), held by this labctl for as long as
// it runs and closed when it is done, every command multiplexed over it. labctl stores no key
// and no password: ssh uses what the user's ssh uses (its config, agent and known_hosts;
// LABCTL_SSH_CONFIG names another config file, as `ssh -F` does).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "labctl/base/error.h"
#include "labctl/kernel/process.h"

namespace labctl {

struct RemoteHost {
  std::string name;         ///< The lab's name for it ([hosts.NAME]).
  std::string destination;  ///< As ssh takes it.
  std::string labctl = "labctl";
};

/// The ssh command line that runs `words` on `h` (each word quoted for the remote shell, so
/// no word is ever read as shell syntax there) over the master at `control` ("" : a
/// connection of its own). Exposed for tests.
[[nodiscard]] std::vector<std::string> ssh_command(const RemoteHost& h, const std::string& control,
                                                   const std::vector<std::string>& words);

class SshSession {
 public:
  /// Connects: starts `ssh -M -N` (a child of this process) and waits until its control
  /// socket answers, at most `timeout`. The error carries what ssh said (no such host, key
  /// refused, host key unknown).
  [[nodiscard]] static Result<std::unique_ptr<SshSession>> open(const RemoteHost& h,
                                                                std::chrono::seconds timeout = std::chrono::seconds(20));
  ~SshSession();  ///< Closes the master (ssh -O exit) and reaps it; removes its folder.
  SshSession(const SshSession&) = delete;
  SshSession& operator=(const SshSession&) = delete;

  [[nodiscard]] const RemoteHost& host() const { return host_; }
  /// Runs `labctl args...` there; `io.input` becomes its stdin. Stopped (SIGINT, which
  /// rolls an `up` back there too, then SIGKILL) when `until` comes or `stop` is set.
  [[nodiscard]] Result<Captured> labctl(const std::vector<std::string>& args, const CaptureIo& io,
                                        std::chrono::steady_clock::time_point until,
                                        const std::atomic<bool>* stop = nullptr);

 private:
  SshSession(RemoteHost h, std::string dir, pid_t master) : host_(std::move(h)), dir_(std::move(dir)), master_(master) {}
  [[nodiscard]] std::string control() const { return dir_ + "/control"; }
  RemoteHost host_;
  std::string dir_;  ///< Private (0700) folder holding the control socket and ssh's log.
  pid_t master_ = -1;
};

}  // namespace labctl
