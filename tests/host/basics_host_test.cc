// Host tier: net-basics and home-nat (issue 26) and their exercises brought up on this
// kernel (bridges, routes, nftables masquerade, conntrack; no IPVS), with the route, neigh,
// fdb and nat-map checks reading the real kernel tables: passing in the labs, failing in the
// exercises where the fault is, and failing when the kernel's state is changed under them.
#include <gtest/gtest.h>

#include <map>

#include "labctl/checks/checks.h"
#include "labctl/kernel/netns.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/model/load.h"
#include "labctl/plan/planner.h"
#include "tests/host/host_test.h"
#include "tests/support/kill_sweep.h"

namespace labctl {
namespace {

class HostBasics : public ::testing::Test {
 protected:
  void SetUp() override { LABCTL_REQUIRE_ROOT(); }
  void TearDown() override {
    for (const auto& name : up_) {
      EXPECT_TRUE(lab_down(name));
      for (const auto& ns : list_netns()) EXPECT_NE(ns.rfind(name + "-", 0), 0u) << ns << " left behind";
    }
  }
  /// Brings up the built-in lab `builtin` under a name of its own.
  Topology up(const std::string& builtin) {
    auto r = load_topology(builtin);
    EXPECT_TRUE(r.ok());
    if (!r.ok()) return {};
    Topology t = *r.topology;
    t.name = test::unique_name("b" + builtin.substr(0, 4));
    Status st = lab_up(t, make_plan(t), {});
    EXPECT_TRUE(st) << st.error().str();
    if (st) up_.push_back(t.name);
    return t;
  }
  /// Every check's result by name.
  std::map<std::string, CheckResult> check(const Topology& t, const std::vector<std::string>& only = {}) {
    auto rep = run_checks(t, only);
    EXPECT_TRUE(rep) << rep.error().str();
    std::map<std::string, CheckResult> out;
    if (rep)
      for (auto& r : rep->results) out[r.name] = r;
    return out;
  }
  std::string in(const Topology& t, const std::string& node, const std::string& cmd) {
    return test::run_capture("ip netns exec " + netns_name(t.name, node) + " " + cmd + " 2>&1");
  }
  std::vector<std::string> up_;
};

TEST_F(HostBasics, NetBasicsPassesAndPrintsWhatTheKernelSays) {
  Topology t = up("net-basics");
  if (HasFailure()) return;
  auto res = check(t);
  ASSERT_EQ(res.size(), 7u);
  for (const auto& [name, r] : res) EXPECT_TRUE(r.passed) << name << ": " << r.detail;
  EXPECT_NE(res["host-route"].detail.find(": 192.168.88.88 via 192.168.1.120 dev eth0 src 192.168.1.30 (next hop"),
            std::string::npos)
      << res["host-route"].detail;
  EXPECT_NE(res["on-link"].detail.find("192.168.1.120 dev eth0 src 192.168.1.20 (on-link"), std::string::npos)
      << res["on-link"].detail;
  EXPECT_NE(res["arp-asks-next-hop"].detail.find("(host1's eth0) reachable"), std::string::npos)
      << res["arp-asks-next-hop"].detail;
  EXPECT_NE(res["arp-never-far-address"].detail.find("no entry for 192.168.88.88"), std::string::npos)
      << res["arp-never-far-address"].detail;
  for (const char* n : {"host1", "host2", "host3"})
    EXPECT_NE(res["switch-learned"].detail.find(std::string(n) + "'s eth0 "), std::string::npos)
        << res["switch-learned"].detail;
  EXPECT_NE(res["switch-learned"].detail.find("on port host1-eth0"), std::string::npos) << res["switch-learned"].detail;
  // Flooding before learning: with host1's MAC forgotten, host3's ping to host1 reached
  // host2's port too, and once the switch had learned again, no more.
  const std::string& fdb = res["switch-learned"].detail;
  EXPECT_NE(fdb.find("switch lan forgot host1's MAC"), std::string::npos) << fdb;
  EXPECT_NE(fdb.find("reached host2's eth0 too ("), std::string::npos) << fdb;
  EXPECT_NE(fdb.find("flooded to every port"), std::string::npos) << fdb;
  EXPECT_NE(fdb.find("answer taught it again (port host1-eth0)"), std::string::npos) << fdb;
  EXPECT_NE(fdb.find("the ping after that: 0 frames for that MAC at host2's eth0: forwarded only to the learned port"),
            std::string::npos)
      << fdb;
}

// A switch that does not flood frames for unknown MACs (unicast flooding off on every port):
// the fdb check sees the frame never reach the third port and fails, saying so.
TEST_F(HostBasics, FdbFailsWhenTheSwitchDoesNotFlood) {
  Topology t = up("net-basics");
  if (HasFailure()) return;
  for (const char* port : {"host1-eth0", "host2-eth0", "host3-eth0"})
    EXPECT_EQ(in(t, "lan", std::string("ip link set dev ") + port + " type bridge_slave flood off"), "");
  auto fdb = check(t, {"switch-learned"});
  EXPECT_FALSE(fdb["switch-learned"].passed);
  EXPECT_NE(fdb["switch-learned"].detail.find("never reached host2's eth0: not flooded"), std::string::npos)
      << fdb["switch-learned"].detail;
}

// The checks read the kernel: change its state and they fail, saying what they saw.
TEST_F(HostBasics, NetBasicsChecksFailWhenTheKernelDisagrees) {
  Topology t = up("net-basics");
  if (HasFailure()) return;
  // host3 with 192.168.88.0/24 on-link instead of the host route: it now ARPs for the far
  // address itself (and host1 answers, arp_ignore 0), so "never the far address" fails, and
  // the route is no longer via the next hop.
  EXPECT_EQ(in(t, "host3", "ip route del 192.168.88.88/32"), "");
  EXPECT_EQ(in(t, "host3", "ip route add 192.168.88.0/24 dev eth0"), "");
  auto res = check(t, {"host-route", "arp-never-far-address", "second-address-reachable"});
  EXPECT_TRUE(res["second-address-reachable"].passed) << res["second-address-reachable"].detail;
  EXPECT_FALSE(res["host-route"].passed);
  EXPECT_NE(res["host-route"].detail.find("on-link (no next hop), expected via 192.168.1.120"), std::string::npos)
      << res["host-route"].detail;
  EXPECT_FALSE(res["arp-never-far-address"].passed);
  EXPECT_NE(res["arp-never-far-address"].detail.find("it holds an entry for 192.168.88.88"), std::string::npos)
      << res["arp-never-far-address"].detail;
  // A switch that forgot and may not learn: learning off on host1's port.
  EXPECT_EQ(in(t, "lan", "ip link set dev host1-eth0 type bridge_slave learning off"), "");
  std::string mac = in(t, "host1", "cat /sys/class/net/eth0/address");
  while (!mac.empty() && mac.back() == '\n') mac.pop_back();
  EXPECT_EQ(in(t, "lan", "bridge fdb del " + mac + " dev host1-eth0 master"), "");
  auto fdb = check(t, {"switch-learned"});
  EXPECT_FALSE(fdb["switch-learned"].passed);
  EXPECT_NE(fdb["switch-learned"].detail.find("host1's eth0 "), std::string::npos);
  EXPECT_NE(fdb["switch-learned"].detail.find("not learned"), std::string::npos) << fdb["switch-learned"].detail;
}

TEST_F(HostBasics, NetBasicsExerciseFailsWhereTheHostRouteIsMissing) {
  Topology t = up("net-basics-noroute");
  if (HasFailure()) return;
  auto res = check(t);
  ASSERT_EQ(res.size(), 5u);
  EXPECT_TRUE(res["on-link"].passed) << res["on-link"].detail;
  EXPECT_TRUE(res["switch-learned"].passed) << res["switch-learned"].detail;
  EXPECT_FALSE(res["host-route"].passed);
  EXPECT_NE(res["host-route"].detail.find("unreachable"), std::string::npos) << res["host-route"].detail;
  EXPECT_FALSE(res["second-address-reachable"].passed);
  EXPECT_FALSE(res["arp-asks-next-hop"].passed);
  EXPECT_NE(res["arp-asks-next-hop"].detail.find("no entry for 192.168.1.120"), std::string::npos)
      << res["arp-asks-next-hop"].detail;
  // The repair: the host route, as the course adds it.
  EXPECT_EQ(in(t, "host3", "ip route add 192.168.88.88/32 via 192.168.1.120"), "");
  for (const auto& [name, r] : check(t)) EXPECT_TRUE(r.passed) << name << ": " << r.detail;
}

TEST_F(HostBasics, HomeNatMapsThePcsPortToTheRoutersAddress) {
  Topology t = up("home-nat");
  if (HasFailure()) return;
  auto res = check(t);
  ASSERT_EQ(res.size(), 5u);
  for (const auto& [name, r] : res) EXPECT_TRUE(r.passed) << name << ": " << r.detail;
  const std::string& d = res["nat-mapping"].detail;
  EXPECT_NE(d.find("router's conntrack: tcp 192.168.1.8:12121 -> 8.8.8.8:80, reply 8.8.8.8:80 -> 6.6.6.6:"),
            std::string::npos)
      << d;
  EXPECT_NE(d.find("source NAT"), std::string::npos) << d;
  EXPECT_NE(d.find("mapping 192.168.1.8:12121 <-> 6.6.6.6:"), std::string::npos) << d;
  EXPECT_NE(d.find("server saw the request from 6.6.6.6:"), std::string::npos) << d;
  // Again at once: the same source port, the mapping found again.
  auto again = check(t, {"nat-mapping"});
  EXPECT_TRUE(again["nat-mapping"].passed) << again["nat-mapping"].detail;
  EXPECT_NE(res["arp-for-gateway"].detail.find("(router's eth0)"), std::string::npos) << res["arp-for-gateway"].detail;
}

TEST_F(HostBasics, HomeNatExerciseShowsTheUntranslatedFlow) {
  Topology t = up("home-nat-noreply");
  if (HasFailure()) return;
  auto res = check(t);
  ASSERT_EQ(res.size(), 3u);
  EXPECT_TRUE(res["pc-gateway"].passed) << res["pc-gateway"].detail;
  EXPECT_FALSE(res["web"].passed);
  EXPECT_FALSE(res["nat-mapping"].passed);
  const std::string& d = res["nat-mapping"].detail;
  EXPECT_NE(d.find("reply 8.8.8.8:80 -> 192.168.1.8:12121"), std::string::npos) << d;
  EXPECT_NE(d.find("did not translate the source"), std::string::npos) << d;
  // The repair: masquerade on the way out (eth1), then the mapping appears.
  EXPECT_EQ(in(t, "router", "nft flush chain inet labctl nat_postrouting"), "");
  EXPECT_EQ(in(t, "router",
               "nft add rule inet labctl nat_postrouting oifname eth1 ip saddr 192.168.1.0/24 masquerade"),
            "");
  for (const auto& [name, r] : check(t)) EXPECT_TRUE(r.passed) << name << ": " << r.detail;
}

}  // namespace
}  // namespace labctl
