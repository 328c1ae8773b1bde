// The built-in demos, loaded from topologies/*.toml, planned and rendered: the whys that
// explain teaches must be there for the real files, not only for the C++ fixtures.
#include <map>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "labctl/plan/explain.h"
#include "labctl/plan/render.h"
#include "labctl/plan/planner.h"
#include "labctl/model/load.h"

namespace labctl {
namespace {

using ::testing::HasSubstr;

Topology load(const std::string& name) {
  LoadResult r = load_topology(name);
  EXPECT_TRUE(r.ok()) << name;
  return r.topology ? *r.topology : Topology{};
}

std::string why_of(const Plan& p, const std::string& description) {
  for (const auto& s : p.steps)
    if (describe(s.step) == description) return s.why;
  ADD_FAILURE() << "no step: " << description;
  return "";
}

TEST(DemoPlans, DrDemoTeachesArpHidingAndMacRewrite) {
  Topology t = load("dr-demo");
  Plan p = make_plan(t);
  EXPECT_THAT(why_of(p, "set net.ipv4.conf.all.arp_ignore=1 in dr-demo-rs2"),
              HasSubstr("holds the VIP 10.10.0.100 on lo"));
  EXPECT_THAT(why_of(p, "add address 10.10.0.100/32 to lo in dr-demo-rs1"), HasSubstr("/32"));
  EXPECT_THAT(
      why_of(p, "add real server 10.10.0.11 (dr) to tcp 10.10.0.100:80 in dr-demo-director"),
      HasSubstr("MAC"));
  std::string e = render_explain(t, p);
  EXPECT_THAT(e, HasSubstr("director: director (DR)"));
  EXPECT_THAT(e, HasSubstr("rs1: real server (DR)"));
}

TEST(DemoPlans, NatDemoTeachesTheGatewayAndForwarding) {
  Plan p = make_plan(load("nat-demo"));
  EXPECT_THAT(why_of(p, "add route default via 10.20.0.1 in nat-demo-rs1"), HasSubstr("un-NAT"));
  EXPECT_THAT(why_of(p, "set net.ipv4.ip_forward=1 in nat-demo-director"),
              HasSubstr("ip_forward=1"));
}

TEST(DemoPlans, TunDemoTeachesTunl0AndReversePath) {
  Plan p = make_plan(load("tun-demo"));
  EXPECT_THAT(why_of(p, "set net.ipv4.conf.tunl0.rp_filter=0 in tun-demo-rs1"),
              HasSubstr("reverse-path"));
  EXPECT_THAT(why_of(p, "bring up tunl0 in tun-demo-rs2"), HasSubstr("only while"));
  EXPECT_THAT(why_of(p, "set net.ipv4.conf.all.rp_filter=0 in tun-demo-router"),
              HasSubstr("VIP as source"));
}

TEST(DemoPlans, SchedDemoHasOneSchedulerPerVipAndAProofOfEach) {
  Topology t = load("sched-demo");
  Plan p = make_plan(t);
  EXPECT_THAT(why_of(p, "add IPVS service tcp 10.10.0.101:80 in sched-demo-director"),
              HasSubstr("in proportion to the weights"));
  EXPECT_THAT(why_of(p, "add IPVS service tcp 10.10.0.104:80 in sched-demo-director"),
              HasSubstr("one client address always lands on the same real server"));
  EXPECT_THAT(why_of(p, "add IPVS service tcp 10.10.0.106:80 in sched-demo-director"),
              HasSubstr("persistent for 300 s"));
  EXPECT_THAT(render_explain(t, p), HasSubstr("service tcp 10.10.0.106:80, scheduler rr, persistent 300 s\n"));
  EXPECT_THAT(why_of(p, "add IPVS service tcp 10.10.0.102:80 in sched-demo-director"),
              HasSubstr("dynamic: it counts the load"));
  const Node* d = t.node("director");
  ASSERT_NE(d, nullptr);
  std::map<std::string, std::string> sched_of;
  for (const auto& s : d->services) {
    sched_of[s.name] = s.scheduler;
    ASSERT_EQ(s.real_servers.size(), 3u) << s.name;
    EXPECT_EQ(s.real_servers[0].weight, 1) << s.name;
    EXPECT_EQ(s.real_servers[1].weight, 2) << s.name;
    EXPECT_EQ(s.real_servers[2].weight, s.name == "drain" ? 0 : 3) << s.name;
  }
  // Every check names the service whose promise it proves, with the kind that proves it.
  std::map<std::string, std::string> kind_of;
  for (const auto& c : t.checks) kind_of[sched_of.at(c.service) + (c.service == "persist" ? "+p" : "")] = c.kind;
  EXPECT_EQ(kind_of["rr"], "balance");
  EXPECT_EQ(kind_of["wrr"], "balance");
  EXPECT_EQ(kind_of["lc"], "least-conn");
  EXPECT_EQ(kind_of["wlc"], "least-conn");
  EXPECT_EQ(kind_of["sh"], "sticky");
  EXPECT_EQ(kind_of["dh"], "sticky");
  EXPECT_EQ(kind_of["rr+p"], "sticky");
}

TEST(DemoPlans, EveryDemoRendersAScriptWithEveryStep) {
  for (const char* demo : {"nat-demo", "dr-demo", "tun-demo", "sched-demo"}) {
    Plan p = make_plan(load(demo));
    ASSERT_FALSE(p.steps.empty()) << demo;
    std::string s = render_script(p);
    for (const auto& step : p.steps)
      EXPECT_THAT(s, HasSubstr("\n" + shell_command(step.step) + "\n")) << demo;
  }
}

}  // namespace
}  // namespace labctl
