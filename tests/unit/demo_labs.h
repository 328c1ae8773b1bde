// Resolved topologies built in C++ that mirror the three demos (client, director, rs1, rs2,
// a router for TUN), so planner and renderer tests do not depend on the TOML parser.
#pragma once

#include <sys/socket.h>

#include <stdexcept>
#include <string>

#include "labctl/model/topology.h"

namespace labctl::test {

inline IpAddr A(const std::string& s) {
  auto a = IpAddr::parse(s);
  if (!a) throw std::invalid_argument("bad address in test: " + s);
  return *a;
}

inline IpPrefix P(const std::string& s) {
  auto p = IpPrefix::parse(s);
  if (!p) throw std::invalid_argument("bad prefix in test: " + s);
  return *p;
}

inline Node named(const std::string& name) {
  Node n;
  n.name = name;
  return n;
}

inline Interface on_switch(const std::string& node, const std::string& name,
                           const std::string& sw, std::vector<IpPrefix> addrs) {
  Interface i;
  i.name = name;
  i.sw = sw;
  i.port = node + "-" + name;
  i.addresses = std::move(addrs);
  return i;
}

inline Route default_via(const std::string& gw) {
  Route r;
  r.family = AF_INET;
  r.via = A(gw);
  return r;
}

inline Route route_via(const std::string& to, const std::string& gw) {
  Route r;
  r.to = P(to);
  r.family = AF_INET;
  r.via = A(gw);
  return r;
}

inline Agent http_agent(uint16_t port) {
  Agent a;
  a.name = "web";
  a.kind = "http";
  a.port = port;
  return a;
}

inline VirtualService service(const std::string& vip, uint16_t port, FwdMethod m,
                              std::vector<std::string> rips, uint16_t rport = 0) {
  VirtualService s;
  s.name = "web";
  s.vip = A(vip);
  s.port = port;
  for (const auto& r : rips) {
    RealServer rs;
    rs.addr = A(r);
    rs.port = rport;
    rs.method = m;
    s.real_servers.push_back(rs);
  }
  return s;
}

inline std::vector<Sysctl> hide_vip_sysctls() {
  return {{"net.ipv4.conf.all.arp_ignore", "1", {}},
          {"net.ipv4.conf.all.arp_announce", "2", {}},
          {"net.ipv4.conf.eth0.arp_ignore", "1", {}},
          {"net.ipv4.conf.eth0.arp_announce", "2", {}}};
}

/// LVS-DR: everyone on one switch; the real servers hold the VIP on lo.
inline Topology dr_lab() {
  Topology t;
  t.name = "dr-demo";
  t.source = "test:dr";
  t.switches.push_back(Switch{.name = "lan"});
  Node client = named("client");
  client.interfaces.push_back(on_switch("client", "eth0", "lan", {P("10.0.0.10/24")}));
  Node dir = named("director");
  dir.interfaces.push_back(
      on_switch("director", "eth0", "lan", {P("10.0.0.2/24"), P("10.0.0.100/32")}));
  dir.services.push_back(service("10.0.0.100", 80, FwdMethod::Dr, {"10.0.0.11", "10.0.0.12"}));
  t.nodes = {client, dir};
  for (int k = 1; k <= 2; ++k) {
    std::string name = "rs" + std::to_string(k);
    Node rs = named(name);
    rs.interfaces.push_back(on_switch(name, "eth0", "lan", {P("10.0.0.1" + std::to_string(k) + "/24")}));
    rs.lo_addresses = {P("10.0.0.100/32")};
    rs.sysctls = hide_vip_sysctls();
    rs.agents.push_back(http_agent(80));
    t.nodes.push_back(rs);
  }
  return t;
}

/// LVS-NAT: client and director on "front", director and real servers on "back"; the real
/// servers' default route points at the director.
inline Topology nat_lab() {
  Topology t;
  t.name = "nat-demo";
  t.source = "test:nat";
  t.switches.push_back(Switch{.name = "front"});
  t.switches.push_back(Switch{.name = "back"});
  Node client = named("client");
  client.interfaces.push_back(on_switch("client", "eth0", "front", {P("172.16.0.10/24")}));
  Node dir = named("director");
  dir.interfaces.push_back(on_switch("director", "eth0", "front", {P("172.16.0.100/24")}));
  dir.interfaces.push_back(on_switch("director", "eth1", "back", {P("10.1.0.1/24")}));
  dir.sysctls = {{"net.ipv4.ip_forward", "1", {}}};
  dir.services.push_back(
      service("172.16.0.100", 80, FwdMethod::Nat, {"10.1.0.11", "10.1.0.12"}, 8080));
  t.nodes = {client, dir};
  for (int k = 1; k <= 2; ++k) {
    std::string name = "rs" + std::to_string(k);
    Node rs = named(name);
    rs.interfaces.push_back(on_switch(name, "eth0", "back", {P("10.1.0.1" + std::to_string(k) + "/24")}));
    rs.routes.push_back(default_via("10.1.0.1"));
    rs.agents.push_back(http_agent(8080));
    t.nodes.push_back(rs);
  }
  return t;
}

/// LVS-TUN: client and director on net1, real servers on net2 behind a router; real servers
/// accept IP-in-IP on tunl0, which holds the VIP.
inline Topology tun_lab() {
  Topology t;
  t.name = "tun-demo";
  t.source = "test:tun";
  t.switches.push_back(Switch{.name = "net1"});
  t.switches.push_back(Switch{.name = "net2"});
  Node client = named("client");
  client.interfaces.push_back(on_switch("client", "eth0", "net1", {P("10.1.0.10/24")}));
  client.routes.push_back(default_via("10.1.0.1"));
  Node router = named("router");
  router.interfaces.push_back(on_switch("router", "eth0", "net1", {P("10.1.0.1/24")}));
  router.interfaces.push_back(on_switch("router", "eth1", "net2", {P("10.2.0.1/24")}));
  router.sysctls = {{"net.ipv4.ip_forward", "1", {}},
                    {"net.ipv4.conf.all.rp_filter", "0", {}},
                    {"net.ipv4.conf.eth1.rp_filter", "0", {}}};
  Node dir = named("director");
  dir.interfaces.push_back(
      on_switch("director", "eth0", "net1", {P("10.1.0.2/24"), P("10.1.0.100/32")}));
  dir.routes.push_back(route_via("10.2.0.0/24", "10.1.0.1"));
  dir.services.push_back(service("10.1.0.100", 80, FwdMethod::Tun, {"10.2.0.11", "10.2.0.12"}));
  t.nodes = {client, router, dir};
  for (int k = 1; k <= 2; ++k) {
    std::string name = "rs" + std::to_string(k);
    Node rs = named(name);
    rs.interfaces.push_back(on_switch(name, "eth0", "net2", {P("10.2.0.1" + std::to_string(k) + "/24")}));
    rs.routes.push_back(default_via("10.2.0.1"));
    rs.accept_ipip = true;
    rs.tunl0_addresses = {P("10.1.0.100/32")};
    rs.sysctls = hide_vip_sysctls();
    rs.sysctls.push_back({"net.ipv4.conf.all.rp_filter", "0", {}});
    rs.sysctls.push_back({"net.ipv4.conf.eth0.rp_filter", "0", {}});
    rs.sysctls.push_back({"net.ipv4.conf.tunl0.rp_filter", "0", {}});
    rs.agents.push_back(http_agent(80));
    t.nodes.push_back(rs);
  }
  return t;
}

}  // namespace labctl::test
