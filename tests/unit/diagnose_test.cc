// Unit tier: the diagnosis's judgement (decide_causes) over kernel facts built by hand from
// the demos as they should be, then bent one fact at a time; and the pure parts of the ARP
// probe and the /proc/net reader.
#include "labctl/checks/diagnose.h"

#include <sys/socket.h>

#include <gtest/gtest.h>

#include "labctl/checks/arp_probe.h"
#include "labctl/model/load.h"

namespace labctl {
namespace {

Topology demo(const char* name) {
  auto r = load_topology(name);
  EXPECT_TRUE(r.ok()) << name;
  return r.topology ? *r.topology : Topology{};
}

const Check& check_named(const Topology& t, const std::string& name) {
  for (const auto& c : t.checks)
    if (c.name == name) return c;
  throw std::runtime_error("no check " + name);
}

// The facts a correctly built lab shows: what the planner would have made of the topology.
LabFacts healthy(const Topology& t) {
  LabFacts f;
  for (const auto& n : t.nodes) {
    NodeFacts& nf = f.nodes[n.name];
    nf.read = true;
    nf.links.push_back({"lo", 1, "", 0, true, 65536, "", 0, "", 0, -1});
    int idx = 2;
    std::vector<std::string> devs{"all"};
    for (const auto& i : n.interfaces) {
      LinkInfo l{i.name, idx, "veth", 0, true, 1500, "02:00:00:00:00:" + std::to_string(10 + idx), 0, "", 0, -1};
      nf.links.push_back(l);
      devs.push_back(i.name);
      for (const auto& p : i.addresses) {
        nf.addrs.push_back({i.name, idx, p});
        if (p.len < p.addr.max_prefix()) nf.routes.push_back({p.addr.family, p.network(), {}, i.name, idx, 2, 253});
      }
      ++idx;
    }
    for (const auto& p : n.lo_addresses) nf.addrs.push_back({"lo", 1, p});
    if (n.accept_ipip) {
      nf.links.push_back({"tunl0", idx, "ipip", 0, true, 1480, "", 0, "", 0, -1});
      devs.push_back("tunl0");
      for (const auto& p : n.tunl0_addresses) nf.addrs.push_back({"tunl0", idx, p});
    }
    for (const auto& r : n.routes) {
      // The kernel names the device of a route given only a gateway.
      std::string dev = r.dev;
      for (const auto& i : n.interfaces)
        for (const auto& p : i.addresses)
          if (dev.empty() && r.via && p.len < p.addr.max_prefix() && p.contains(*r.via)) dev = i.name;
      nf.routes.push_back({r.family, r.to, r.via, dev, 0, 3, 0});
    }
    nf.sysctls["net.ipv4.ip_forward"] = "0";
    nf.sysctls["net.ipv6.conf.all.forwarding"] = "0";
    for (const auto& d : devs)
      for (const char* w : {"arp_ignore", "arp_announce", "rp_filter"})
        nf.sysctls["net.ipv4.conf." + d + "." + w] = "0";
    for (const auto& s : n.sysctls) nf.sysctls[s.key] = s.value;
    for (const auto& a : n.agents)
      if (a.port) nf.tcp_listen.insert(a.port);
  }
  return f;
}

void drop_addr(NodeFacts& n, const std::string& addr) {
  std::erase_if(n.addrs, [&](const AddrInfo& a) { return a.prefix.addr.str() == addr; });
}

std::string all_text(const std::vector<Cause>& cs) {
  std::string s;
  for (const auto& c : cs) s += c.node + ": " + c.what + " | fix: " + c.fix + "\n";
  return s;
}

TEST(Diagnose, HealthyDemosHaveNoCause) {
  for (const char* name : {"dr-demo", "nat-demo", "tun-demo"}) {
    Topology t = demo(name);
    LabFacts f = healthy(t);
    for (const auto& c : t.checks) EXPECT_TRUE(decide_causes(t, c, f).empty()) << name << " " << c.name << "\n" << all_text(decide_causes(t, c, f));
  }
}

TEST(Diagnose, VipMissingOnTheDirector) {
  Topology t = demo("dr-demo");
  LabFacts f = healthy(t);
  drop_addr(f.nodes["director"], "10.10.0.100");
  auto cs = decide_causes(t, check_named(t, "vip-reachable"), f);
  ASSERT_EQ(cs.size(), 1u) << all_text(cs);
  EXPECT_EQ(cs[0].node, "director");
  EXPECT_NE(cs[0].what.find("does not hold the VIP 10.10.0.100"), std::string::npos);
  EXPECT_EQ(cs[0].fix, "[nodes.director] interfaces.eth0.addresses += \"10.10.0.100/32\"");
}

TEST(Diagnose, VipMissingOnADrRealServersLo) {
  Topology t = demo("dr-demo");
  LabFacts f = healthy(t);
  drop_addr(f.nodes["rs2"], "10.10.0.100");
  auto cs = decide_causes(t, check_named(t, "balanced"), f);
  ASSERT_EQ(cs.size(), 1u) << all_text(cs);
  EXPECT_EQ(cs[0].node, "rs2");
  EXPECT_EQ(cs[0].fix, "[nodes.rs2] lo += \"10.10.0.100/32\"");
}

TEST(Diagnose, ArpSysctlsJudgedAsTheKernelDoesByTheMaximumOfAllAndTheInterface) {
  Topology t = demo("dr-demo");
  const Check& owner = check_named(t, "director-owns-vip");
  LabFacts f = healthy(t);
  auto& rs1 = f.nodes["rs1"].sysctls;
  // The interface alone is enough: max(all 0, eth0 1) = 1.
  rs1["net.ipv4.conf.all.arp_ignore"] = "0";
  rs1["net.ipv4.conf.all.arp_announce"] = "0";
  EXPECT_TRUE(decide_causes(t, owner, f).empty()) << all_text(decide_causes(t, owner, f));
  // And "all" alone too.
  rs1["net.ipv4.conf.all.arp_ignore"] = "1";
  rs1["net.ipv4.conf.eth0.arp_ignore"] = "0";
  EXPECT_TRUE(decide_causes(t, owner, f).empty());
  // Neither: rs1 answers ARP for the VIP.
  rs1["net.ipv4.conf.all.arp_ignore"] = "0";
  auto cs = decide_causes(t, owner, f);
  ASSERT_EQ(cs.size(), 1u) << all_text(cs);
  EXPECT_EQ(cs[0].node, "rs1");
  EXPECT_NE(cs[0].what.find("arp_ignore is 0"), std::string::npos) << cs[0].what;
  EXPECT_NE(cs[0].what.find("on eth0"), std::string::npos) << cs[0].what;
  EXPECT_EQ(cs[0].fix, "[nodes.rs1.sysctl] net.ipv4.conf.all.arp_ignore = 1");
  // arp_announce 1 is not enough: 2 is what keeps the VIP out of rs1's own requests.
  rs1["net.ipv4.conf.eth0.arp_announce"] = "1";
  cs = decide_causes(t, owner, f);
  ASSERT_EQ(cs.size(), 2u) << all_text(cs);
  EXPECT_EQ(cs[1].fix, "[nodes.rs1.sysctl] net.ipv4.conf.all.arp_announce = 2");
}

TEST(Diagnose, ArpOwnerFailuresNameOnlyArpCauses) {
  Topology t = demo("dr-demo");
  LabFacts f = healthy(t);
  f.nodes["rs1"].tcp_listen.clear();  // a real problem, but not why ARP went wrong
  EXPECT_TRUE(decide_causes(t, check_named(t, "director-owns-vip"), f).empty());
  auto cs = decide_causes(t, check_named(t, "http-through-vip"), f);
  ASSERT_EQ(cs.size(), 1u) << all_text(cs);
  EXPECT_NE(cs[0].what.find("nothing listens on TCP port 80 on real server rs1"), std::string::npos);
  // Its agent is declared: the fix is not a topology line but finding why it is not running.
  EXPECT_NE(cs[0].what.find("agent web is declared"), std::string::npos);
  EXPECT_EQ(cs[0].fix, "");
}

TEST(Diagnose, NoReachFailuresHaveNoCause) {
  Topology t = demo("nat-demo");
  LabFacts f = healthy(t);
  f.nodes["director"].sysctls["net.ipv4.ip_forward"] = "0";
  EXPECT_TRUE(decide_causes(t, check_named(t, "rs-hidden"), f).empty());
}

TEST(Diagnose, NatDirectorWithoutForwarding) {
  Topology t = demo("nat-demo");
  LabFacts f = healthy(t);
  f.nodes["director"].sysctls["net.ipv4.ip_forward"] = "0";
  auto cs = decide_causes(t, check_named(t, "vip-reachable"), f);
  ASSERT_EQ(cs.size(), 1u) << all_text(cs);
  EXPECT_EQ(cs[0].fix, "[nodes.director.sysctl] net.ipv4.ip_forward = 1");
}

TEST(Diagnose, NatRealServerWhoseDefaultRouteSkipsTheDirector) {
  Topology t = demo("nat-demo");
  LabFacts f = healthy(t);
  for (auto& r : f.nodes["rs1"].routes)
    if (!r.dst) r.via = IpAddr::parse("10.20.0.254");
  auto cs = decide_causes(t, check_named(t, "vip-reachable"), f);
  ASSERT_EQ(cs.size(), 1u) << all_text(cs);
  EXPECT_EQ(cs[0].node, "rs1");
  EXPECT_NE(cs[0].what.find("rs1's default route goes via 10.20.0.254, not via director director"), std::string::npos) << cs[0].what;
  EXPECT_NE(cs[0].what.find("the client 192.168.10.10"), std::string::npos) << cs[0].what;
  EXPECT_EQ(cs[0].fix, "[nodes.rs1] routes = [{ to = \"default\", via = \"10.20.0.1\" }]");
  // No default route at all: the fix adds one.
  std::erase_if(f.nodes["rs2"].routes, [](const RouteInfo& r) { return !r.dst; });
  cs = decide_causes(t, check_named(t, "vip-reachable"), f);
  ASSERT_EQ(cs.size(), 2u) << all_text(cs);
  EXPECT_NE(cs[1].what.find("rs2 has no route back to the client"), std::string::npos) << cs[1].what;
  EXPECT_EQ(cs[1].fix, "[nodes.rs2] routes += { to = \"default\", via = \"10.20.0.1\" }");
}

TEST(Diagnose, TunRpFilterJudgedPerInterfaceAsTheKernelDoes) {
  Topology t = demo("tun-demo");
  const Check& c = check_named(t, "vip-reachable");
  LabFacts f = healthy(t);
  // Strict on all: strict on tunl0, where the request arrives but the reply never leaves.
  f.nodes["rs1"].sysctls["net.ipv4.conf.all.rp_filter"] = "1";
  auto cs = decide_causes(t, c, f);
  ASSERT_EQ(cs.size(), 1u) << all_text(cs);
  EXPECT_NE(cs[0].what.find("rp_filter is 1 on all (effective on tunl0"), std::string::npos) << cs[0].what;
  EXPECT_EQ(cs[0].fix, "[nodes.rs1.sysctl] net.ipv4.conf.all.rp_filter = 0");
  // Strict on tunl0 itself.
  f = healthy(t);
  f.nodes["rs2"].sysctls["net.ipv4.conf.tunl0.rp_filter"] = "1";
  cs = decide_causes(t, c, f);
  ASSERT_EQ(cs.size(), 1u) << all_text(cs);
  EXPECT_EQ(cs[0].fix, "[nodes.rs2.sysctl] net.ipv4.conf.tunl0.rp_filter = 0");
  // Loose (2) passes while a route back to the client exists; strict on the underlay
  // passes since the route back to the director leaves by eth0: hardening that does no harm.
  f = healthy(t);
  f.nodes["rs1"].sysctls["net.ipv4.conf.all.rp_filter"] = "2";
  f.nodes["rs1"].sysctls["net.ipv4.conf.eth0.rp_filter"] = "1";
  EXPECT_TRUE(decide_causes(t, c, f).empty()) << all_text(decide_causes(t, c, f));
  // Strict on the underlay when the director is reached by another interface drops the
  // encapsulated packets (and max(all 2, eth0 1) would be loose: all goes back to 0).
  f.nodes["rs1"].sysctls["net.ipv4.conf.all.rp_filter"] = "0";
  for (auto& r : f.nodes["rs1"].routes)
    if (!r.dst) r.dev = "eth9";
  cs = decide_causes(t, c, f);
  ASSERT_FALSE(cs.empty());
  EXPECT_EQ(cs[0].fix, "[nodes.rs1.sysctl] net.ipv4.conf.eth0.rp_filter = 0") << all_text(cs);
}

TEST(Diagnose, TunRealServerWithoutTunl0OrVip) {
  Topology t = demo("tun-demo");
  LabFacts f = healthy(t);
  std::erase_if(f.nodes["rs1"].links, [](const LinkInfo& l) { return l.name == "tunl0"; });
  drop_addr(f.nodes["rs1"], "10.30.1.100");
  auto cs = decide_causes(t, check_named(t, "vip-reachable"), f);
  ASSERT_EQ(cs.size(), 2u) << all_text(cs);
  EXPECT_EQ(cs[0].fix, "[nodes.rs1] tunl0 += \"10.30.1.100/32\"");
  EXPECT_NE(cs[1].what.find("does not accept IPIP"), std::string::npos);
  EXPECT_EQ(cs[1].fix, "[nodes.rs1] accept_ipip = true");
  // A tunl0 that is down accepts nothing either.
  f = healthy(t);
  for (auto& l : f.nodes["rs2"].links)
    if (l.name == "tunl0") l.up = false;
  cs = decide_causes(t, check_named(t, "vip-reachable"), f);
  ASSERT_EQ(cs.size(), 1u) << all_text(cs);
  EXPECT_NE(cs[0].what.find("tunl0 is down"), std::string::npos);
}

TEST(Diagnose, TheIpvsTableDecidesWhichRealServersCount) {
  Topology t = demo("dr-demo");
  LabFacts f = healthy(t);
  f.nodes["rs2"].tcp_listen.clear();
  // The live table: rs2 taken out with weight 0, so its missing listener explains nothing.
  ServiceFacts s;
  s.read = s.present = true;
  IpvsDest d1, d2;
  d1.addr = *IpAddr::parse("10.10.0.11");
  d1.port = 80;
  d1.method = FwdMethod::Dr;
  d1.weight = 1;
  d2 = d1;
  d2.addr = *IpAddr::parse("10.10.0.12");
  d2.weight = 0;
  s.dests = {d1, d2};
  f.services["web"] = s;
  EXPECT_TRUE(decide_causes(t, check_named(t, "balanced"), f).empty());
  f.services["web"].dests[1].weight = 1;
  EXPECT_EQ(decide_causes(t, check_named(t, "balanced"), f).size(), 1u);
}

TEST(Diagnose, NodesThatCouldNotBeReadGiveNoCause) {
  Topology t = demo("dr-demo");
  LabFacts f = healthy(t);
  drop_addr(f.nodes["director"], "10.10.0.100");
  f.nodes["director"].read = false;
  f.nodes["rs1"] = NodeFacts{};
  EXPECT_TRUE(decide_causes(t, check_named(t, "vip-reachable"), f).empty());
}

TEST(ProcNetPorts, ListenersAndBoundUdpSockets) {
  const std::string tcp =
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
      "   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1\n"
      "   1: 0B000A0A:1F90 0A000A0A:C350 01 00000000:00000000 00:00000000 00000000     0        0 2\n";
  EXPECT_EQ(parse_proc_net_ports(tcp, true), (std::set<uint16_t>{80}));
  const std::string tcp6 =
      "  sl  local_address                         remote_address                        st\n"
      "   0: 00000000000000000000000000000000:1F91 00000000000000000000000000000000:0000 0A 0\n";
  EXPECT_EQ(parse_proc_net_ports(tcp6, true), (std::set<uint16_t>{8081}));
  const std::string udp =
      "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"
      "  100: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3 2 0 0\n";
  EXPECT_EQ(parse_proc_net_ports(udp, false), (std::set<uint16_t>{53}));
  EXPECT_TRUE(parse_proc_net_ports("", true).empty());
  EXPECT_TRUE(parse_proc_net_ports("header\n garbage\n 0: zz:zz 0:0 0A\n", true).empty());
}

TEST(ArpProbe, RequestLayoutAndReplyParsing) {
  Mac me = *parse_mac("02:00:00:00:00:0a");
  EXPECT_EQ(mac_str(me), "02:00:00:00:00:0a");
  EXPECT_FALSE(parse_mac("02:00:00:00:00"));
  EXPECT_FALSE(parse_mac("02:00:00:00:00:0a:0b"));
  IpAddr src = *IpAddr::parse("10.10.0.10"), vip = *IpAddr::parse("10.10.0.100");
  auto req = arp_request(me, src, vip);
  ASSERT_EQ(req.size(), 28u);
  const std::vector<uint8_t> head{0, 1, 8, 0, 6, 4, 0, 1};
  EXPECT_TRUE(std::equal(head.begin(), head.end(), req.begin()));
  EXPECT_EQ(req[14], 10);
  EXPECT_EQ(req[27], 100);
  // A request is not a reply.
  EXPECT_FALSE(parse_arp_reply(req.data(), req.size(), vip));
  // The reply "10.10.0.100 is at 02:..:0b" to us.
  std::vector<uint8_t> rep = req;
  rep[7] = 2;
  const uint8_t owner[6] = {2, 0, 0, 0, 0, 0x0b};
  std::copy(owner, owner + 6, rep.begin() + 8);
  std::copy_n(vip.bytes.begin(), 4, rep.begin() + 14);
  std::copy(me.begin(), me.end(), rep.begin() + 18);
  std::copy_n(src.bytes.begin(), 4, rep.begin() + 24);
  auto m = parse_arp_reply(rep.data(), rep.size(), vip);
  ASSERT_TRUE(m);
  EXPECT_EQ(mac_str(*m), "02:00:00:00:00:0b");
  EXPECT_FALSE(parse_arp_reply(rep.data(), rep.size(), src));  // about another address
  EXPECT_FALSE(parse_arp_reply(rep.data(), 27, vip));           // truncated
}

}  // namespace
}  // namespace labctl

namespace labctl {
namespace {

// A scheduler changed on the live lab breaks what sticky and least-conn prove: named first,
// with the command that puts the topology's back.
TEST(Diagnose, SchedulerChangedLiveUnderAStickyCheck) {
  Topology t = demo("sched-demo");
  LabFacts f = healthy(t);
  ServiceFacts& sf = f.services["sh"];
  sf.read = sf.present = true;
  sf.scheduler = "sh";
  EXPECT_TRUE(decide_causes(t, check_named(t, "sh-per-source"), f).empty());
  sf.scheduler = "rr";
  auto cs = decide_causes(t, check_named(t, "sh-per-source"), f);
  ASSERT_EQ(cs.size(), 1u) << all_text(cs);
  EXPECT_EQ(cs[0].node, "director");
  EXPECT_NE(cs[0].what.find("schedules service sh with rr without persistence, but the topology says sh"),
            std::string::npos) << cs[0].what;
  EXPECT_EQ(cs[0].fix, "labctl exec sched-demo director -- ipvsadm -E -t 10.10.0.104:80 -s sh");
}

TEST(Diagnose, PersistenceDroppedLiveAndBalanceFollowsTheLiveTable) {
  Topology t = demo("sched-demo");
  LabFacts f = healthy(t);
  ServiceFacts& sf = f.services["persist"];
  sf.read = sf.present = true;
  sf.scheduler = "rr";
  auto cs = decide_causes(t, check_named(t, "persistence-keeps-client"), f);
  ASSERT_EQ(cs.size(), 1u) << all_text(cs);
  EXPECT_EQ(cs[0].fix, "labctl exec sched-demo director -- ipvsadm -E -t 10.10.0.106:80 -s rr -p 300");
  // balance judges by the live scheduler, so a change is no cause of its failure.
  f.services["wrr"] = {true, true, {}, "rr", false, 0};
  EXPECT_TRUE(decide_causes(t, check_named(t, "wrr-by-weight"), f).empty());
}

}  // namespace
}  // namespace labctl

namespace labctl {
namespace {

TEST(Diagnose, Ipv6TunRealServerNeedsIp6tnl0NotTunl0) {
  auto loaded = load_topology(std::string(LABCTL_TEST_DATA) + "/tun6.toml");
  ASSERT_TRUE(loaded.topology);
  const Topology& t = *loaded.topology;
  LabFacts f = healthy(t);  // models tunl0 only: rs1 has no ip6tnl0 here
  auto cs = decide_causes(t, check_named(t, "http"), f);
  ASSERT_EQ(cs.size(), 2u) << all_text(cs);
  EXPECT_EQ(cs[0].fix, "[nodes.rs1] ip6tnl0 += \"fd00:61::100/128\"") << all_text(cs);
  EXPECT_NE(cs[1].what.find("does not accept IPv6-in-IPv6: it has no ip6tnl0"), std::string::npos)
      << all_text(cs);
  EXPECT_EQ(cs[1].fix, "[nodes.rs1] accept_ip6ip6 = true");
  // With ip6tnl0 up and holding the VIP nothing is wrong; no rp_filter advice for IPv6.
  NodeFacts& rs1 = f.nodes["rs1"];
  rs1.links.push_back({"ip6tnl0", 9, "ip6tnl", 0, true, 1452, "", 0, "", 0, -1});
  rs1.addrs.push_back({"ip6tnl0", 9, *IpPrefix::parse("fd00:61::100/128")});
  cs = decide_causes(t, check_named(t, "http"), f);
  EXPECT_TRUE(cs.empty()) << all_text(cs);
}

}  // namespace
}  // namespace labctl
