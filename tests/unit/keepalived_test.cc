// Unit tier: keepalived agents. The schema (generated or verbatim config, the services it
// manages), the config generated for ha-demo's directors, the plan (keepalived, not labctl,
// programs managed services; the agent runs under supervision with its config in argv) and
// the teaching warning for a pair that cannot hear each other (split brain).
#include "labctl/model/keepalived.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <variant>

#include "labctl/checks/diagnose.h"
#include "labctl/model/builtins.h"
#include "labctl/model/load.h"
#include "labctl/plan/agent.h"
#include "labctl/plan/keepalived.h"
#include "labctl/plan/plan.h"
#include "labctl/plan/planner.h"
#include "tests/unit/diagnostics_text.h"

namespace labctl {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

using test::diagnostics_text;

Topology load_ok(const std::string& name) {
  auto r = load_topology(name);
  EXPECT_TRUE(r.ok()) << diagnostics_text(r);
  return r.topology ? *r.topology : Topology{};
}

const Agent& agent_of(const Topology& t, const std::string& node, const std::string& agent) {
  for (const auto& a : t.node(node)->agents)
    if (a.name == agent) return a;
  throw std::runtime_error("no agent " + node + ":" + agent);
}

// A small lab: a DR director pair sharing VIP 10.0.0.100; `agents` is appended.
std::string lab(const std::string& dir1_agent, const std::string& dir2_agent = "",
                const std::string& extra = "") {
  return R"(version = 1
name = "k"
[switches.lan]
[nodes.client]
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.10/24"] }
[nodes.d1]
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.2/24"] }
[nodes.d1.services.web]
vip = "10.0.0.100"
port = 80
scheduler = "wrr"
persistence = 60
netmask = 24
real_servers = [{ node = "rs1", weight = 3 }]
[nodes.d2]
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.3/24"] }
[nodes.rs1]
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.11/24"] }
lo = ["10.0.0.100/32"]
sysctl."net.ipv4.conf.all.arp_ignore" = 1
sysctl."net.ipv4.conf.all.arp_announce" = 2
agents.web = { kind = "http" }
)" + dir1_agent +
         dir2_agent + extra;
}

const std::string kD1 = R"([nodes.d1.agents.ha]
kind = "keepalived"
interface = "eth0"
state = "MASTER"
priority = 150
virtual_router_id = 7
advert_int = 0.5
vips = ["10.0.0.100/32"]
services.web = { check = "http", path = "/health", status = 204, delay_loop = 2, connect_timeout = 1.5, retry = 2, sorry_server = "10.0.0.3:8080", inhibit_on_failure = true }
)";
const std::string kD2 = R"([nodes.d2.agents.ha]
kind = "keepalived"
interface = "eth0"
state = "BACKUP"
priority = 100
virtual_router_id = 7
advert_int = 0.5
vips = ["10.0.0.100/32"]
services = ["web"]
)";

TEST(Keepalived, ParsesTheVrrpInstanceAndTheServicesItManages) {
  auto r = parse_topology(lab(kD1, kD2), "k.toml");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const Agent& a = agent_of(*r.topology, "d1", "ha");
  EXPECT_EQ(a.kind, "keepalived");
  ASSERT_TRUE(a.keepalived && a.keepalived->vrrp);
  const VrrpInstance& v = *a.keepalived->vrrp;
  EXPECT_EQ(v.interface, "eth0");
  EXPECT_TRUE(v.master);
  EXPECT_EQ(v.priority, 150);
  EXPECT_EQ(v.virtual_router_id, 7);
  EXPECT_DOUBLE_EQ(v.advert_int, 0.5);
  ASSERT_EQ(v.vips.size(), 1u);
  EXPECT_EQ(v.vips[0].str(), "10.0.0.100/32");
  ASSERT_EQ(a.keepalived->services.size(), 1u);
  const KeepalivedService& s = a.keepalived->services[0];
  EXPECT_EQ(s.check, "http");
  EXPECT_EQ(s.path, "/health");
  EXPECT_EQ(s.status, 204);
  EXPECT_EQ(s.retry, 2);
  ASSERT_TRUE(s.sorry_server);
  EXPECT_EQ(s.sorry_server->str(), "10.0.0.3");
  EXPECT_EQ(s.sorry_port, 8080);
  EXPECT_TRUE(s.inhibit_on_failure);
  // A list of names takes every option's default.
  const Agent& b = agent_of(*r.topology, "d2", "ha");
  ASSERT_EQ(b.keepalived->services.size(), 1u);
  EXPECT_EQ(b.keepalived->services[0].check, "tcp");
  EXPECT_FALSE(b.keepalived->vrrp->master);
  // The floating VIP is no address of d1, and that is no mistake: no VIP warning.
  EXPECT_THAT(diagnostics_text(r), Not(HasSubstr("is not an address of director")));
  EXPECT_TRUE(keepalived_managed(*r.topology, "web"));
  EXPECT_EQ(keepalived_agents_of(*r.topology, "web").size(), 2u);
}

TEST(Keepalived, GeneratesVrrpAndVirtualServerBlocks) {
  auto r = parse_topology(lab(kD1, kD2), "k.toml");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const Topology& t = *r.topology;
  std::string conf = keepalived_config(t, *t.node("d1"), agent_of(t, "d1", "ha"));
  EXPECT_THAT(conf, HasSubstr("router_id k-d1\n"));
  EXPECT_THAT(
      conf,
      HasSubstr("vrrp_instance VI_ha {\n  state MASTER\n  interface eth0\n  virtual_router_id 7\n"
                "  priority 150\n  advert_int 0.5\n  virtual_ipaddress {\n"
                "    10.0.0.100/32 dev eth0\n  }\n}\n"));
  EXPECT_THAT(conf, HasSubstr("virtual_server 10.0.0.100 80 {\n"));
  EXPECT_THAT(conf, HasSubstr("  lb_algo wrr\n  protocol TCP\n"));
  EXPECT_THAT(conf,
              HasSubstr("  persistence_timeout 60\n  persistence_granularity 255.255.255.0\n"));
  EXPECT_THAT(conf, HasSubstr("  sorry_server 10.0.0.3 8080\n  sorry_server_lvs_method DR\n"
                              "  sorry_server_inhibit\n"));
  EXPECT_THAT(
      conf, HasSubstr("  real_server 10.0.0.11 80 {\n    weight 3\n    lvs_method DR\n"
                      "    inhibit_on_failure\n    HTTP_GET {\n      url {\n        path /health\n"
                      "        status_code 204\n      }\n      connect_timeout 1.5\n      retry 2\n"
                      "      delay_before_retry 2\n    }\n  }\n"));
  EXPECT_THAT(conf, Not(HasSubstr("vrrp_sync_group")));
  // d2 lists the service defined on d1 by name: the same service, TCP_CHECK by default.
  std::string conf2 = keepalived_config(t, *t.node("d2"), agent_of(t, "d2", "ha"));
  EXPECT_THAT(conf2, HasSubstr("state BACKUP"));
  EXPECT_THAT(conf2, HasSubstr("virtual_server 10.0.0.100 80 {"));
  EXPECT_THAT(conf2, HasSubstr("    TCP_CHECK {\n      connect_timeout 1\n      retry 1\n"));
  EXPECT_THAT(conf2, Not(HasSubstr("inhibit_on_failure")));
}

TEST(Keepalived, GatewayInstanceIsSyncedWithTheMainOne) {
  std::string d1 = R"([nodes.d1.agents.ha]
kind = "keepalived"
interface = "eth0"
state = "MASTER"
priority = 150
virtual_router_id = 7
vips = ["10.0.0.100/32"]
gateway = { interface = "eth0", virtual_router_id = 8, vips = ["10.0.0.1/24"] }
services.web = { check = "udp" }
)";
  // A UDP service with a UDP_CHECK.
  std::string text = lab(d1);
  text.replace(text.find("port = 80\n"), 10, "port = 53\nproto = \"udp\"\n");
  auto r = parse_topology(text, "k.toml");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const Topology& t = *r.topology;
  std::string conf = keepalived_config(t, *t.node("d1"), agent_of(t, "d1", "ha"));
  EXPECT_THAT(conf,
              HasSubstr("vrrp_sync_group SG_ha {\n  group {\n    VI_ha\n    VI_gw_ha\n  }\n}\n"));
  // The gateway instance follows the main one's state and priority.
  EXPECT_THAT(
      conf,
      HasSubstr(
          "vrrp_instance VI_gw_ha {\n  state MASTER\n  interface eth0\n  virtual_router_id 8\n"
          "  priority 150\n"));
  EXPECT_THAT(conf, HasSubstr("    10.0.0.1/24 dev eth0\n"));
  EXPECT_THAT(conf, HasSubstr("  protocol UDP\n"));
  EXPECT_THAT(conf, HasSubstr("    UDP_CHECK {\n"));
}

TEST(Keepalived, EveryKeepalivedDirectorMustReachTheDrRealServers) {
  // d2 moved to a switch of its own: it cannot forward to rs1 by MAC.
  std::string text = lab(kD1, kD2);
  const std::string from = "[nodes.d2]\ninterfaces.eth0 = { switch = \"lan\"";
  text.replace(text.find(from), from.size(),
               "[switches.far]\n[nodes.d2]\ninterfaces.eth0 = { switch = \"far\"");
  auto r = parse_topology(text, "k.toml");
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(
      diagnostics_text(r),
      HasSubstr(
          "keepalived agent d2:ha programs service web, whose DR real server rs1 shares no L2 "
          "segment with d2"));
}

TEST(Keepalived, VerbatimConfigIsUsedAsGiven) {
  std::string d1 = R"([nodes.d1.agents.ha]
kind = "keepalived"
config = """
vrrp_instance X {
  state MASTER
}"""
services = ["web"]
)";
  auto r = parse_topology(lab(d1), "k.toml");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const Topology& t = *r.topology;
  EXPECT_EQ(keepalived_config(t, *t.node("d1"), agent_of(t, "d1", "ha")),
            "vrrp_instance X {\n  state MASTER\n}\n");
  EXPECT_TRUE(keepalived_managed(t, "web"));
}

TEST(Keepalived, ManagedServicesAreNotProgrammedByLabctl) {
  auto r = parse_topology(lab(kD1, kD2), "k.toml");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  Plan p = make_plan(*r.topology);
  int ipvs_steps = 0, keepalived_agents = 0;
  bool server_started = false;
  for (const auto& ps : p.steps) {
    if (const auto* s = std::get_if<step::StartAgent>(&ps.step)) {
      // keepalived health-checks the real servers: they start (and listen) first.
      if (s->agent.kind == "http") server_started = true;
      if (s->agent.kind == "keepalived") {
        EXPECT_TRUE(server_started) << s->node;
      }
    }
    if (std::holds_alternative<step::AddIpvsService>(ps.step) ||
        std::holds_alternative<step::AddIpvsDest>(ps.step))
      ++ipvs_steps;
    // Nor is the floating VIP an address labctl adds to a director (rs1 holds it on lo: DR).
    if (const auto* a = std::get_if<step::AddAddress>(&ps.step); a && ps.node != "rs1") {
      EXPECT_NE(a->addr.str(), "10.0.0.100/32") << a->dev << " " << ps.node;
    }
    if (const auto* s = std::get_if<step::StartAgent>(&ps.step);
        s && s->agent.kind == "keepalived") {
      ++keepalived_agents;
      // The config travels with the step, so up and the dry-run script run the same one.
      EXPECT_THAT(s->agent.params.at("config"), HasSubstr("vrrp_instance VI_ha"));
      auto argv = agent_argv(*s);
      ASSERT_GE(argv.size(), 6u);
      EXPECT_EQ(argv[1], "keepalived");
      EXPECT_EQ(argv[2], "--dir");
      EXPECT_EQ(argv[3], script_dir("k") + "/" + s->node + "/ha.keepalived");
      EXPECT_EQ(argv[5], s->agent.params.at("config"));
      auto sup = supervised_argv(s->agent, s->node, "labagent", "/state.json", argv);
      EXPECT_NE(std::find(sup.begin(), sup.end(), "--stop-grace-ms"), sup.end());
      EXPECT_EQ(std::find(sup.begin(), sup.end(), "--listen"), sup.end());
    }
  }
  // The rs1 lo address is there; the service is not.
  EXPECT_EQ(ipvs_steps, 0);
  EXPECT_EQ(keepalived_agents, 2);
}

TEST(Keepalived, MasterIsReadyHoldingItsVipAndBackupOnceVrrpWouldHaveLetItClaimIt) {
  auto r = parse_topology(lab(kD1, kD2), "k.toml");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const Agent& master = agent_of(*r.topology, "d1", "ha");
  const Agent& backup = agent_of(*r.topology, "d2", "ha");
  EXPECT_EQ(agent_ready_address(master), "10.0.0.100");
  EXPECT_EQ(agent_ready_address(backup), "");
  // advert_int 0.5, priority 100: 3 * 0.5 + 156/256 * 0.5 = 1.8046875 s, plus start-up.
  EXPECT_EQ(agent_alive_time(backup), std::chrono::milliseconds(1804) + kKeepalivedStartup);
  EXPECT_EQ(agent_alive_time(master), kAgentAliveTime);
  auto sup = supervised_argv(backup, "d2", "labagent", "/s.json", {"x"});
  auto it = std::find(sup.begin(), sup.end(), "--alive-ms");
  ASSERT_NE(it, sup.end());
  EXPECT_EQ(*(it + 1),
            std::to_string((std::chrono::milliseconds(1804) + kKeepalivedStartup).count()));
  auto msup = supervised_argv(master, "d1", "labagent", "/s.json", {"x"});
  auto at = std::find(msup.begin(), msup.end(), "--ready-address");
  ASSERT_NE(at, msup.end());
  EXPECT_EQ(*(at + 1), "10.0.0.100");
  // Its ready timeout leaves room for the first election.
  EXPECT_EQ(agent_ready_timeout(master), kAgentReadyTimeout + std::chrono::milliseconds(1500));
  // Other agents keep the defaults.
  const Agent& web = agent_of(*r.topology, "rs1", "web");
  EXPECT_EQ(agent_ready_timeout(web), kAgentReadyTimeout);
  EXPECT_EQ(agent_alive_time(web), kAgentAliveTime);
}

TEST(Keepalived, KeepalivedRunsInTheForegroundWithItsOwnPidFiles) {
  auto argv = keepalived_command("/usr/sbin/keepalived", "/run/x/ka");
  EXPECT_THAT(argv,
              ElementsAre("/usr/sbin/keepalived", "--dont-fork", "--log-console", "--log-detail",
                          "--no-syslog", "--use-file", "/run/x/ka/keepalived.conf", "--pid",
                          "/run/x/ka/keepalived.pid", "--vrrp_pid", "/run/x/ka/vrrp.pid",
                          "--checkers_pid", "/run/x/ka/checkers.pid"));
}

TEST(Keepalived, HaDemoIsBuiltInAndValid) {
  ASSERT_NE(find_builtin("ha-demo"), nullptr);
  auto r = load_topology("ha-demo");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_TRUE(r.diagnostics.empty()) << diagnostics_text(r);
  const Topology& t = *r.topology;
  std::string c1 = keepalived_config(t, *t.node("dir1"), agent_of(t, "dir1", "vrrp"));
  std::string c2 = keepalived_config(t, *t.node("dir2"), agent_of(t, "dir2", "vrrp"));
  EXPECT_THAT(c1,
              AllOf(HasSubstr("state MASTER"), HasSubstr("priority 150"), HasSubstr("HTTP_GET")));
  EXPECT_THAT(c2, AllOf(HasSubstr("state BACKUP"), HasSubstr("priority 100"),
                        HasSubstr("virtual_server 10.10.0.100 80")));
  std::vector<std::string> kinds;
  for (const auto& c : t.checks) kinds.push_back(c.kind);
  EXPECT_THAT(kinds, ::testing::IsSupersetOf({std::string("failover"), std::string("health")}));
}

TEST(Keepalived, PairOnDifferentSegmentsIsWarnedAsSplitBrain) {
  auto r = load_topology("ha-demo-splitbrain");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  bool warned = false;
  for (const auto& d : r.diagnostics)
    if (d.severity == Diagnostic::Severity::Warning &&
        d.message.find("split brain") != std::string::npos) {
      warned = true;
      EXPECT_THAT(d.message, HasSubstr("dir1:vrrp and dir2:vrrp share virtual_router_id 51"));
      EXPECT_THAT(d.message, HasSubstr("eth1 on switch:sync"));
      EXPECT_THAT(d.hint, HasSubstr("interface facing the clients"));
    }
  EXPECT_TRUE(warned) << diagnostics_text(r);
  // The same pair on one segment: no such warning.
  EXPECT_THAT(diagnostics_text(load_topology("ha-demo")), Not(HasSubstr("split brain")));
}

TEST(Keepalived, SplitBrainCauseNamesTheRouterOnTheWrongSegmentAndItsFix) {
  Topology t = load_ok("ha-demo-splitbrain");
  const Check* fo = nullptr;
  for (const auto& c : t.checks)
    if (c.kind == "failover") fo = &c;
  ASSERT_NE(fo, nullptr);
  auto causes = split_brain_causes(t, *fo, {"dir1", "dir2"});
  ASSERT_EQ(causes.size(), 1u);
  EXPECT_EQ(causes[0].node, "dir2");
  EXPECT_THAT(causes[0].what,
              AllOf(HasSubstr("keepalived dir2:vrrp runs VRRP router 51 on eth1 (switch:sync)"),
                    HasSubstr("not on eth0 (switch:lan)"), HasSubstr("split brain")));
  EXPECT_EQ(causes[0].fix, "[nodes.dir2.agents.vrrp] interface = \"eth0\"");
  // One holder is no split brain.
  EXPECT_TRUE(split_brain_causes(t, *fo, {"dir1"}).empty());
  // ha-demo's pair shares the client's segment: nothing to blame even if both held it.
  Topology ok = load_ok("ha-demo");
  for (const auto& c : ok.checks)
    if (c.kind == "failover") {
      EXPECT_TRUE(split_brain_causes(ok, c, {"dir1", "dir2"}).empty());
    }
}

}  // namespace
}  // namespace labctl
