#include "labctl/checks/checks.h"
#include "labctl/model/load.h"

#include <gtest/gtest.h>

namespace labctl {
namespace {

VirtualService svc(const std::string& sched, std::vector<int> weights, uint32_t persistence = 0) {
  VirtualService s;
  s.scheduler = sched;
  s.persistence = persistence;
  for (int w : weights) {
    RealServer r;
    r.weight = w;
    s.real_servers.push_back(r);
  }
  return s;
}

TEST(ExpectedShares, RoundRobinIsEqualWhateverTheWeights) {
  EXPECT_EQ(expected_shares(svc("rr", {1, 5})), (std::vector<double>{0.5, 0.5}));
}

TEST(ExpectedShares, WeightedSchedulersFollowWeights) {
  auto s = expected_shares(svc("wrr", {2, 1, 1}));
  ASSERT_EQ(s.size(), 3u);
  EXPECT_DOUBLE_EQ(s[0], 0.5);
  EXPECT_DOUBLE_EQ(s[1], 0.25);
  EXPECT_DOUBLE_EQ(expected_shares(svc("wlc", {3, 1}))[0], 0.75);
}

TEST(ExpectedShares, WeightZeroGetsNothing) {
  EXPECT_EQ(expected_shares(svc("rr", {1, 0})), (std::vector<double>{1.0, 0.0}));
  EXPECT_EQ(expected_shares(svc("wrr", {0, 0})), (std::vector<double>{0.0, 0.0}));
}

TEST(ExpectedShares, HashingAndPersistenceStickToOneServer) {
  for (const char* s : {"sh", "dh", "mh", "lblc", "lblcr"})
    EXPECT_TRUE(expected_shares(svc(s, {1, 1})).empty()) << s;
  EXPECT_TRUE(expected_shares(svc("rr", {1, 1}, 300)).empty());
}

TEST(CheckReport, PassesOnlyWhenEveryCheckPassed) {
  CheckReport r;
  r.lab = "l";
  EXPECT_FALSE(r.passed()) << "zero checks run is never a pass";
  EXPECT_NE(render_checks(r).find("no checks ran"), std::string::npos);
  EXPECT_EQ(checks_json(r)["passed"], false);
  r.results.push_back({"a", "reach", true, "", 0});
  EXPECT_TRUE(r.passed());
  r.results.push_back({"b", "http", false, "no answer", 0});
  EXPECT_FALSE(r.passed());
  EXPECT_NE(render_checks(r).find("FAIL  b (http): no answer"), std::string::npos);
  EXPECT_NE(render_checks(r).find("1 of 2 checks passed"), std::string::npos);
  EXPECT_EQ(checks_json(r)["passed"], false);
}

TEST(CheckNames, AnUnknownNameIsAnErrorWithTheNearestOne) {
  auto loaded = load_topology("dr-demo");
  ASSERT_TRUE(loaded.ok());
  const Topology& t = *loaded.topology;
  ASSERT_FALSE(t.checks.empty());
  EXPECT_TRUE(check_names_known(t, {}));
  EXPECT_TRUE(check_names_known(t, {t.checks[0].name}));
  std::string typo = t.checks[0].name;
  typo.back() = typo.back() == 'x' ? 'y' : 'x';
  auto st = check_names_known(t, {typo});
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().str().find("has no check '" + typo + "'"), std::string::npos);
  EXPECT_NE(st.error().str().find("did you mean '" + t.checks[0].name + "'"), std::string::npos)
      << st.error().str();
  auto far = check_names_known(t, {"nosuchcheck"});
  ASSERT_FALSE(far);
  EXPECT_NE(far.error().str().find("its checks: " + t.checks[0].name), std::string::npos)
      << far.error().str();
  // run_checks refuses too, before it would touch the lab.
  EXPECT_FALSE(run_checks(t, {"nosuchcheck"}));
}

TEST(RenderChecks, AFailedCheckShowsItsCausesAndFixes) {
  CheckReport rep;
  rep.lab = "dr-demo";
  CheckResult r{"director-owns-vip", "arp-owner", false, "rs1 answered ARP for the VIP", 3, {}};
  r.causes.push_back({"rs1", "rs1 answers ARP for 10.10.0.100: arp_ignore is 0",
                      "[nodes.rs1.sysctl] net.ipv4.conf.all.arp_ignore = 1"});
  rep.results.push_back(r);
  const std::string text = render_checks(rep);
  EXPECT_NE(text.find("  FAIL  director-owns-vip"), std::string::npos) << text;
  EXPECT_NE(text.find("cause: rs1 answers ARP for 10.10.0.100"), std::string::npos) << text;
  EXPECT_NE(text.find("fix:   [nodes.rs1.sysctl] net.ipv4.conf.all.arp_ignore = 1"), std::string::npos)
      << text;
  auto j = checks_json(rep);
  EXPECT_FALSE(j["passed"].get<bool>());
  ASSERT_EQ(j["checks"][0]["causes"].size(), 1u);
  EXPECT_EQ(j["checks"][0]["causes"][0]["node"], "rs1");
}

}  // namespace
}  // namespace labctl
