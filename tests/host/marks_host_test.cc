// Host tier: a node's marks applied with libnftables in its namespace (the host kernel has
// nftables), read back with nft itself; nft's own error for a bad ruleset; and an `up`
// that fails after the marks leaves nothing behind.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "labctl/kernel/netns.h"
#include "labctl/kernel/nft.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/model/load.h"
#include "labctl/plan/nft.h"
#include "labctl/plan/planner.h"
#include "tests/host/host_test.h"
#include "tests/support/fail_at.h"
#include "tests/support/kill_sweep.h"

namespace labctl {
namespace {

Topology marks_lab(std::string& name) {
  std::ifstream in(LABCTL_TEST_DATA "/host/marks.toml");
  std::stringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  name = "ipvsschema" + std::to_string(std::random_device{}() % 100000);
  s.replace(s.find("name = \"marks\""), 14, "name = \"" + name + "\"");
  auto r = parse_topology(s, "marks.toml");
  std::string diags;
  for (const auto& d : r.diagnostics) diags += format_diagnostic(d) + "\n";
  EXPECT_TRUE(r.ok()) << diags;
  return r.topology ? *r.topology : Topology{};
}

bool nothing_left(const std::string& lab) {
  for (const auto& ns : list_netns())
    if (ns.rfind(lab + "-", 0) == 0) return false;
  return true;
}

TEST(HostMarks, UpAppliesTheRulesetNftListsBack) {
  LABCTL_REQUIRE_ROOT();
  std::string name;
  Topology t = marks_lab(name);
  Status st = lab_up(t, make_plan(t), {});
  ASSERT_TRUE(st) << st.error().str();
  const std::string listed =
      test::run_capture("ip netns exec " + name + "-a nft list table inet labctl 2>&1");
  const std::string other = test::run_capture("ip netns exec " + name + "-b nft list tables 2>&1");
  EXPECT_TRUE(lab_down(name));
  EXPECT_TRUE(nothing_left(name));
  EXPECT_NE(listed.find("type filter hook prerouting priority mangle; policy accept;"),
            std::string::npos)
      << listed;
  // nft prints marks in hex and may write sets without the spaces we put: compare the
  // matches one by one.
  for (const char* want :
       {"ip daddr 10.70.0.1 tcp dport { 80, 443 } meta mark set 0x00000001",
        "iifname \"eth0\" ip6 saddr fd70::/64 udp sport 5353 meta mark set 0x00000002",
        "meta l4proto sctp meta mark set 0x00000003"})
    EXPECT_NE(listed.find(want), std::string::npos) << "want: " << want << "\n" << listed;
  EXPECT_EQ(other, "") << "a node without marks gets no table";
}

TEST(HostMarks, NftsOwnErrorReachesTheUser) {
  LABCTL_REQUIRE_ROOT();
  Status applied;
  Status ran = run_in_new_netns([&]() -> Status {
    applied = nft_apply(
        "table inet labctl {\n  chain prerouting {\n    tcp dport 80 meta mark sett 1\n  }\n}\n",
        "load packet marks in test");
    return {};
  });
  ASSERT_TRUE(ran) << ran.error().str();
  ASSERT_FALSE(applied);
  const std::string text = applied.error().str();
  EXPECT_NE(text.find("load packet marks in test: nft: Error:"), std::string::npos) << text;
  EXPECT_NE(text.find("syntax error"), std::string::npos) << text;
  // nft 1.0.6 points its caret into the buffer's first line whatever line was wrong, so
  // only its message is asserted.
  EXPECT_NE(text.find("hint:"), std::string::npos) << text;
}

TEST(HostMarks, FailureAfterTheMarksLeavesNothing) {
  LABCTL_REQUIRE_ROOT();
  std::string name;
  Topology t = marks_lab(name);
  Plan p = make_plan(t);
  size_t nft = 0;
  while (nft < p.steps.size() && !std::holds_alternative<step::ApplyNftRules>(p.steps[nft].step))
    ++nft;
  ASSERT_LT(nft + 1, p.steps.size()) << "the marks step and one after it";
  UpOptions o;
  o.wrap_executor = [nft](Executor& real) { return std::make_unique<test::FailAt>(real, nft + 1); };
  Status st = lab_up(t, p, o);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().str().find("injected failure"), std::string::npos) << st.error().str();
  EXPECT_TRUE(nothing_left(name)) << "rollback removes the namespaces, and the nft table with them";
}

}  // namespace
}  // namespace labctl
