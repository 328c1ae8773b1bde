#include "labctl/checks/checks.h"

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
  EXPECT_TRUE(r.passed());
  r.results.push_back({"a", "reach", true, "", 0});
  EXPECT_TRUE(r.passed());
  r.results.push_back({"b", "http", false, "no answer", 0});
  EXPECT_FALSE(r.passed());
  EXPECT_NE(render_checks(r).find("FAIL  b (http): no answer"), std::string::npos);
  EXPECT_NE(render_checks(r).find("1 of 2 checks passed"), std::string::npos);
  EXPECT_EQ(checks_json(r)["passed"], false);
}

}  // namespace
}  // namespace labctl
