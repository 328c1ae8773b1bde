// Unit tier: the L7 tier of issue 24 without a kernel: three-tier's roles, graph and explain
// (L4 versus L7 in the course's words), its validation (a proxy holding the VIP without
// the ARP sysctls is warned about, as any DR real server), the handshakes check's keys, the
// nginx agent's name_path and the http agent's closes, and the judgement of a proxy out of
// source ports.
#include <regex>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "labctl/checks/proxy_ports.h"
#include "labctl/model/load.h"
#include "labctl/plan/explain.h"
#include "labctl/plan/graph.h"
#include "labctl/plan/planner.h"
#include "labctl/plan/roles.h"
#include "tests/unit/diagnostics_text.h"

namespace labctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

using test::diagnostics_text;

Topology three_tier() {
  auto r = load_topology("three-tier");
  EXPECT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_TRUE(r.diagnostics.empty()) << diagnostics_text(r);  // a demo is right: not even a warning
  return r.ok() ? *r.topology : Topology{};
}

TEST(ThreeTier, RolesNameEachTier) {
  Topology t = three_tier();
  Roles r(t);
  EXPECT_EQ(r.role_name(*t.node("director")), "director (DR)");
  EXPECT_EQ(r.role_name(*t.node("proxy1")), "real server (DR) and L7 proxy (nginx)");
  EXPECT_EQ(r.role_name(*t.node("app3")), "app server");
  EXPECT_EQ(r.role_name(*t.node("client")), "client");
}

TEST(ThreeTier, GraphDrawsTheUpstreamsWithTheirPaths) {
  Topology t = three_tier();
  const std::string dot = render_dot(t);
  EXPECT_THAT(dot, HasSubstr("\"node:proxy1\" -- \"node:app3\" [style=dashed, color=\"#7030a0\""));
  EXPECT_THAT(dot, HasSubstr("label=\"L7 /cart\""));
  EXPECT_THAT(dot, HasSubstr("\"node:proxy2\" -- \"node:app1\""));
  EXPECT_THAT(dot, HasSubstr("label=\"L7 /\""));
  EXPECT_THAT(render_mermaid(t), HasSubstr("n_proxy1 -.->|L7 /cart| n_app3"));
  // A lab without nginx has no such edge.
  auto dr = load_topology("dr-demo");
  ASSERT_TRUE(dr.ok());
  EXPECT_THAT(render_dot(*dr.topology), Not(HasSubstr("7030a0")));
}

TEST(ThreeTier, ExplainTeachesL4VersusL7AndShowsTheGeneratedConfig) {
  Topology t = three_tier();
  // Whitespace folded: explain wraps its paragraphs.
  const std::string e = std::regex_replace(render_explain(t, make_plan(t)), std::regex("\\s+"), " ");
  EXPECT_THAT(e, HasSubstr("takes no handshake"));
  EXPECT_THAT(e, HasSubstr("must first take the three-way handshake"));
  EXPECT_THAT(e, HasSubstr("/whoami it answers itself with its node's name"));
  EXPECT_THAT(e, HasSubstr("5 ms of simulated work"));
  EXPECT_THAT(e, HasSubstr("app1: app server [namespace three-tier-app1] An application server behind the proxies"));
  EXPECT_THAT(e, Not(HasSubstr("app1: app server [namespace three-tier-app1] It talks to the services' VIPs")));
  EXPECT_THAT(e, HasSubstr("An L7 proxy: it takes each client's TCP handshake"));
  // The config nginx runs is in the step's command.
  EXPECT_THAT(e, HasSubstr("location = /whoami {"));
}

TEST(ThreeTier, AProxyHoldingTheVipWithoutArpSysctlsIsWarned) {
  // A proxy that is a DR real server, its ARP sysctls left out.
  std::string lab = R"(version = 1
name = "l7vip"
[switches.front]
[switches.back]
[nodes.client]
interfaces.eth0 = { switch = "front", addresses = ["10.30.0.10/24"] }
[nodes.director]
interfaces.eth0 = { switch = "front", addresses = ["10.30.0.2/24", "10.30.0.100/32"] }
[nodes.director.services.web]
vip = "10.30.0.100"
port = 80
method = "dr"
real_servers = [{ node = "proxy1" }]
[nodes.proxy1]
interfaces.eth0 = { switch = "front", addresses = ["10.30.0.11/24"] }
interfaces.eth1 = { switch = "back", addresses = ["10.31.0.11/24"] }
lo = ["10.30.0.100/32"]
agents.web = { kind = "nginx", upstreams.shop = ["app1:8080"] }
[nodes.app1]
interfaces.eth0 = { switch = "back", addresses = ["10.31.0.21/24"] }
agents.app = { kind = "http", port = 8080 }
)";
  auto p = parse_topology(lab, "l7vip.toml");
  ASSERT_TRUE(p.ok()) << diagnostics_text(p);
  EXPECT_THAT(diagnostics_text(p), HasSubstr("proxy1"));
  EXPECT_THAT(diagnostics_text(p), HasSubstr("arp_ignore"));
}

TEST(ThreeTier, HandshakesRefusesAUdpService) {
  const std::string lab = R"(version = 1
name = "hs"
[switches.lan]
[nodes.client]
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.10/24"] }
[nodes.director]
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.2/24", "10.0.0.100/32"] }
[nodes.director.services.dns]
vip = "10.0.0.100"
port = 53
proto = "udp"
method = "dr"
real_servers = [{ node = "rs1" }]
[nodes.rs1]
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.11/24"] }
lo = ["10.0.0.100/32"]
sysctl = { "net.ipv4.conf.all.arp_ignore" = 1, "net.ipv4.conf.all.arp_announce" = 2 }
agents.dns = { kind = "echo", port = 53, proto = "udp" }
[checks.shakes]
kind = "handshakes"
from = "client"
service = "dns"
)";
  auto p = parse_topology(lab, "hs.toml");
  EXPECT_FALSE(p.ok());
  EXPECT_THAT(diagnostics_text(p), HasSubstr("handshakes counts TCP handshakes, and service dns is UDP"));
}

TEST(ProxyPorts, APortRangeHeldInTimeWaitIsTheCauseWithBothFixes) {
  ProxyPorts full{"proxy1", 40000, 40009, {{"10.31.0.23:8080", 10}, {"10.31.0.21:8080", 2}}, 0};
  ProxyPorts roomy{"proxy2", 32768, 60999, {{"10.31.0.23:8080", 300}}, 0};
  auto causes = proxy_port_causes({full, roomy});
  ASSERT_EQ(causes.size(), 1u);
  EXPECT_EQ(causes[0].node, "proxy1");
  EXPECT_THAT(causes[0].what, HasSubstr("proxy1 holds 10 connections to 10.31.0.23:8080 in TIME_WAIT"));
  EXPECT_THAT(causes[0].what, HasSubstr("ip_local_port_range 40000-40009 gives it 10 source ports"));
  EXPECT_THAT(causes[0].what, HasSubstr("EADDRNOTAVAIL"));
  EXPECT_THAT(causes[0].fix, HasSubstr("[nodes.proxy1.sysctl] net.ipv4.ip_local_port_range = \"32768 60999\""));
  EXPECT_THAT(causes[0].fix, HasSubstr("keepalive = 16"));
  // Nine of ten held, one in flight: out of ports already. Eight: not yet.
  EXPECT_EQ(proxy_port_causes({{"p", 40000, 40009, {{"a:1", 9}}, 0}}).size(), 1u);
  EXPECT_TRUE(proxy_port_causes({{"p", 40000, 40009, {{"a:1", 8}}, 0}}).empty());
}

}  // namespace
}  // namespace labctl
