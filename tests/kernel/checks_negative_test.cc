// Kernel tier: every kind of check can fail, and says why. A lab that works is built, then
// the topology's expectation or the lab itself is bent so each assertion must fail.
#include <unistd.h>

#include <gtest/gtest.h>

#include "labctl/checks/checks.h"
#include "labctl/kernel/ipvs.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/kernel/netns.h"
#include "labctl/plan/planner.h"
#include "labctl/kernel/rtnl.h"
#include "labctl/model/load.h"
#include "tests/kernel/kernel_test.h"

namespace labctl {
namespace {

class KernelChecksFail : public ::testing::Test {
 protected:
  void up(const char* demo) {
    auto loaded = load_topology(demo);
    ASSERT_TRUE(loaded.ok());
    topo_ = *loaded.topology;
    Status st = lab_up(topo_, make_plan(topo_), {});
    ASSERT_TRUE(st) << st.error().str();
  }
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "kernel tier needs root";
    if (Status ipvs = test::ipvs_available(); !ipvs) LABCTL_KERNEL_SKIP() << ipvs.error().str();
  }
  void TearDown() override {
    if (!topo_.name.empty()) {
      EXPECT_TRUE(lab_down(topo_.name));
    }
  }
  CheckResult run_one(const Check& c) {
    Topology t = topo_;
    t.checks = {c};
    auto rep = run_checks(t);
    EXPECT_TRUE(rep) << rep.error().str();
    return rep && !rep->results.empty() ? rep->results[0] : CheckResult{};
  }
  const Check& named(const std::string& name) {
    for (const auto& c : topo_.checks)
      if (c.name == name) return c;
    throw std::runtime_error("no check " + name);
  }
  Topology topo_;
};

TEST_F(KernelChecksFail, EachDrAssertionFailsWhenItsPremiseIsFalse) {
  up("dr-demo");
  // The kernel balances rr; a topology claiming wrr 3:1 must not pass as balanced.
  Topology claimed = topo_;
  for (auto& n : claimed.nodes)
    for (auto& s : n.services) {
      s.scheduler = "wrr";
      s.real_servers[0].weight = 3;
    }
  Check bal = named("balanced");
  claimed.checks = {bal};
  auto rep = run_checks(claimed);
  ASSERT_TRUE(rep);
  EXPECT_FALSE(rep->results[0].passed) << rep->results[0].detail;
  EXPECT_NE(rep->results[0].detail.find("expected about"), std::string::npos) << rep->results[0].detail;

  // Nobody listens on port 81 behind the VIP.
  Check reach = named("vip-reachable");
  reach.port = 81;
  auto r = run_one(reach);
  EXPECT_FALSE(r.passed) << r.detail;

  // The VIP must not be unreachable: no-reach of a working VIP fails.
  Check noreach = named("vip-reachable");
  noreach.kind = "no-reach";
  r = run_one(noreach);
  EXPECT_FALSE(r.passed) << r.detail;

  // rs1 without arp_ignore answers ARP for the VIP it holds on lo: the arp-owner check must
  // hear it and name it, whichever answer reaches the client first.
  ASSERT_EQ(std::system(("ip netns exec " + netns_name(topo_.name, "rs1") +
                         " sysctl -qw net.ipv4.conf.all.arp_ignore=0 net.ipv4.conf.eth0.arp_ignore=0").c_str()), 0);
  r = run_one(named("director-owns-vip"));
  EXPECT_FALSE(r.passed) << r.detail;
  EXPECT_NE(r.detail.find("rs1's eth0 also answers ARP"), std::string::npos) << r.detail;
}

TEST_F(KernelChecksFail, BypassFailsForNatWhereRepliesCrossTheDirector) {
  up("nat-demo");
  Check c;
  c.name = "nat-bypass";
  c.kind = "bypass";
  for (const auto& n : topo_.nodes)
    if (!n.services.empty()) {
      c.service = n.services[0].name;
      c.to = n.services[0].vip.str();
      c.port = n.services[0].port;
    }
  c.from = "client";
  auto r = run_one(c);
  EXPECT_FALSE(r.passed) << r.detail;
  EXPECT_NE(r.detail.find("replies went back through the director"), std::string::npos) << r.detail;
}

}  // namespace
}  // namespace labctl
