// Kernel tier for issue 14's schema items, each a fixture of tests/data brought up in an
// IPVS kernel: IPv6 LVS-TUN through ip6tnl0 (tun6.toml), DR real servers that hide the VIP
// with scope host and arp_ignore = 3 (lo-scope-host.toml: the director owns the VIP's
// ARP entry), and a real server given as 127.0.0.1 (rs-loopback.toml). Verified with ip,
// ipvsadm, curl and the lab's own checks.
#include <gtest/gtest.h>
#include <unistd.h>

#include <set>
#include <string>

#include "labctl/checks/checks.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/model/load.h"
#include "labctl/plan/planner.h"
#include "tests/kernel/kernel_test.h"
#include "tests/support/kill_sweep.h"

namespace labctl {
namespace {

class KernelRealWorld : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "kernel tier needs root";
    if (Status ipvs = test::ipvs_available(); !ipvs) LABCTL_KERNEL_SKIP() << ipvs.error().str();
  }
  void TearDown() override {
    if (up_) {
      EXPECT_TRUE(lab_down(topo_.name));
    }
  }
  void up(const std::string& fixture) {
    ASSERT_TRUE(test::up_fixture(fixture, topo_));
    up_ = true;
  }
  std::string in(const std::string& node, const std::string& cmd) {
    return test::run_capture("ip netns exec " + netns_name(topo_.name, node) + " " + cmd + " 2>&1");
  }
  std::string get(const std::string& url) {
    std::string body = in("client", "curl -sS -m 3 -g '" + url + "'");
    while (!body.empty() && body.back() == '\n') body.pop_back();
    return body;
  }
  void all_checks_pass() {
    auto rep = run_checks(topo_);
    ASSERT_TRUE(rep) << rep.error().str();
    EXPECT_FALSE(rep->results.empty());
    for (const auto& r : rep->results) EXPECT_TRUE(r.passed) << render_check(r);
  }
  Topology topo_;
  bool up_ = false;
};

TEST_F(KernelRealWorld, Tun6ServesThroughIp6tnl0) {
  up("tun6.toml");
  if (HasFatalFailure()) return;
  const std::string link = in("rs1", "ip -d link show dev ip6tnl0");
  EXPECT_NE(link.find("state UNKNOWN"), std::string::npos)
      << link;  // up; a tunnel has no carrier state
  EXPECT_NE(link.find("ip6tnl"), std::string::npos) << link;
  const std::string table = in("director", "ipvsadm -Ln");
  EXPECT_NE(table.find("-> [fd00:62::11]:80"), std::string::npos) << table;
  EXPECT_NE(table.find("Tunnel"), std::string::npos) << table;
  EXPECT_EQ(get("http://[fd00:61::100]/"), "rs1");
  const std::string rx = in("rs1", "cat /sys/class/net/ip6tnl0/statistics/rx_packets");
  EXPECT_GT(std::atol(rx.c_str()), 0) << "ip6tnl0 received nothing: " << rx;
  all_checks_pass();
}

TEST_F(KernelRealWorld, ArpIgnore3WithScopeHostVipLeavesArpToTheDirector) {
  up("lo-scope-host.toml");
  if (HasFatalFailure()) return;
  const std::string lo = in("rs1", "ip -d addr show dev lo");
  EXPECT_NE(lo.find("inet 10.40.0.100/32 scope host lo"), std::string::npos) << lo;
  std::set<std::string> seen;
  for (int i = 0; i < 4; ++i) seen.insert(get("http://10.40.0.100/"));
  EXPECT_EQ(seen, (std::set<std::string>{"rs1", "rs2"}));
  all_checks_pass();  // http and arp-owner (the client's ARP entry is the director's MAC)
}

TEST_F(KernelRealWorld, LoopbackRealServerIsTheDirectorServingLocally) {
  up("rs-loopback.toml");
  if (HasFatalFailure()) return;
  const std::string table = in("director", "ipvsadm -Ln");
  EXPECT_NE(table.find("-> 127.0.0.1:80"), std::string::npos) << table;
  std::set<std::string> seen;
  for (int i = 0; i < 4; ++i) seen.insert(get("http://10.43.0.100/"));
  EXPECT_EQ(seen, (std::set<std::string>{"director", "rs1"}));
  all_checks_pass();
}

}  // namespace
}  // namespace labctl
