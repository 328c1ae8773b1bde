#include "labctl/plan/agent.h"

#include <string.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "labctl/model/agent_spec.h"
#include "labctl/plan/agent_kind.h"

namespace labctl {

std::vector<std::string> agent_argv(const Agent& a, const std::string& node,
                                    const std::string& labagent) {
  const AgentKindPlan* k = find_agent_kind_plan(a.kind);
  return k ? k->argv(a, node, labagent) : std::vector<std::string>{};
}

bool agent_runs_labagent(const Agent& a) {
  const AgentKindPlan* k = find_agent_kind_plan(a.kind);
  return k && k->runs_labagent;
}

bool agent_needs_dir(const Agent& a) { return !agent_dir_name(a).empty(); }

std::string agent_dir_name(const Agent& a) {
  const AgentKindPlan* k = find_agent_kind_plan(a.kind);
  return k ? k->dir : "";
}

std::chrono::milliseconds agent_ready_timeout(const Agent& a) {
  if (a.ready_timeout_ms > 0) return std::chrono::milliseconds(a.ready_timeout_ms);
  const AgentKindPlan* k = find_agent_kind_plan(a.kind);
  return k && k->ready_timeout ? k->ready_timeout(a) : kAgentReadyTimeout;
}

std::chrono::milliseconds agent_alive_time(const Agent& a) {
  const AgentKindPlan* k = find_agent_kind_plan(a.kind);
  return k && k->alive_time ? k->alive_time(a) : kAgentAliveTime;
}

std::string agent_ready_address(const Agent& a) {
  const AgentKindPlan* k = find_agent_kind_plan(a.kind);
  return k && k->ready_address ? k->ready_address(a) : "";
}

std::string agent_listen_spec(const Agent& a) {
  const AgentKindPlan* k = find_agent_kind_plan(a.kind);
  return k ? k->listen(a) : "";
}

std::vector<std::string> supervised_argv(const Agent& a, const std::string& node,
                                         const std::string& labagent, const std::string& state_path,
                                         const std::vector<std::string>& argv) {
  std::vector<std::string> out{labagent,
                               "supervise",
                               "--state",
                               state_path,
                               "--node",
                               node,
                               "--agent",
                               a.name,
                               "--ready-fd",
                               "3",
                               "--ready-timeout-ms",
                               std::to_string(agent_ready_timeout(a).count())};
  if (auto listen = agent_listen_spec(a); !listen.empty())
    out.insert(out.end(), {"--listen", listen});
  if (topo::agent_is_client(a)) out.push_back("--oneshot");
  if (a.restart_on_failure) out.insert(out.end(), {"--restart", "on-failure"});
  if (const AgentKindPlan* k = find_agent_kind_plan(a.kind); k && k->stop_grace.count())
    out.insert(out.end(), {"--stop-grace-ms", std::to_string(k->stop_grace.count())});
  if (auto addr = agent_ready_address(a); !addr.empty())
    out.insert(out.end(), {"--ready-address", addr});
  if (auto alive = agent_alive_time(a); alive != kAgentAliveTime)
    out.insert(out.end(), {"--alive-ms", std::to_string(alive.count())});
  out.push_back("--");
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

std::string rotated_log_path(const std::string& log_path) { return log_path + ".1"; }

std::string find_labagent() {
  if (const char* env = std::getenv("LABCTL_AGENT"); env && *env) return env;
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto dir = self.parent_path();
    for (auto candidate : {dir / "labagent", dir.parent_path() / "agents" / "labagent"})
      if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return "labagent";
}

std::string agent_state_text(const AgentState& s) {
  nlohmann::json j = {
      {"node", s.node},      {"agent", s.agent}, {"state", s.state},   {"supervisor", s.supervisor},
      {"pid", s.pid},        {"code", s.code},   {"signal", s.signal}, {"restarts", s.restarts},
      {"oneshot", s.oneshot}};
  return j.dump() + "\n";
}

Result<AgentState> parse_agent_state(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return fail("agent state is not a JSON object");
  AgentState s;
  auto get = [&](const char* key, auto& out) -> bool {
    auto it = j.find(key);
    if (it == j.end()) return false;
    using T = std::remove_reference_t<decltype(out)>;
    if constexpr (std::is_same_v<T, std::string>) {
      if (!it->is_string()) return false;
      out = it->template get<std::string>();
    } else if constexpr (std::is_same_v<T, bool>) {
      if (!it->is_boolean()) return false;
      out = it->template get<bool>();
    } else {
      if (!it->is_number_integer()) return false;
      out = it->template get<T>();
    }
    return true;
  };
  if (!get("node", s.node) || !get("agent", s.agent) || !get("state", s.state) ||
      !get("supervisor", s.supervisor) || !get("pid", s.pid) || !get("code", s.code) ||
      !get("signal", s.signal) || !get("restarts", s.restarts) || !get("oneshot", s.oneshot))
    return fail("agent state lacks a field or has one of the wrong type");
  return s;
}

std::string signal_name(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

std::string agent_last_exit(const AgentState& s) {
  if (s.signal > 0) return "killed (" + signal_name(s.signal) + ")";
  if (s.code >= 0) return "exited (code " + std::to_string(s.code) + ")";
  return "";
}

std::string describe(const AgentState& s) {
  const std::string restarted = s.restarts == 1 ? " (restarted once)"
                                : s.restarts
                                    ? " (restarted " + std::to_string(s.restarts) + " times)"
                                    : "";
  if (s.state == "running" || s.state == "starting") return s.state + restarted;
  if (s.state == "restarting") return "restarting after " + agent_last_exit(s) + restarted;
  if (s.state == "stopped") return "stopped";
  if (s.state == "gone") return "gone (its supervisor is no longer running)";
  if (s.oneshot && s.code == 0 && s.signal == 0) return "finished (code 0)";
  std::string last = agent_last_exit(s);
  return (last.empty() ? s.state : last) + restarted;
}

bool agent_ok(const AgentState& s) {
  if (s.state == "running" || s.state == "starting") return true;
  return s.oneshot && s.state == "exited" && s.code == 0 && s.signal == 0;
}

}  // namespace labctl
