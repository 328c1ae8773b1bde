// Processes inside lab namespaces: starting agents detached from labctl, finding every
// process that lives in a namespace (as `ip netns pids` does), and stopping them.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "labctl/base/error.h"

namespace labctl {

struct SpawnOptions {
  int netns_fd = -1;              ///< Namespace to run in.
  std::vector<std::string> argv;  ///< argv[0] is looked up in PATH when it has no '/'.
  std::vector<std::string> env;   ///< Extra "KEY=VALUE" entries on top of labctl's environment.
  std::string log_path;           ///< stdout and stderr go here (appended).
  std::string what;               ///< Names it in errors ("agent rs1:web"); default argv[0].
  /// When > 0, the child gets a pipe as fd 3 and must write "ready" to it within this time
  /// (labagent supervise --ready-fd 3), or "failed: WHY" to say why it never will;
  /// otherwise a successful exec counts as started.
  std::chrono::milliseconds ready_timeout{0};
};

/// The program argv[0] names: itself when it has a '/', else the first match in PATH. The
/// error names the program and, for a bare name, every directory PATH made it look in.
[[nodiscard]] Result<std::string> resolve_program(const std::string& name);

/// The last `lines` lines of a log file (at most 2 KiB of it), "" when unreadable.
[[nodiscard]] std::string log_tail(const std::string& path, int lines = 5);

/// Whether a /proc/net/{tcp,tcp6,udp,udp6} table has a socket on local `port`: for TCP one
/// in LISTEN state, for UDP any bound one.
[[nodiscard]] bool proc_net_has_port(std::string_view table, bool udp, uint16_t port);

/// Whether the network namespace the calling process is in has a listening TCP (or bound
/// UDP) socket on `port`, IPv4 or IPv6, read from /proc/self/net.
[[nodiscard]] bool port_ready_here(bool udp, uint16_t port);

/// What the scheduler says about a process: its state letter (/proc/PID/stat), the CPU
/// time it has had and, where the kernel keeps them (/proc/PID/schedstat), its waits for a
/// CPU.
struct SchedFacts {
  char state = '?';
  std::chrono::nanoseconds run{0};
  std::chrono::nanoseconds wait{0};
  bool waits_known = false;
};

/// The facts about `pid`, or nullopt when it is gone.
[[nodiscard]] std::optional<SchedFacts> sched_facts(pid_t pid);
/// The facts in the text of /proc/PID/stat (and of /proc/PID/schedstat, "" if unknown).
[[nodiscard]] std::optional<SchedFacts> parse_sched_facts(std::string_view stat,
                                                          std::string_view schedstat,
                                                          long ticks_per_second);

/// How much of the `wall` time since a process was forked it has really had, so that a
/// loaded machine cannot make a program that has not run yet look as if it had lived: one
/// asleep by its own choice (S, I) has had all of it but its waits for a CPU (none is under
/// way while it sleeps, so the count is complete); one runnable or in disk sleep (R, D)
/// only its CPU time (a wait under way is not yet counted); a stopped or dead one none.
[[nodiscard]] std::chrono::nanoseconds time_had(const SchedFacts& f, std::chrono::nanoseconds wall);

/// Starts a process in its own session inside the namespace, with its own mount namespace
/// in which /sys shows the node's interfaces (as `ip netns exec` does). The process is not
/// labctl's child (it is re-parented), so it outlives labctl. Fails if exec fails, or if a
/// ready handshake was asked for and did not come (the log's tail is in the error).
[[nodiscard]] Result<pid_t> spawn_in_netns(const SpawnOptions& opts);

/// Every process whose network namespace is the one bound at ns_path.
[[nodiscard]] std::vector<pid_t> pids_in_netns(const std::string& ns_path);

/// Every process in any of the namespaces gets SIGTERM, then SIGKILL if still alive after
/// `grace`; then whatever entered them meanwhile gets SIGKILL. A pid whose process is no
/// longer in one of them when it is signalled (recycled since the scan) is left alone.
void stop_processes_in_netns(const std::vector<std::string>& ns_paths,
                             std::chrono::milliseconds grace);
inline void stop_processes_in_netns(const std::string& ns_path, std::chrono::milliseconds grace) {
  stop_processes_in_netns(std::vector<std::string>{ns_path}, grace);
}

/// Replaces the calling process with argv running inside the namespace, with /sys remounted
/// for it. Only returns on failure. The caller must be single-threaded.
[[nodiscard]] Error exec_in_netns(int netns_fd, const std::vector<std::string>& argv,
                                  const std::vector<std::string>& env);

/// What run_captured saw of a child.
struct Captured {
  int exit_code = -1;      ///< Its exit status; -1 when a signal ended it.
  bool timed_out = false;  ///< It was stopped because `until` came.
  bool stopped = false;    ///< It was stopped because `stop` was set.
  std::string out, err;    ///< Everything it wrote to stdout and to stderr.
};
/// Starts argv (argv[0] a path) as a child in a process group of its own (a Ctrl-C at the
/// terminal reaches labctl, which decides, not the child), with the default signal
/// dispositions and no descriptor of ours but `in`, `out` and `err` as its 0, 1 and 2 (-1:
/// /dev/null). The caller waits for it.
[[nodiscard]] Result<pid_t> spawn_in_own_group(const std::vector<std::string>& argv, int in, int out, int err);

/// What run_captured gives a child besides its argv, and how it hands its output on.
struct CaptureIo {
  /// Its stdin (a sealed in-memory file, so any size is written at once); "": /dev/null.
  std::string input;
  /// Each whole line it writes, as it comes (err: on stderr), besides the capture; a last
  /// line without a newline comes at the end.
  std::function<void(bool err, std::string_view line)> on_line;
  /// When given, stdin is a pipe held open (input must be ""), closed once this turns true:
  /// the child reads end-of-file then, and ssh passes it on to the remote command.
  const std::atomic<bool>* end_input = nullptr;
};

/// Runs argv (argv[0] a path) as a child in a process group of its own, stdin /dev/null,
/// no descriptor of ours but a pipe each for stdout and stderr, and waits for it, reading
/// both. When `until` comes or `stop` (may be null) is set, the group gets SIGINT (a labctl
/// `up` rolls back on it), then SIGKILL after `grace`. Errors only when it cannot start.
[[nodiscard]] Result<Captured> run_captured(const std::vector<std::string>& argv,
                                            std::chrono::steady_clock::time_point until,
                                            const std::atomic<bool>* stop = nullptr,
                                            std::chrono::milliseconds grace = std::chrono::seconds(15),
                                            const CaptureIo& io = {});

}  // namespace labctl
