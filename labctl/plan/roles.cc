#include "labctl/plan/roles.h"

#include <algorithm>

#include "labctl/model/keepalived.h"

namespace labctl {

Roles::Roles(const Topology& t) : t_(t) {}

const Node* Roles::owner(const IpAddr& a) const {
  return t_.owner_of(a, Held::OnInterfacesOrTunnels);
}

std::vector<Membership> Roles::memberships(const Node& n) const {
  std::vector<Membership> out;
  for (const auto& d : t_.nodes)
    for (const auto& s : d.services)
      for (const auto& rs : s.real_servers)
        if (owner(rs.addr) == &n) out.push_back({&d, &s, &rs});
  return out;
}

bool Roles::is_real_server(const Node& n, FwdMethod m) const {
  auto ms = memberships(n);
  return std::any_of(ms.begin(), ms.end(), [&](const Membership& x) { return x.dest->method == m; });
}

bool Roles::is_router(const Node& n) const {
  if (directs(n)) return false;
  return sets_sysctl(n, "net.ipv4.ip_forward", "1") ||
         sets_sysctl(n, "net.ipv4.conf.all.forwarding", "1") ||
         sets_sysctl(n, "net.ipv6.conf.all.forwarding", "1");
}

bool Roles::lab_uses(FwdMethod m) const {
  for (const auto& d : t_.nodes)
    for (const auto& s : d.services)
      for (const auto& rs : s.real_servers)
        if (rs.method == m) return true;
  return false;
}

bool Roles::lab_has_services() const {
  return std::any_of(t_.nodes.begin(), t_.nodes.end(), [](const Node& n) { return !n.services.empty(); });
}

const VirtualService* Roles::service_with_vip(const Node& n, const IpAddr& a) const {
  for (const auto& s : n.services)
    if (s.fwmark == 0 && s.vip == a) return &s;
  return nullptr;
}

std::optional<KeepalivedRole> Roles::keepalived_role(const Node& n) const {
  for (const auto& a : n.agents) {
    if (!a.keepalived || !a.keepalived->vrrp) continue;
    KeepalivedRole k{a.keepalived->vrrp->master, {}};
    for (const auto& ks : a.keepalived->services)
      if (ServiceRef ref = t_.service(ks.name)) k.services.push_back(ref.service);
    if (!k.services.empty()) return k;
  }
  return std::nullopt;
}

std::vector<FwdMethod> Roles::director_methods(const Node& n) const {
  std::vector<const VirtualService*> services;
  for (const auto& s : n.services) services.push_back(&s);
  if (auto k = keepalived_role(n))
    for (const auto* s : k->services)
      if (std::find(services.begin(), services.end(), s) == services.end()) services.push_back(s);
  std::vector<FwdMethod> out;
  for (FwdMethod m : {FwdMethod::Nat, FwdMethod::Dr, FwdMethod::Tun, FwdMethod::Local})
    for (const auto* s : services)
      for (const auto& rs : s->real_servers)
        if (rs.method == m && std::find(out.begin(), out.end(), m) == out.end()) out.push_back(m);
  return out;
}

namespace {

std::string method_list(const std::vector<FwdMethod>& ms) {
  std::string out;
  for (auto m : ms) out += (out.empty() ? "" : ", ") + method_upper(m);
  return out;
}

}  // namespace

bool Roles::is_proxy(const Node& n) const {
  for (const auto& a : n.agents)
    if (a.nginx) return true;
  return false;
}

bool Roles::is_app(const Node& n) const {
  for (const auto& p : t_.nodes)
    for (const auto& a : p.agents)
      if (a.nginx)
        for (const auto& u : a.nginx->upstreams)
          for (const auto& s : u.servers)
            if (s.target == n.name || n.holds(s.addr)) return true;
  return false;
}

std::string Roles::role_name(const Node& n) const {
  std::vector<std::string> parts;
  if (directs(n)) {
    auto ms = director_methods(n);
    std::string d = ms.empty() ? "director" : "director (" + method_list(ms) + ")";
    if (auto k = keepalived_role(n)) d += k->master ? ", keepalived MASTER" : ", keepalived BACKUP";
    parts.push_back(d);
  }
  std::vector<FwdMethod> rs;
  for (const auto& m : memberships(n))
    if (std::find(rs.begin(), rs.end(), m.dest->method) == rs.end()) rs.push_back(m.dest->method);
  std::sort(rs.begin(), rs.end());
  if (!rs.empty()) parts.push_back("real server (" + method_list(rs) + ")");
  if (is_router(n)) parts.push_back("router");
  if (is_proxy(n)) parts.push_back("L7 proxy (nginx)");
  if (is_app(n)) parts.push_back("app server");
  if (parts.empty()) return lab_has_services() ? "client" : "host";
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : " and ") + p;
  return out;
}

bool sets_sysctl(const Node& n, const std::string& key, const std::string& value) {
  // The last write wins, as it does in the kernel.
  const Sysctl* last = nullptr;
  for (const auto& s : n.sysctls)
    if (s.key == key) last = &s;
  return last && last->value == value;
}

std::string method_upper(FwdMethod m) {
  switch (m) {
    case FwdMethod::Nat: return "NAT";
    case FwdMethod::Dr: return "DR";
    case FwdMethod::Tun: return "TUN";
    case FwdMethod::Local: return "LOCAL";
  }
  return "?";
}

std::string service_label(const VirtualService& s) {
  if (s.fwmark != 0) return "fwmark " + std::to_string(s.fwmark);
  std::string a = s.vip.v6() ? "[" + s.vip.str() + "]" : s.vip.str();
  return a + ":" + std::to_string(s.port) + (s.proto == Proto::Tcp ? "" : std::string("/") + to_string(s.proto));
}

}  // namespace labctl
