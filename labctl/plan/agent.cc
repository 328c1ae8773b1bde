#include "labctl/plan/agent.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace labctl {

bool agent_signals_ready(const Agent& a) {
  return a.kind == AgentKind::Http || a.kind == AgentKind::Echo;
}

std::vector<std::string> agent_argv(const Agent& a, const std::string& node,
                                    const std::string& labagent, bool with_ready_fd) {
  auto param = [&](const std::string& key, const std::string& fallback) {
    auto it = a.params.find(key);
    return it == a.params.end() ? fallback : it->second;
  };
  std::vector<std::string> argv;
  switch (a.kind) {
    case AgentKind::Command:
      return a.argv;
    case AgentKind::Http:
      argv = {labagent, "http", "--port", std::to_string(a.port ? a.port : 80), "--name", node};
      break;
    case AgentKind::Echo:
      argv = {labagent, "echo", "--port", std::to_string(a.port ? a.port : 7)};
      if (param("proto", "tcp") == "udp") argv.push_back("--udp");
      break;
    case AgentKind::LoadClient:
      argv = {labagent, "load", "--target", param("target", ""), "--count", param("count", "100")};
      if (auto c = param("concurrency", ""); !c.empty()) argv.insert(argv.end(), {"--concurrency", c});
      break;
  }
  if (with_ready_fd && agent_signals_ready(a)) argv.insert(argv.end(), {"--ready-fd", "3"});
  return argv;
}

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

}  // namespace labctl
