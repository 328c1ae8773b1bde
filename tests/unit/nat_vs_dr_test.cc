// Unit tier: the nat-vs-dr lab: a built-in that loads cleanly with its director-bytes
// checks, is listed, and whose explain tells the course's bicycles-and-trucks
// story at the director's capped interface.
#include <cstdio>
#include <stdexcept>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "labctl/model/builtins.h"
#include "labctl/model/load.h"
#include "labctl/plan/explain.h"
#include "labctl/plan/planner.h"
#include "tests/unit/diagnostics_text.h"

namespace labctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const Check& named(const Topology& t, const std::string& name) {
  for (const auto& c : t.checks)
    if (c.name == name) return c;
  throw std::runtime_error("no check " + name);
}

using test::diagnostics_text;

TEST(NatVsDr, IsABuiltinThatLoadsCleanlyWithItsChecks) {
  ASSERT_NE(find_builtin("nat-vs-dr"), nullptr);
  LoadResult r = load_topology("nat-vs-dr");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_TRUE(r.diagnostics.empty()) << diagnostics_text(r);
  const Topology& t = *r.topology;
  EXPECT_EQ(named(t, "nat-bytes-through-director").params.text("out"), ">= 95%");
  EXPECT_EQ(named(t, "dr-bytes-bypass-director").params.text("out"), "<= 0%");
  // No throughput check: DR above the cap does not hold on a busy host (the file says why).
  for (const auto& c : t.checks) EXPECT_NE(c.kind, "throughput") << c.name;
  // The cap is on the director's end of the client's switch: what it sends, NAT's replies.
  const Node* director = t.node("director");
  ASSERT_NE(director, nullptr);
  ASSERT_FALSE(director->interfaces.empty());
  EXPECT_EQ(director->interfaces[0].impair.rate, 100'000'000u / 8);
}

TEST(NatVsDr, ListShowsIt) {
  std::string out;
  FILE* p = ::popen((std::string(LABCTL_BINARY_DIR) + "/labctl/labctl list").c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  EXPECT_EQ(::pclose(p), 0) << out;
  EXPECT_THAT(out, HasSubstr("nat-vs-dr    NAT vs DR on one rate-capped director"));
}

// explain tells the lesson where it happens: at the rate cap on the interface holding the
// VIPs, naming the NAT service whose replies take it and the DR one whose replies do not.
TEST(NatVsDr, ExplainTellsTheBicyclesAndTrucksAtTheCap) {
  LoadResult r = load_topology("nat-vs-dr");
  ASSERT_TRUE(r.ok());
  const Plan p = make_plan(*r.topology);
  std::string why;
  for (const auto& s : p.steps)
    if (s.why.find("tbf applies") != std::string::npos) why = s.why;
  EXPECT_THAT(why, HasSubstr("tbf applies 100mbit to every packet leaving director:eth0"));
  EXPECT_THAT(why, HasSubstr("every reply of NAT service nat leaves through this cap too"));
  EXPECT_THAT(why, HasSubstr("requests ride in on bicycles in the morning"));
  EXPECT_THAT(why, HasSubstr("replies drive home in trucks in the evening"));
  EXPECT_THAT(why, HasSubstr("the replies of dr (DR) go from the real servers straight to the client"));
  EXPECT_THAT(render_explain(*r.topology, p), HasSubstr("bicycles"));
  // A lab without a rate on its VIPs' interface keeps its explain as it was.
  LoadResult nat = load_topology("nat-demo");
  ASSERT_TRUE(nat.ok());
  EXPECT_THAT(render_explain(*nat.topology, make_plan(*nat.topology)), Not(HasSubstr("bicycles")));
}

}  // namespace
}  // namespace labctl
