// Stopping and starting one agent of a running lab, as the failover and health checks do
// (stop the master's keepalived; stop a real server's web server; then start it again).
// An agent is stopped through its supervisor (SIGTERM: it stops the agent, records
// "stopped" and exits) and started as `up` starts it, from the lab's own plan.
#pragma once

#include <chrono>
#include <string>

#include "labctl/base/error.h"
#include "labctl/model/topology.h"
#include "labctl/plan/agent.h"

namespace labctl {

/// The agent's state as its supervisor last recorded it.
[[nodiscard]] Result<AgentState> read_agent_state(const std::string& lab, const std::string& node,
                                                  const std::string& agent);

/// Stops `node`'s agent `agent` of the running lab `t` and waits until its supervisor has
/// exited (at most `wait`). An agent that is not running is an error naming its state.
[[nodiscard]] Status stop_agent(const Topology& t, const std::string& node,
                                const std::string& agent, std::chrono::milliseconds wait);

/// Starts the agent again as `up` did (the same step of the lab's plan) and waits until it
/// is ready. An agent that still runs is an error.
[[nodiscard]] Status start_agent(const Topology& t, const std::string& node,
                                 const std::string& agent);

}  // namespace labctl
