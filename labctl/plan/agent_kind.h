// The plan half of every kind of agent, one registered entry each (agent_kinds.cc): how an
// agent of the kind runs (its argv), when it is ready, when it starts and why. Joined by
// the kind's name to its model half (model/agent_spec.h) and, for a kind that runs
// labagent, to labagent's subcommand of the same name (agents/<kind>.cc).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "labctl/model/topology.h"

namespace labctl {

struct AgentKindPlan {
  std::string name;
  /// The argv that runs `a` on `node` itself; `labagent` is the labagent binary.
  std::vector<std::string> (*argv)(const Agent& a, const std::string& node, const std::string& labagent) = nullptr;
  /// Its argv runs `labagent NAME` (the kind's name); a command agent runs its own.
  bool runs_labagent = true;
  /// What ready means (agent_listen_spec): "tcp:PORT", "udp:PORT" or "" (alive long enough).
  std::string (*listen)(const Agent& a) = nullptr;
  /// Readiness beyond listening, nullptr for none: an address it holds once ready
  /// (agent_ready_address), how long it must be alive without a port (agent_alive_time).
  std::string (*ready_address)(const Agent& a) = nullptr;
  std::chrono::milliseconds (*alive_time)(const Agent& a) = nullptr;
  /// How long it may take to become ready without a ready_timeout of its own
  /// (agent_ready_timeout); nullptr: kAgentReadyTimeout.
  std::chrono::milliseconds (*ready_timeout)(const Agent& a) = nullptr;
  /// How long it may take to stop after SIGTERM before SIGKILL; 0: the supervisor's default.
  std::chrono::milliseconds stop_grace{0};
  /// When `up` starts it: servers (0), then what watches them (1), then clients (2); the
  /// planner knows these three. Each agent is awaited until ready before the next phase.
  int phase = 0;
  /// Its config and pid files go in a directory of its own (params "dir", set by whoever runs
  /// it): FOLDER/NODE/AGENT in the lab's state (lab/state.h); "" for none.
  std::string dir{};
  /// What the planner adds from the topology before it is started (nullptr: nothing).
  void (*prepare)(const Topology& t, const Node& n, Agent& run) = nullptr;
  /// The one-line why of its StartAgent step (why.h), "" when it explains itself.
  std::string (*why)(const Node& n, const Agent& a) = nullptr;
};

/// Every kind's plan half, in the order of model/agent_specs.cc.
[[nodiscard]] const std::vector<AgentKindPlan>& agent_kind_plans();
[[nodiscard]] const AgentKindPlan* find_agent_kind_plan(std::string_view name);

}  // namespace labctl
