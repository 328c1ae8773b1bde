// labagent supervise: the subcommand's options; run_supervise (supervise.cc) is in
// labagent_parts, where the unit tests reach it.
#include <string>

#include "agents/common.h"
#include "agents/subcommand.h"

namespace labagent {
namespace {

SuperviseOptions sup;
std::string restart = "no";

CLI::App* add(CLI::App& app) {
  auto* supervise = app.add_subcommand(
      "supervise", "run an agent as a child: wait until it is ready, record how it ends, restart it");
  supervise->add_option("--state", sup.state_path, "file to record the agent's state in (JSON)");
  supervise->add_option("--node", sup.node, "node name, for the state record");
  supervise->add_option("--agent", sup.agent, "agent name, for the state record");
  supervise->add_option("--listen", sup.listen,
                        "ready when a socket listens here (tcp:PORT) or is bound (udp:PORT); "
                        "without it, ready when alive for 200 ms");
  supervise->add_flag("--oneshot", sup.oneshot, "a client: exiting 0 is finishing (and ready)");
  supervise->add_option("--restart", restart, "no, or on-failure (backoff 0.5 s doubling to 8 s)")
      ->check(CLI::IsMember({"no", "on-failure"}));
  supervise->add_option("--ready-fd", sup.ready_fd, "write \"ready\" or \"failed: WHY\" to this fd");
  supervise->add_option("--ready-timeout-ms", sup.ready_timeout_ms, "give up on readiness after this")
      ->check(CLI::Range(1, 600000));
  supervise->add_option("--stop-grace-ms", sup.stop_grace_ms, "after SIGTERM, wait this long before SIGKILL")
      ->check(CLI::Range(1, 60000));
  supervise->add_option("--ready-address", sup.ready_address,
                        "ready once an interface of the namespace holds this address (keepalived's VIP)");
  supervise->add_option("--alive-ms", sup.alive_ms,
                        "without --listen: ready once alive this long (default 200; a keepalived BACKUP waits "
                        "until it would have claimed the VIP)")
      ->check(CLI::Range(1, 600000));
  supervise->add_option("--log-cap-bytes", sup.log_cap_bytes,
                        "when the log (stdout, a file) passes this size, copy it to LOG.1 and empty it "
                        "(default 16 MiB)")
      ->check(CLI::Range(1LL, 1LL << 40));
  supervise->add_option("argv", sup.argv, "the agent's program and arguments (after --)")->required();
  return supervise;
}

int run() {
  sup.restart_on_failure = restart == "on-failure";
  return run_supervise(sup);
}

const Registered registered{{"supervise", add, run}};

}  // namespace
}  // namespace labagent
