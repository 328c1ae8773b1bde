// How an agent of the topology becomes a command line, and what its supervisor records.
// Shared by the executor (which runs it), the dry-run script (which prints it), labagent's
// supervisor (which writes the record) and status (which reads it).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "labctl/base/error.h"
#include "labctl/model/topology.h"

namespace labctl {

/// How long an agent has to become ready: listening on its port, or alive for
/// kAgentAliveTime when it has none. Documented in docs/lifecycle.md.
inline constexpr std::chrono::milliseconds kAgentReadyTimeout{5000};
inline constexpr std::chrono::milliseconds kAgentAliveTime{200};
/// How long keepalived may take to stop cleanly (release its VIPs with a priority-0 advert,
/// remove its IPVS entries) before its supervisor kills it; measured at over a second.
inline constexpr std::chrono::milliseconds kKeepalivedStopGrace{5000};
/// keepalived's start-up before its VRRP timers run (reading its config, its children),
/// measured at up to a second in the micro-VM's emulation.
inline constexpr std::chrono::milliseconds kKeepalivedStartup{1500};

/// How long `a` may take to become ready: its ready_timeout, else kAgentReadyTimeout.
[[nodiscard]] std::chrono::milliseconds agent_ready_timeout(const Agent& a);

/// The argv that runs `a` on `node` itself. Built-in kinds run `labagent` (path given).
/// A keepalived agent needs params "config" (keepalived_config(), set by the planner) and
/// "dir" (where its config and pid files go, set by whoever runs it).
[[nodiscard]] std::vector<std::string> agent_argv(const Agent& a, const std::string& node,
                                                  const std::string& labagent);

/// Whether `a` runs `labagent` (every kind but command, which runs its own argv).
[[nodiscard]] bool agent_runs_labagent(const Agent& a);
/// Whether `a` needs a directory of its own for its config and pid files (keepalived):
/// params "dir", set by whoever runs it.
[[nodiscard]] bool agent_needs_dir(const Agent& a);
/// The folder of the lab's state whose NODE/AGENT is that directory ("keepalived",
/// "nginx"), "" for a kind that needs none.
[[nodiscard]] std::string agent_dir_name(const Agent& a);

/// What ready means for `a`: "tcp:PORT" (a listening TCP socket), "udp:PORT" (a bound UDP
/// socket), or "" (alive for kAgentAliveTime; a load client may also have exited 0).
[[nodiscard]] std::string agent_listen_spec(const Agent& a);

/// For a keepalived agent whose VRRP instance starts as MASTER: its first VIP, which it holds
/// once it has won the election (then it is ready); "" otherwise.
[[nodiscard]] std::string agent_ready_address(const Agent& a);

/// How long an agent without a port must be alive to be ready: kAgentAliveTime, but for a
/// keepalived agent starting as BACKUP the time after which it would have claimed the VIP
/// had it heard no MASTER (so a lab is up only once VRRP has settled, split brain included).
[[nodiscard]] std::chrono::milliseconds agent_alive_time(const Agent& a);

/// An agent's log is capped: once it passes kAgentLogCap its supervisor copies it to
/// LOG.1 (replacing the generation before) and empties it, so an agent that logs a line per
/// request cannot fill /run (docs/lifecycle.md).
inline constexpr long long kAgentLogCap = 16LL << 20;
/// LOG.1: where an agent's log goes when its supervisor rotates it.
[[nodiscard]] std::string rotated_log_path(const std::string& log_path);

/// The argv that runs `argv` (the agent's own, its program resolved) under
/// `labagent supervise`, which reports readiness on fd 3 and records the agent's state in
/// state_path.
[[nodiscard]] std::vector<std::string> supervised_argv(const Agent& a, const std::string& node,
                                                       const std::string& labagent,
                                                       const std::string& state_path,
                                                       const std::vector<std::string>& argv);

/// The labagent binary: $LABCTL_AGENT, else beside the running labctl (installed) or in the
/// build tree's agents/ directory, else "labagent" from PATH.
[[nodiscard]] std::string find_labagent();

/// An agent's state as its supervisor records it (a small JSON file in the lab's state).
struct AgentState {
  std::string node;
  std::string agent;
  std::string state;        ///< starting, running, restarting, exited, stopped (status: gone)
  pid_t supervisor = 0;
  pid_t pid = 0;            ///< The agent's own process (0 when none runs).
  int code = -1;            ///< Exit code of its last run, -1 if none or killed.
  int signal = 0;           ///< Signal that ended its last run, 0 if none.
  int restarts = 0;
  bool oneshot = false;     ///< A client (load): exiting 0 is finishing, not failing.
};

[[nodiscard]] std::string agent_state_text(const AgentState& s);
[[nodiscard]] Result<AgentState> parse_agent_state(std::string_view text);
/// "SIGKILL" for 9.
[[nodiscard]] std::string signal_name(int sig);
/// "exited (code 1)", "killed (SIGKILL)" or "" for the last run's end.
[[nodiscard]] std::string agent_last_exit(const AgentState& s);
/// One phrase for status: "running", "running (restarted 2 times)", "exited (code 1)",
/// "killed (SIGKILL)", "restarting after killed (SIGKILL)", "finished (code 0)".
[[nodiscard]] std::string describe(const AgentState& s);
/// Whether the agent is as it should be: running, or a client that finished with 0.
[[nodiscard]] bool agent_ok(const AgentState& s);

}  // namespace labctl
