#include "labctl/model/topology.h"

namespace labctl {

const Node* Topology::node(const std::string& n) const {
  for (const auto& x : nodes)
    if (x.name == n) return &x;
  return nullptr;
}

const Switch* Topology::find_switch(const std::string& n) const {
  for (const auto& x : switches)
    if (x.name == n) return &x;
  return nullptr;
}

const std::vector<std::string>& exercise_rules() {
  static const std::vector<std::string> rules{"nat-route", "tun-ipip"};
  return rules;
}

std::string netns_name(const std::string& lab, const std::string& name) {
  return lab + "-" + name;
}

const char* to_string(FwdMethod m) {
  switch (m) {
    case FwdMethod::Nat: return "nat";
    case FwdMethod::Dr: return "dr";
    case FwdMethod::Tun: return "tun";
  }
  return "?";
}

const char* to_string(Proto p) { return p == Proto::Tcp ? "tcp" : "udp"; }

const char* to_string(AgentKind k) {
  switch (k) {
    case AgentKind::Http: return "http";
    case AgentKind::Echo: return "echo";
    case AgentKind::LoadClient: return "load";
    case AgentKind::Command: return "command";
  }
  return "?";
}

}  // namespace labctl
