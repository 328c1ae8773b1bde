// What the labagent workloads share: errors, socket set-up and bounded I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace labagent {

constexpr int kIoTimeoutMs = 2000;

/// Prints "labagent: WHAT: strerror(errno)" to stderr and returns 1.
int die(const std::string& what);
void set_timeouts(int fd, int ms);
/// A dual-stack socket bound to [::]:port (IPv4 clients arrive as v4-mapped addresses).
int listen_on(uint16_t port, int type);
void signal_ready(int ready_fd);
bool write_all(int fd, std::string_view s);

struct SuperviseOptions {
  std::string state_path;   ///< Where the agent's state is recorded ("" = nowhere).
  std::string node, agent;  ///< Recorded in the state, for status.
  std::string listen;       ///< "tcp:PORT", "udp:PORT" or "" (ready = alive 200 ms).
  bool oneshot = false;     ///< A client: exiting 0 before 200 ms is ready too.
  bool restart_on_failure = false;
  int ready_fd = -1;
  int ready_timeout_ms = 5000;
  int stop_grace_ms = 1000;
  std::string ready_address;  ///< When set, ready once an interface holds this address.
  int alive_ms = 0;           ///< Without a port: ready once alive this long (0: 200 ms).
  long long log_cap_bytes = 0;  ///< Rotate the log (stdout) past this size (0: kAgentLogCap).
  std::vector<std::string> argv;
};
int run_supervise(const SuperviseOptions& o);

}  // namespace labagent
