// Kernel tier: the LVS labs of issue 14 that need nat rules, brought up in a kernel with
// IPVS, read back with nft and ipvsadm, and judged by their own checks:
// - tests/data/nat-masq.toml: a NAT director that masquerades towards real servers which
//   have no route back through it (no route at all), with a client behind a masquerading
//   router and one on the director's subnet;
// - tests/data/redirect-dr.toml: DR real servers that take the VIP by REDIRECT instead of
//   holding it on lo (and without arp_ignore/arp_announce).
// Both load without a diagnostic. Then each is shown to fail without what makes it work,
// so the checks passing means something.
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "labctl/checks/checks.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/model/load.h"
#include "labctl/plan/nft.h"
#include "labctl/plan/planner.h"
#include "tests/kernel/kernel_test.h"
#include "tests/support/kill_sweep.h"

namespace labctl {
namespace {

class KernelNatRules : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "kernel tier needs root";
    if (Status ipvs = test::ipvs_available(); !ipvs) LABCTL_KERNEL_SKIP() << ipvs.error().str();
    ASSERT_TRUE(test::up_fixture(GetParam(), topo_));
    up_ = true;
  }
  void TearDown() override {
    if (!up_) return;
    EXPECT_TRUE(lab_down(topo_.name));
    EXPECT_TRUE(lab_namespaces(topo_.name).empty());
  }
  std::string in(const std::string& node, const std::string& cmd) {
    return test::run_capture("ip netns exec " + netns_name(topo_.name, node) + " " + cmd + " 2>&1");
  }
  void every_check_passes() {
    auto rep = run_checks(topo_);
    ASSERT_TRUE(rep) << rep.error().str();
    EXPECT_EQ(rep->results.size(), topo_.checks.size());
    for (const auto& r : rep->results) EXPECT_TRUE(r.passed) << r.name << ": " << r.detail;
  }
  void rules_listed_back() {
    for (const auto& n : topo_.nodes) {
      if (n.nat.empty()) continue;
      const std::string listed = in(n.name, "nft list table inet labctl");
      for (const auto& r : n.nat)
        EXPECT_NE(listed.find(nft_nat_rule(r) + "\n"), std::string::npos)
            << n.name << " wants: " << nft_nat_rule(r) << "\n"
            << listed;
    }
  }
  Topology topo_;
  bool up_ = false;
};

TEST_P(KernelNatRules, ComesUpAndPassesItsChecks) {
  rules_listed_back();
  every_check_passes();
}

// What makes each lab work, taken away: the checks must notice.
TEST_P(KernelNatRules, FailsWithoutItsNatRules) {
  if (topo_.name == "natmasq") {
    EXPECT_NE(in("rs1", "ip route"), "");  // connected only
    EXPECT_EQ(in("rs1", "ip route get 192.168.91.20"),
              "RTNETLINK answers: Network is unreachable\n");
    EXPECT_EQ(in("director", "nft flush chain inet labctl nat_postrouting"), "");
  } else {
    for (const char* rs : {"rs1", "rs2"})
      EXPECT_EQ(in(rs, "nft flush chain inet labctl nat_prerouting"), "");
    EXPECT_EQ(in("rs1", "ip -o addr show to 10.93.0.100"), "") << "rs1 does not hold the VIP";
  }
  auto rep = run_checks(topo_, {topo_.checks.front().name});
  ASSERT_TRUE(rep) << rep.error().str();
  ASSERT_EQ(rep->results.size(), 1u);
  EXPECT_FALSE(rep->results[0].passed) << rep->results[0].detail;
}

// The validator's claim that a masquerading NAT director needs net.ipv4.vs.conntrack = 1:
// without it IPVS sends its NAT packets untracked and the masquerade never applies.
// Only the NAT director masquerades IPVS traffic: a suite of its own, instantiated for it.
class KernelNatMasquerade : public KernelNatRules {};

TEST_P(KernelNatMasquerade, MasqueradeNeedsIpvsConntrack) {
  ASSERT_EQ(topo_.name, "natmasq");
  EXPECT_EQ(in("director", "sysctl -qw net.ipv4.vs.conntrack=0"), "");
  auto rep = run_checks(topo_, {"http-on-public"});
  ASSERT_TRUE(rep) << rep.error().str();
  ASSERT_EQ(rep->results.size(), 1u);
  EXPECT_FALSE(rep->results[0].passed) << rep->results[0].detail;
  EXPECT_EQ(in("director", "sysctl -qw net.ipv4.vs.conntrack=1"), "");
  rep = run_checks(topo_, {"http-on-public"});
  ASSERT_TRUE(rep) << rep.error().str();
  EXPECT_TRUE(rep->results.at(0).passed) << rep->results[0].detail;
}

std::string fixture_name(const ::testing::TestParamInfo<const char*>& i) {
  return std::string(i.param) == "nat-masq.toml" ? "MasqueradingNatDirector" : "RedirectDr";
}

INSTANTIATE_TEST_SUITE_P(Issue14, KernelNatRules, ::testing::Values("nat-masq.toml", "redirect-dr.toml"),
                         fixture_name);
INSTANTIATE_TEST_SUITE_P(Issue14, KernelNatMasquerade, ::testing::Values("nat-masq.toml"), fixture_name);

}  // namespace
}  // namespace labctl
