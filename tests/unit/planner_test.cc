#include "labctl/plan/planner.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/demo_labs.h"

namespace labctl {
namespace {

using test::dr_lab;
using test::nat_lab;
using test::tun_lab;
using ::testing::HasSubstr;
using ::testing::Not;

std::vector<std::pair<std::string, std::string>> described(const Plan& p) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& s : p.steps) out.emplace_back(s.node, describe(s.step));
  return out;
}

/// Index of the first step for which pred holds; fails the test if there is none.
template <class Pred>
std::size_t first(const Plan& p, Pred pred) {
  for (std::size_t i = 0; i < p.steps.size(); ++i)
    if (pred(p.steps[i])) return i;
  ADD_FAILURE() << "no such step";
  return p.steps.size();
}

template <class Pred>
std::size_t last(const Plan& p, Pred pred) {
  for (std::size_t i = p.steps.size(); i-- > 0;)
    if (pred(p.steps[i])) return i;
  ADD_FAILURE() << "no such step";
  return 0;
}

template <class T>
bool is(const PlannedStep& s) {
  return std::holds_alternative<T>(s.step);
}

const PlannedStep& find_step(const Plan& p, const std::string& description) {
  for (const auto& s : p.steps)
    if (describe(s.step) == description) return s;
  throw std::runtime_error("no step: " + description);
}

TEST(Planner, DrLabIsExactlyTheseStepsInThisOrder) {
  std::vector<std::pair<std::string, std::string>> want = {
      {"client", "create namespace dr-demo-client"},
      {"director", "create namespace dr-demo-director"},
      {"rs1", "create namespace dr-demo-rs1"},
      {"rs2", "create namespace dr-demo-rs2"},
      {"lan", "create namespace dr-demo-lan"},
      {"client", "set net.ipv6.conf.default.disable_ipv6=1 in dr-demo-client"},
      {"director", "set net.ipv6.conf.default.disable_ipv6=1 in dr-demo-director"},
      {"rs1", "set net.ipv6.conf.default.disable_ipv6=1 in dr-demo-rs1"},
      {"rs1", "set net.ipv4.conf.all.arp_ignore=1 in dr-demo-rs1"},
      {"rs1", "set net.ipv4.conf.all.arp_announce=2 in dr-demo-rs1"},
      {"rs2", "set net.ipv6.conf.default.disable_ipv6=1 in dr-demo-rs2"},
      {"rs2", "set net.ipv4.conf.all.arp_ignore=1 in dr-demo-rs2"},
      {"rs2", "set net.ipv4.conf.all.arp_announce=2 in dr-demo-rs2"},
      {"lan", "set net.ipv6.conf.default.disable_ipv6=1 in dr-demo-lan"},
      {"lan", "create bridge lan in dr-demo-lan"},
      {"client", "create veth eth0 in dr-demo-client (peer client-eth0 in dr-demo-lan)"},
      {"director", "create veth eth0 in dr-demo-director (peer director-eth0 in dr-demo-lan)"},
      {"rs1", "create veth eth0 in dr-demo-rs1 (peer rs1-eth0 in dr-demo-lan)"},
      {"rs2", "create veth eth0 in dr-demo-rs2 (peer rs2-eth0 in dr-demo-lan)"},
      {"lan", "attach client-eth0 to bridge lan in dr-demo-lan"},
      {"lan", "attach director-eth0 to bridge lan in dr-demo-lan"},
      {"lan", "attach rs1-eth0 to bridge lan in dr-demo-lan"},
      {"lan", "attach rs2-eth0 to bridge lan in dr-demo-lan"},
      {"rs1", "set net.ipv4.conf.eth0.arp_ignore=1 in dr-demo-rs1"},
      {"rs1", "set net.ipv4.conf.eth0.arp_announce=2 in dr-demo-rs1"},
      {"rs2", "set net.ipv4.conf.eth0.arp_ignore=1 in dr-demo-rs2"},
      {"rs2", "set net.ipv4.conf.eth0.arp_announce=2 in dr-demo-rs2"},
      {"lan", "bring up client-eth0 in dr-demo-lan"},
      {"lan", "bring up director-eth0 in dr-demo-lan"},
      {"lan", "bring up rs1-eth0 in dr-demo-lan"},
      {"lan", "bring up rs2-eth0 in dr-demo-lan"},
      {"lan", "bring up lan in dr-demo-lan"},
      {"client", "bring up lo in dr-demo-client"},
      {"client", "bring up eth0 in dr-demo-client"},
      {"director", "bring up lo in dr-demo-director"},
      {"director", "bring up eth0 in dr-demo-director"},
      {"rs1", "bring up lo in dr-demo-rs1"},
      {"rs1", "bring up eth0 in dr-demo-rs1"},
      {"rs2", "bring up lo in dr-demo-rs2"},
      {"rs2", "bring up eth0 in dr-demo-rs2"},
      {"client", "add address 10.0.0.10/24 to eth0 in dr-demo-client"},
      {"director", "add address 10.0.0.2/24 to eth0 in dr-demo-director"},
      {"director", "add address 10.0.0.100/32 to eth0 in dr-demo-director"},
      {"rs1", "add address 10.0.0.11/24 to eth0 in dr-demo-rs1"},
      {"rs1", "add address 10.0.0.100/32 to lo in dr-demo-rs1"},
      {"rs2", "add address 10.0.0.12/24 to eth0 in dr-demo-rs2"},
      {"rs2", "add address 10.0.0.100/32 to lo in dr-demo-rs2"},
      {"director", "add IPVS service tcp 10.0.0.100:80 in dr-demo-director"},
      {"director", "add real server 10.0.0.11 (dr) to tcp 10.0.0.100:80 in dr-demo-director"},
      {"director", "add real server 10.0.0.12 (dr) to tcp 10.0.0.100:80 in dr-demo-director"},
      {"rs1", "start agent web (http) in dr-demo-rs1"},
      {"rs2", "start agent web (http) in dr-demo-rs2"},
  };
  EXPECT_EQ(described(make_plan(dr_lab())), want);
}

TEST(Planner, EveryStepBelongsToANodeOrSwitchOfTheLab) {
  for (const auto& t : {dr_lab(), nat_lab(), tun_lab()}) {
    Plan p = make_plan(t);
    EXPECT_EQ(p.lab, t.name);
    for (const auto& s : p.steps)
      EXPECT_TRUE(t.node(s.node) || t.find_switch(s.node)) << describe(s.step);
  }
}

TEST(Planner, OrdersPhasesSoTheKernelAcceptsThem) {
  for (const auto& t : {dr_lab(), nat_lab(), tun_lab()}) {
    SCOPED_TRACE(t.name);
    Plan p = make_plan(t);
    EXPECT_LT(last(p, is<step::CreateNetns>), first(p, is<step::CreateBridge>));
    EXPECT_LT(last(p, is<step::CreateBridge>), first(p, is<step::CreateVeth>));
    EXPECT_LT(last(p, is<step::CreateVeth>), first(p, is<step::SetMaster>));
    EXPECT_LT(last(p, is<step::SetMaster>), first(p, [](const PlannedStep& s) {
                return is<step::LinkUp>(s) && std::get<step::LinkUp>(s.step).dev != s.node;
              }));
    EXPECT_LT(last(p, is<step::AddAddress>), first(p, is<step::AddIpvsService>));
    EXPECT_LT(last(p, is<step::AddIpvsDest>), first(p, is<step::StartAgent>));
    EXPECT_TRUE(is<step::StartAgent>(p.steps.back()));
  }
}

TEST(Planner, RoutesComeAfterEveryAddressSoGatewaysAreReachable) {
  for (const auto& t : {nat_lab(), tun_lab()}) {
    Plan p = make_plan(t);
    EXPECT_LT(last(p, is<step::AddAddress>), first(p, is<step::AddRoute>)) << t.name;
  }
}

TEST(Planner, EachServiceIsFollowedByItsRealServers) {
  Plan p = make_plan(nat_lab());
  std::size_t svc = first(p, is<step::AddIpvsService>);
  ASSERT_LT(svc + 2, p.steps.size());
  EXPECT_TRUE(is<step::AddIpvsDest>(p.steps[svc + 1]));
  EXPECT_TRUE(is<step::AddIpvsDest>(p.steps[svc + 2]));
  EXPECT_EQ(describe(p.steps[svc + 1].step),
            "add real server 10.1.0.11 (nat) to tcp 172.16.0.100:80 in nat-demo-director");
}

TEST(Planner, Tunl0ExistsBeforeItsSysctlLinkAndAddress) {
  Plan p = make_plan(tun_lab());
  std::size_t ipip = first(p, [](const PlannedStep& s) {
    return is<step::EnableIpip>(s) && s.node == "rs1";
  });
  auto tunl0_step = [](const PlannedStep& s) {
    if (s.node != "rs1") return false;
    if (const auto* x = std::get_if<step::SetSysctl>(&s.step))
      return x->key == "net.ipv4.conf.tunl0.rp_filter";
    if (const auto* x = std::get_if<step::LinkUp>(&s.step)) return x->dev == "tunl0";
    if (const auto* x = std::get_if<step::AddAddress>(&s.step)) return x->dev == "tunl0";
    return false;
  };
  EXPECT_LT(ipip, first(p, tunl0_step));
}

TEST(Planner, NamespaceWideSysctlsPrecedeInterfacesSoDefaultReachesThem) {
  Topology t = dr_lab();
  t.nodes[0].sysctls.push_back({"net.ipv4.conf.default.rp_filter", "0", {}});
  Plan p = make_plan(t);
  std::size_t dflt = first(p, [](const PlannedStep& s) {
    const auto* x = std::get_if<step::SetSysctl>(&s.step);
    return x && x->key == "net.ipv4.conf.default.rp_filter";
  });
  EXPECT_LT(dflt, first(p, is<step::CreateVeth>));
}

TEST(Planner, IpvsSysctlsWaitForTheFirstService) {
  Topology t = dr_lab();
  t.nodes[1].sysctls.push_back({"net.ipv4.vs.conntrack", "1", {}});
  Plan p = make_plan(t);
  std::size_t vs = first(p, [](const PlannedStep& s) {
    const auto* x = std::get_if<step::SetSysctl>(&s.step);
    return x && x->key == "net.ipv4.vs.conntrack";
  });
  EXPECT_GT(vs, last(p, is<step::AddIpvsDest>));
  EXPECT_THAT(p.steps[vs].why, HasSubstr("conntrack"));
}

TEST(SysctlPhase, ClassifiesByWhatMustExistFirst) {
  EXPECT_EQ(sysctl_phase("net.ipv4.ip_forward"), SysctlPhase::Namespace);
  EXPECT_EQ(sysctl_phase("net.ipv4.conf.all.arp_ignore"), SysctlPhase::Namespace);
  EXPECT_EQ(sysctl_phase("net.ipv6.conf.default.forwarding"), SysctlPhase::Namespace);
  EXPECT_EQ(sysctl_phase("net.ipv4.conf.eth0.arp_ignore"), SysctlPhase::Device);
  EXPECT_EQ(sysctl_phase("net.ipv4.conf.tunl0.rp_filter"), SysctlPhase::Device);
  EXPECT_EQ(sysctl_phase("net.ipv4.neigh.eth0.gc_stale_time"), SysctlPhase::Device);
  EXPECT_EQ(sysctl_phase("net.ipv4.vs.conntrack"), SysctlPhase::Ipvs);
}

TEST(Planner, NodeToNodeLinkIsOneVethWithBothEndsNamed) {
  Topology t;
  t.name = "p2p";
  Node a = test::named("a"), b = test::named("b");
  Interface ai, bi;
  ai.name = "to-b";
  ai.mtu = 9000;
  ai.mac = "02:00:00:00:00:0a";
  ai.peer_node = "b";
  ai.peer_ifname = "to-a";
  bi.name = "to-a";
  bi.mac = "02:00:00:00:00:0b";
  bi.peer_node = "a";
  bi.peer_ifname = "to-b";
  a.interfaces = {ai};
  b.interfaces = {bi};
  t.nodes = {a, b};
  Plan p = make_plan(t);
  std::vector<const step::CreateVeth*> veths;
  for (const auto& s : p.steps)
    if (const auto* v = std::get_if<step::CreateVeth>(&s.step)) veths.push_back(v);
  ASSERT_EQ(veths.size(), 1u);
  EXPECT_EQ(veths[0]->ns, "p2p-a");
  EXPECT_EQ(veths[0]->name, "to-b");
  EXPECT_EQ(veths[0]->peer_ns, "p2p-b");
  EXPECT_EQ(veths[0]->peer_name, "to-a");
  EXPECT_EQ(veths[0]->mtu, 9000);
  EXPECT_EQ(veths[0]->mac, "02:00:00:00:00:0a");
  EXPECT_EQ(veths[0]->peer_mac, "02:00:00:00:00:0b");
  // Both ends come up, each in its own node.
  EXPECT_NO_THROW(find_step(p, "bring up to-b in p2p-a"));
  EXPECT_EQ(find_step(p, "bring up to-a in p2p-b").node, "b");
}

TEST(Planner, IPv6NodesGetNoDadBeforeTheirInterfacesUnlessTheyChoose) {
  Topology t;
  t.name = "v6";
  Node a = test::named("a"), b = test::named("b"), c = test::named("c");
  Interface i;
  i.name = "eth0";
  i.sw = "lan";
  i.addresses = {*IpPrefix::parse("fd00::1/64")};
  a.interfaces = {i};
  i.addresses = {*IpPrefix::parse("10.0.0.2/24")};
  b.interfaces = {i};
  i.addresses = {*IpPrefix::parse("fd00::3/64")};
  c.interfaces = {i};
  c.sysctls = {{"net.ipv6.conf.default.accept_dad", "1", {}}};
  t.nodes = {a, b, c};
  t.switches = {Switch{.name = "lan"}};
  Plan p = make_plan(t);
  const auto& dad = find_step(p, "set net.ipv6.conf.default.accept_dad=0 in v6-a");
  EXPECT_THAT(dad.why, HasSubstr("duplicate address detection"));
  EXPECT_LT(first(p, [](const PlannedStep& s) {
              return describe(s.step) == "set net.ipv6.conf.all.accept_dad=0 in v6-a";
            }),
            first(p, is<step::CreateVeth>));
  for (const auto& s : p.steps) {
    EXPECT_THAT(describe(s.step), Not(HasSubstr("accept_dad=0 in v6-b"))) << "b has no IPv6";
    EXPECT_THAT(describe(s.step), Not(HasSubstr("accept_dad=0 in v6-c"))) << "c chose itself";
  }
}

TEST(Planner, NodesWithoutIPv6GetNoneOnTheirInterfacesUnlessTheyChoose) {
  Topology t;
  t.name = "v4";
  Node a = test::named("a"), b = test::named("b"), c = test::named("c");
  Interface i;
  i.name = "eth0";
  i.sw = "lan";
  i.addresses = {*IpPrefix::parse("10.0.0.1/24")};
  a.interfaces = {i};
  i.addresses = {*IpPrefix::parse("fd00::2/64")};
  b.interfaces = {i};
  i.addresses = {*IpPrefix::parse("10.0.0.3/24")};
  c.interfaces = {i};
  c.sysctls = {{"net.ipv6.conf.all.disable_ipv6", "0", {}}};
  Node d = test::named("d");  // IPv4 addresses, but an IPv6 route via a link-local gateway
  d.interfaces = {i};
  Route r;
  r.family = AF_INET6;
  r.via = IpAddr::parse("fe80::1");
  r.dev = "eth0";
  d.routes = {r};
  t.nodes = {a, b, c, d};
  t.switches = {Switch{.name = "lan"}};
  Plan p = make_plan(t);
  const auto& off = find_step(p, "set net.ipv6.conf.default.disable_ipv6=1 in v4-a");
  EXPECT_THAT(off.why, HasSubstr("no IPv6 addresses"));
  EXPECT_LT(first(p, [](const PlannedStep& s) {
              return describe(s.step) == "set net.ipv6.conf.default.disable_ipv6=1 in v4-a";
            }),
            first(p, is<step::CreateVeth>))
      << "conf.default must be set before the interfaces it should reach exist";
  for (const auto& s : p.steps) {
    EXPECT_THAT(describe(s.step), Not(HasSubstr("disable_ipv6=1 in v4-b"))) << "b has IPv6";
    EXPECT_THAT(describe(s.step), Not(HasSubstr("disable_ipv6=1 in v4-c"))) << "c chose itself";
    EXPECT_THAT(describe(s.step), Not(HasSubstr("disable_ipv6=1 in v4-d"))) << "d routes IPv6";
  }
}

TEST(Planner, ABridgeComesUpAfterItsPortsWithoutMulticastSnooping) {
  Plan p = make_plan(dr_lab());
  size_t bridge_up = first(p, [](const PlannedStep& s) {
    return describe(s.step) == "bring up lan in dr-demo-lan";
  });
  for (const auto& port : {"client-eth0", "director-eth0", "rs1-eth0", "rs2-eth0"}) {
    const std::string d = std::string("bring up ") + port + " in dr-demo-lan";
    EXPECT_LT(first(p, [&](const PlannedStep& s) { return describe(s.step) == d; }), bridge_up);
  }
  EXPECT_THAT(shell_command(find_step(p, "create bridge lan in dr-demo-lan").step),
              HasSubstr("type bridge mcast_snooping 0"));
  EXPECT_THAT(find_step(p, "create bridge lan in dr-demo-lan").why, HasSubstr("floods multicast"));
}

TEST(Planner, SwitchMtuReachesPortsThatDoNotSetTheirOwn) {
  Topology t = dr_lab();
  t.switches[0].mtu = 9000;
  t.nodes[0].interfaces[0].mtu = 1400;
  Plan p = make_plan(t);
  std::vector<int> mtus;
  for (const auto& s : p.steps)
    if (const auto* v = std::get_if<step::CreateVeth>(&s.step)) mtus.push_back(v->mtu);
  EXPECT_EQ(mtus, (std::vector<int>{1400, 9000, 9000, 9000}));
  const auto& br = std::get<step::CreateBridge>(find_step(p, "create bridge lan in dr-demo-lan").step);
  EXPECT_EQ(br.mtu, 9000);
}

// The whys teach the course ideas; they are derived from the topology, not from names.

TEST(PlannerWhy, DrRealServerArpSettingsExplainTheVipOnLo) {
  Plan p = make_plan(dr_lab());
  const auto& ign = find_step(p, "set net.ipv4.conf.all.arp_ignore=1 in dr-demo-rs1");
  EXPECT_THAT(ign.why, HasSubstr("holds the VIP 10.0.0.100 on lo"));
  EXPECT_THAT(ign.why, HasSubstr("bypassing"));
  const auto& ann = find_step(p, "set net.ipv4.conf.eth0.arp_announce=2 in dr-demo-rs1");
  EXPECT_THAT(ann.why, HasSubstr("never the VIP 10.0.0.100"));
  const auto& lo = find_step(p, "add address 10.0.0.100/32 to lo in dr-demo-rs1");
  EXPECT_THAT(lo.why, HasSubstr("/32"));
  EXPECT_THAT(lo.why, HasSubstr("only the MAC was rewritten"));
  const auto& vip = find_step(p, "add address 10.0.0.100/32 to eth0 in dr-demo-director");
  EXPECT_THAT(vip.why, HasSubstr("LOCAL_IN"));
  const auto& dest =
      find_step(p, "add real server 10.0.0.11 (dr) to tcp 10.0.0.100:80 in dr-demo-director");
  EXPECT_THAT(dest.why, HasSubstr("rewrites the destination MAC"));
  EXPECT_THAT(find_step(p, "create bridge lan in dr-demo-lan").why, HasSubstr("LVS-DR"));
}

TEST(PlannerWhy, RolesComeFromServicesAndAddressesNotNames) {
  Topology t = dr_lab();
  const char* names[] = {"alpha", "bravo", "charlie", "delta"};
  for (std::size_t i = 0; i < t.nodes.size(); ++i) t.nodes[i].name = names[i];
  Plan p = make_plan(t);
  const auto& ign = find_step(p, "set net.ipv4.conf.all.arp_ignore=1 in dr-demo-charlie");
  EXPECT_THAT(ign.why, HasSubstr("charlie holds the VIP 10.0.0.100 on lo"));
  const auto& dest =
      find_step(p, "add real server 10.0.0.12 (dr) to tcp 10.0.0.100:80 in dr-demo-bravo");
  EXPECT_THAT(dest.why, HasSubstr("delta (10.0.0.12)"));
}

TEST(PlannerWhy, SameSysctlOnANodeWithoutAVipGetsNoVipStory) {
  Topology t = dr_lab();
  t.nodes[0].sysctls.push_back({"net.ipv4.conf.all.arp_ignore", "1", {}});
  Plan p = make_plan(t);
  const auto& s = find_step(p, "set net.ipv4.conf.all.arp_ignore=1 in dr-demo-client");
  EXPECT_THAT(s.why, Not(HasSubstr("VIP")));
  EXPECT_THAT(s.why, HasSubstr("only for addresses of the interface"));
}

TEST(PlannerWhy, NatRealServerGatewayAndDirectorForwarding) {
  Plan p = make_plan(nat_lab());
  const auto& rt = find_step(p, "add route default via 10.1.0.1 in nat-demo-rs1");
  EXPECT_THAT(rt.why, HasSubstr("back through the director"));
  EXPECT_THAT(rt.why, HasSubstr("un-NAT"));
  const auto& fwd = find_step(p, "set net.ipv4.ip_forward=1 in nat-demo-director");
  EXPECT_THAT(fwd.why, HasSubstr("ip_forward=1"));
  EXPECT_THAT(fwd.why, HasSubstr("replies"));
  const auto& dest = find_step(
      p, "add real server 10.1.0.11 (nat) to tcp 172.16.0.100:80 in nat-demo-director");
  EXPECT_THAT(dest.why, HasSubstr("DNAT"));
  EXPECT_THAT(dest.why, HasSubstr("10.1.0.11:8080"));
}

TEST(PlannerWhy, TunRealServerTunl0AndReversePath) {
  Plan p = make_plan(tun_lab());
  EXPECT_THAT(find_step(p, "set net.ipv4.conf.tunl0.rp_filter=0 in tun-demo-rs2").why,
              HasSubstr("reverse-path"));
  EXPECT_THAT(find_step(p, "bring up tunl0 in tun-demo-rs1").why, HasSubstr("only while"));
  EXPECT_THAT(find_step(p, "enable ipip (tunl0) in tun-demo-rs1").why, HasSubstr("IP-in-IP"));
  EXPECT_THAT(find_step(p, "add address 10.1.0.100/32 to tunl0 in tun-demo-rs1").why,
              HasSubstr("inside the IP-in-IP wrapper"));
  EXPECT_THAT(
      find_step(p, "add real server 10.2.0.11 (tun) to tcp 10.1.0.100:80 in tun-demo-director")
          .why,
      HasSubstr("IP-in-IP"));
  EXPECT_THAT(find_step(p, "set net.ipv4.conf.eth1.rp_filter=0 in tun-demo-router").why,
              HasSubstr("VIP as source"));
  EXPECT_THAT(find_step(p, "add route default via 10.2.0.1 in tun-demo-rs1").why,
              HasSubstr("the router"));
}

}  // namespace
}  // namespace labctl
