// labagent: the built-in workloads labctl starts inside lab nodes.
//   http  answers every HTTP request with the node's name (so a client sees who served it)
//   echo  echoes TCP or UDP payloads back
//   load  a bounded HTTP load client that counts which server answered
//   keepalived  writes a keepalived.conf and runs keepalived in the foreground
//   supervise  runs one of these (or any command) as its child: readiness, exit status, restarts
// labctl runs every agent under `supervise`, which decides readiness by what listens in the
// namespace. Servers also write "ready\n" to --ready-fd once listening, for direct use.
// Everything is bounded and listens only inside the lab namespace labctl put it in.
#include <unistd.h>

#include <string>

#include <CLI/CLI.hpp>

#include "agents/common.h"
#include "labctl/base/version.h"

using namespace labagent;

namespace {

std::string hostname_or(const std::string& fallback) {
  char buf[256] = {};
  return ::gethostname(buf, sizeof buf - 1) == 0 && buf[0] ? buf : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"labagent: workloads for labctl labs (run inside a lab node by labctl)", "labagent"};
  app.set_version_flag("--version", std::string("labagent ") + labctl::labctl_version());
  app.require_subcommand(1);
  int ready_fd = -1;
  uint16_t port = 80;
  std::string name;
  bool udp = false;
  std::string target;
  int count = 100, concurrency = 1, seconds = 30;

  auto* http = app.add_subcommand("http", "serve HTTP, answering every request with the node name");
  http->add_option("--port", port, "TCP port to listen on")->default_val(80);
  http->add_option("--name", name, "name to answer with (default: the host name)");
  http->add_option("--ready-fd", ready_fd, "write \"ready\" to this fd once listening");

  auto* echo = app.add_subcommand("echo", "echo TCP (or UDP) payloads back");
  echo->add_option("--port", port, "port to listen on")->default_val(7);
  echo->add_flag("--udp", udp, "UDP instead of TCP");
  echo->add_option("--ready-fd", ready_fd, "write \"ready\" to this fd once listening");

  auto* load = app.add_subcommand("load", "send COUNT HTTP GETs and count who answered");
  load->add_option("--target", target, "http://ADDRESS[:PORT][/PATH] or ADDRESS:PORT (numeric) to send to")->required();
  load->add_option("--count", count, "number of requests")->default_val(100)->check(CLI::Range(1, 1000000));
  load->add_option("--concurrency", concurrency, "parallel connections")->default_val(1)->check(CLI::Range(1, 256));
  load->add_option("--seconds", seconds, "stop after this many seconds")->default_val(30)->check(CLI::Range(1, 3600));

  std::string ka_dir, ka_config;
  auto* keepalived = app.add_subcommand(
      "keepalived", "write DIR/keepalived.conf and run keepalived in the foreground, its pid files in DIR");
  keepalived->add_option("--dir", ka_dir, "directory for keepalived.conf and the pid files")->required();
  keepalived->add_option("--config", ka_config, "the text of keepalived.conf")->required();

  SuperviseOptions sup;
  std::string restart = "no";
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

  CLI11_PARSE(app, argc, argv);
  if (*supervise) {
    sup.restart_on_failure = restart == "on-failure";
    return run_supervise(sup);
  }
  if (*http) return run_http(port, name.empty() ? hostname_or("labagent") : name, ready_fd);
  if (*echo) return udp ? run_echo_udp(port, ready_fd) : run_echo_tcp(port, ready_fd);
  if (*keepalived) return run_keepalived(ka_dir, ka_config);
  if (*load) return run_load(target, count, concurrency, seconds);
  return 2;
}
