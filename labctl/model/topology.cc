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

const Host* Topology::find_host(const std::string& n) const {
  for (const auto& x : hosts)
    if (x.name == n) return &x;
  return nullptr;
}

const Interface* Node::interface_with(const IpAddr& a) const {
  for (const auto& i : interfaces)
    for (const auto& p : i.addresses)
      if (p.addr == a) return &i;
  return nullptr;
}

bool Node::holds(const IpAddr& a, Held on) const {
  if (interface_with(a)) return true;
  if (on == Held::OnInterfacesOrTunnels)
    for (const auto& tun : tunnels)
      for (const auto& p : tun.addresses)
        if (p.addr == a) return true;
  return false;
}

const Node* Topology::owner_of(const IpAddr& a, Held on) const {
  for (const auto& n : nodes)
    if (n.holds(a, on)) return &n;
  return nullptr;
}

std::vector<const Node*> Topology::owners_of(const IpAddr& a, Held on) const {
  std::vector<const Node*> out;
  for (const auto& n : nodes)
    if (n.holds(a, on)) out.push_back(&n);
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

void CheckParams::set(std::string key, CheckValue value) { values_[std::move(key)] = std::move(value); }

bool CheckParams::has(std::string_view key) const { return values_.find(key) != values_.end(); }

namespace {
template <class T>
const T* value_of(const std::map<std::string, CheckValue, std::less<>>& values, std::string_view key) {
  auto it = values.find(key);
  return it == values.end() ? nullptr : std::get_if<T>(&it->second);
}
}  // namespace

int64_t CheckParams::integer(std::string_view key) const {
  const int64_t* v = value_of<int64_t>(values_, key);
  return v ? *v : 0;
}

double CheckParams::number(std::string_view key) const {
  if (const double* v = value_of<double>(values_, key)) return *v;
  return static_cast<double>(integer(key));
}

const std::string& CheckParams::text(std::string_view key) const {
  static const std::string none;
  const std::string* v = value_of<std::string>(values_, key);
  return v ? *v : none;
}

const std::vector<IpAddr>& CheckParams::addresses(std::string_view key) const {
  static const std::vector<IpAddr> none;
  const auto* v = value_of<std::vector<IpAddr>>(values_, key);
  return v ? *v : none;
}

}  // namespace labctl
