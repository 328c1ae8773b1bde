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

namespace {

bool holds(const Node& n, const IpAddr& a, Held on) {
  for (const auto& i : n.interfaces)
    for (const auto& p : i.addresses)
      if (p.addr == a) return true;
  if (on == Held::OnInterfacesOrTunnels)
    for (const auto& tun : n.tunnels)
      for (const auto& p : tun.addresses)
        if (p.addr == a) return true;
  return false;
}

}  // namespace

const Node* Topology::owner_of(const IpAddr& a, Held on) const {
  for (const auto& n : nodes)
    if (holds(n, a, on)) return &n;
  return nullptr;
}

std::vector<const Node*> Topology::owners_of(const IpAddr& a, Held on) const {
  std::vector<const Node*> out;
  for (const auto& n : nodes)
    if (holds(n, a, on)) out.push_back(&n);
  return out;
}

ServiceRef Topology::service(const std::string& wanted) const {
  for (const auto& n : nodes)
    for (const auto& s : n.services)
      if (s.name == wanted) return {&n, &s};
  return {};
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
