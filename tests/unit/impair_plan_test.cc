// Declared impairments in the plan (issue 23): `impair` on a node's interface and
// `port_impair` on its switch port become one set-impairment step each, before the link
// comes up, with their tc line for --dry-run, their fields for --json, a why for explain,
// and the kernel needs `up` probes first.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "labctl/model/load.h"
#include "labctl/plan/needs.h"
#include "labctl/plan/planner.h"
#include "labctl/plan/render.h"

namespace labctl {
namespace {

using ::testing::HasSubstr;

constexpr const char* kLab = R"(
version = 1
name = "imp"
[switches.lan]
mtu = 9000
[nodes.a]
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.1/24"], impair = { rate = "10mbit" } }
interfaces.eth1 = { peer = "b:eth1", addresses = ["10.0.1.1/24"], impair = { delay = "20ms", jitter = "5ms", loss = "1%" } }
[nodes.b]
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.2/24"], port_impair = { delay = "50ms" } }
interfaces.eth1 = { peer = "a:eth1", addresses = ["10.0.1.2/24"] }
)";

Topology lab(const char* text = kLab) {
  LoadResult r = parse_topology(text, "imp.toml");
  std::string all;
  for (const auto& d : r.diagnostics) all += format_diagnostic(d) + "\n";
  EXPECT_TRUE(r.topology) << all;
  return r.topology ? *r.topology : Topology{};
}

/// Index of the step whose describe() starts with `prefix`, or -1.
long find(const Plan& p, const std::string& prefix) {
  for (size_t i = 0; i < p.steps.size(); ++i)
    if (describe(p.steps[i].step).rfind(prefix, 0) == 0) return static_cast<long>(i);
  return -1;
}

TEST(ImpairPlan, OneStepPerImpairedEndBeforeItsLinkComesUp) {
  Plan p = make_plan(lab());
  size_t n = 0;
  for (const auto& ps : p.steps) n += std::holds_alternative<step::SetImpairment>(ps.step);
  EXPECT_EQ(n, 3u);
  for (auto [impair, up] : {std::pair{"impair eth0 in imp-a", "bring up eth0 in imp-a"},
                            std::pair{"impair eth1 in imp-a", "bring up eth1 in imp-a"},
                            std::pair{"impair b-eth0 in imp-lan", "bring up b-eth0 in imp-lan"}}) {
    long i = find(p, impair), u = find(p, up);
    ASSERT_GE(i, 0) << impair;
    ASSERT_GE(u, 0) << up;
    EXPECT_LT(i, u) << impair << " must come before " << up;
    // After the link exists (the veth is made earlier in the plan).
    EXPECT_GT(i, find(p, "create veth"));
  }
  EXPECT_EQ(p.steps[find(p, "impair b-eth0 in imp-lan")].node, "lan");
}

TEST(ImpairPlan, DryRunLineIsTcsAndUndoClears) {
  Plan p = make_plan(lab());
  const Step& rate = p.steps[find(p, "impair eth0 in imp-a")].step;
  // The switch's MTU (9000) sizes tbf's bucket: at least one frame.
  EXPECT_EQ(shell_command(rate),
            "ip netns exec imp-a tc qdisc replace dev eth0 root tbf rate 10mbit burst 12500 "
            "limit 137500");
  EXPECT_EQ(std::get<step::SetImpairment>(rate).mtu, 9000);
  EXPECT_EQ(undo_command(rate), "ip netns exec imp-a tc qdisc del dev eth0 root");
  const Step& delay = p.steps[find(p, "impair eth1 in imp-a")].step;
  EXPECT_EQ(shell_command(delay),
            "ip netns exec imp-a tc qdisc replace dev eth1 root netem delay 20ms 5ms loss 1%");
  EXPECT_THAT(render_script(p), HasSubstr("tc qdisc replace dev b-eth0 root netem delay 50ms"));
  EXPECT_TRUE(is_rtnetlink_step(delay));
  EXPECT_EQ(step_type(delay), "set-impairment");
}

TEST(ImpairPlan, FieldsNameEachKeyInTcsUnits) {
  Plan p = make_plan(lab());
  const auto& s = std::get<step::SetImpairment>(p.steps[find(p, "impair eth1 in imp-a")].step);
  nlohmann::json f = s.fields();
  EXPECT_EQ(f["dev"], "eth1");
  EXPECT_EQ(f["qdisc"], "netem");
  EXPECT_EQ(f["impair"], (nlohmann::json{{"delay", "20ms"}, {"jitter", "5ms"}, {"loss", "1%"}}));
  const auto& r = std::get<step::SetImpairment>(p.steps[find(p, "impair eth0 in imp-a")].step);
  EXPECT_EQ(r.fields()["qdisc"], "tbf");
  EXPECT_EQ(r.fields()["impair"], (nlohmann::json{{"rate", "10mbit"}}));
}

TEST(ImpairPlan, WhySaysWhatAndThatItIsEgressOnly) {
  Plan p = make_plan(lab());
  const std::string& why = p.steps[find(p, "impair eth1 in imp-a")].why;
  EXPECT_THAT(why, HasSubstr("netem"));
  EXPECT_THAT(why, HasSubstr("delay 20ms"));
  EXPECT_THAT(why, HasSubstr("egress only"));
  EXPECT_THAT(why, HasSubstr("b:eth1"));  // the other end, to impair the way back
  EXPECT_THAT(p.steps[find(p, "impair eth0 in imp-a")].why, HasSubstr("give a:eth0 a port_impair"));
  EXPECT_THAT(p.steps[find(p, "impair b-eth0 in imp-lan")].why, HasSubstr("towards b:eth0"));
}

TEST(ImpairPlan, NeedsNetemUnlessARateAlone) {
  KernelNeeds n = kernel_needs(make_plan(lab()));
  EXPECT_TRUE(n.netem);
  EXPECT_TRUE(n.tbf);
  EXPECT_TRUE(n.any());
  KernelNeeds rate_only = kernel_needs(make_plan(lab(R"(
version = 1
name = "imp"
[switches.lan]
[nodes.a]
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.1/24"], impair = { rate = "1mbit" } }
)")));
  EXPECT_FALSE(rate_only.netem);
  EXPECT_TRUE(rate_only.tbf);
  KernelNeeds none = kernel_needs(make_plan(lab(R"(
version = 1
name = "imp"
[switches.lan]
[nodes.a]
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.1/24"] }
)")));
  EXPECT_FALSE(none.netem);
  EXPECT_FALSE(none.tbf);
}

}  // namespace
}  // namespace labctl
