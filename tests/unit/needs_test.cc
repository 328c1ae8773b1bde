// What a plan needs from the kernel, which `up` probes before its first step.
#include "labctl/plan/needs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "labctl/model/load.h"
#include "labctl/plan/planner.h"

namespace labctl {
namespace {

using ::testing::ElementsAre;

KernelNeeds needs_of(const std::string& builtin) {
  LoadResult r = load_topology(builtin);
  EXPECT_TRUE(r.topology) << builtin;
  return kernel_needs(make_plan(*r.topology));
}

TEST(KernelNeeds, DrAndNatNeedIpvsAndTheirSchedulersOnly) {
  for (const char* demo : {"dr-demo", "nat-demo"}) {
    KernelNeeds n = needs_of(demo);
    EXPECT_TRUE(n.ipvs) << demo;
    EXPECT_FALSE(n.ipip) << demo;
    EXPECT_FALSE(n.schedulers.empty()) << demo;
  }
}

TEST(KernelNeeds, TunNeedsIpip) {
  KernelNeeds n = needs_of("tun-demo");
  EXPECT_TRUE(n.ipvs);
  EXPECT_TRUE(n.ipip);
}

TEST(KernelNeeds, EachSchedulerOnceSorted) {
  LoadResult r = load_topology("dr-demo");
  ASSERT_TRUE(r.topology);
  Topology t = *r.topology;
  Node* director = nullptr;
  for (auto& n : t.nodes)
    if (!n.services.empty()) director = &n;
  ASSERT_TRUE(director);
  VirtualService extra = director->services.front();
  extra.name = "second";
  extra.port = 8080;
  extra.scheduler = "lc";
  director->services.front().scheduler = "wrr";
  director->services.push_back(extra);
  extra.name = "third";
  extra.port = 8081;
  director->services.push_back(extra);
  EXPECT_THAT(kernel_needs(make_plan(t)).schedulers, ElementsAre("lc", "wrr"));
}

TEST(KernelNeeds, SctpServicesAndMarksAreNeedsToo) {
  LoadResult r = load_topology(std::string(LABCTL_SOURCE_DIR) + "/tests/data/ipvs-features.toml");
  ASSERT_TRUE(r.topology);
  KernelNeeds n = kernel_needs(make_plan(*r.topology));
  EXPECT_TRUE(n.sctp);
  EXPECT_TRUE(n.nftables);
  EXPECT_FALSE(needs_of("dr-demo").sctp);
  EXPECT_FALSE(needs_of("dr-demo").nftables);
}

TEST(KernelNeeds, AStretchedSwitchNeedsVxlan) {
  Plan p;
  p.lab = "x";
  p.steps.push_back({step::CreateBridge{"x-lan", "lan", 0}, "lan", ""});
  EXPECT_FALSE(kernel_needs(p).vxlan);
  step::CreateVxlan v;
  v.ns = "x-lan";
  p.steps.push_back({v, "lan", ""});
  EXPECT_TRUE(kernel_needs(p).vxlan);
  EXPECT_TRUE(kernel_needs(p).any());
  EXPECT_FALSE(needs_of("dr-demo").vxlan);
}

TEST(KernelNeeds, APlainRoutedLabNeedsNothingSpecial) {
  Plan p;
  p.lab = "x";
  EXPECT_FALSE(kernel_needs(p).any());
}

}  // namespace
}  // namespace labctl
