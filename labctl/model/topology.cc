#include "labctl/model/topology.h"

#include <netinet/in.h>

#include <algorithm>

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
    case FwdMethod::Local: return "local";
  }
  return "?";
}

const char* to_string(Proto p) {
  switch (p) {
    case Proto::Tcp: return "tcp";
    case Proto::Udp: return "udp";
    case Proto::Sctp: return "sctp";
  }
  return "?";
}

int ip_protocol(Proto p) {
  switch (p) {
    case Proto::Tcp: return IPPROTO_TCP;
    case Proto::Udp: return IPPROTO_UDP;
    case Proto::Sctp: return IPPROTO_SCTP;
  }
  return IPPROTO_TCP;
}

bool Node::scope_host(const IpAddr& a) const {
  return std::find(lo_scope_host.begin(), lo_scope_host.end(), a) != lo_scope_host.end();
}

const char* to_string(AgentKind k) {
  switch (k) {
    case AgentKind::Http: return "http";
    case AgentKind::Echo: return "echo";
    case AgentKind::LoadClient: return "load";
    case AgentKind::Command: return "command";
    case AgentKind::Keepalived: return "keepalived";
  }
  return "?";
}

const char* to_string(NatType t) {
  switch (t) {
    case NatType::Masquerade: return "masquerade";
    case NatType::Snat: return "snat";
    case NatType::Dnat: return "dnat";
    case NatType::Redirect: return "redirect";
  }
  return "?";
}

}  // namespace labctl
