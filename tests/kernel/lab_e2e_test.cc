// Kernel tier: the demos brought up by labctl's own executor in a kernel with IPVS and
// IPIP, their checks passing, then taken down; and all-or-nothing at every step the host
// tier cannot reach (IPVS services, real servers, IPIP).
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include <gtest/gtest.h>

#include "labctl/checks/checks.h"
#include "labctl/kernel/ipvs.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/kernel/netns.h"
#include "labctl/plan/planner.h"
#include "labctl/lab/state.h"
#include "labctl/lab/status.h"
#include "labctl/model/load.h"
#include "tests/kernel/kernel_test.h"
#include "tests/support/fail_at.h"
#include "tests/support/kill_sweep.h"

namespace labctl {
namespace {

bool nothing_left(const std::string& lab) {
  for (const auto& ns : list_netns())
    if (ns.rfind(lab + "-", 0) == 0) return false;
  return !std::filesystem::exists(state_dir(lab));
}

// The root namespace's links, but for the fallback devices a tunnel module adds to every
// namespace, the root one included, when it loads (tunl0 once a lab first loads ipip): the
// kernel's doing, before any lab step, and gone only with the module.
std::string root_links() {
  return test::run_capture("ip -o link show | cut -d: -f2 | grep -vxE ' (tunl0|ip6tnl0|sit0|gre0|gretap0|erspan0|ip6gre0|ip_vti0|ip6_vti0)@NONE'");
}

// The first step that needs IPVS or IPIP (the host tier covers the ones before).
size_t first_kernel_feature_step(const Plan& plan) {
  for (size_t i = 0; i < plan.steps.size(); ++i) {
    const auto& s = plan.steps[i].step;
    if (std::holds_alternative<step::AddIpvsService>(s) || std::holds_alternative<step::EnableIpip>(s) ||
        std::holds_alternative<step::CreateIpip>(s))
      return i;
  }
  return plan.steps.size();
}

class KernelLab : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "kernel tier needs root";
    if (Status ipvs = test::ipvs_available(); !ipvs) LABCTL_KERNEL_SKIP() << ipvs.error().str();
    auto loaded = load_topology(GetParam());
    ASSERT_TRUE(loaded.ok());
    topo_ = *loaded.topology;
    plan_ = make_plan(topo_);
    ASSERT_TRUE(lab_namespaces(topo_.name).empty()) << topo_.name << " is up already";
  }
  void TearDown() override {
    if (topo_.name.empty()) return;
    EXPECT_TRUE(lab_down(topo_.name));
    EXPECT_TRUE(nothing_left(topo_.name));
  }
  Topology topo_;
  Plan plan_;
};

TEST_P(KernelLab, UpPassesEveryCheckAndStatusShowsTheService) {
  Status st = lab_up(topo_, plan_, {});
  ASSERT_TRUE(st) << st.error().str();
  auto rep = run_checks(topo_);
  ASSERT_TRUE(rep) << rep.error().str();
  EXPECT_FALSE(rep->results.empty());
  for (const auto& r : rep->results) {
    EXPECT_TRUE(r.passed) << r.name << ": " << r.detail;
  }
  auto s = lab_status(topo_.name);
  ASSERT_TRUE(s);
  size_t services = 0, dests = 0;
  for (const auto& n : s->namespaces) {
    services += n.services.size();
    for (const auto& d : n.dests) dests += d.size();
  }
  EXPECT_EQ(services, 1u);
  EXPECT_EQ(dests, 2u);
}

// What a grader or CI pipeline runs: `up --check --junit F`, exit 0, and a JUnit file that
// a real XML tool parses and validates, one passing testcase per check. For dr-demo also
// how long a passing `check` takes (the goal: under 3 s in the guest).
TEST_P(KernelLab, UpCheckWritesValidJunitAndEveryCheckPasses) {
  const std::string labctl = LABCTL_BINARY_DIR "/labctl/labctl";
  const std::string junit = "/tmp/labctl-" + topo_.name + ".xml";
  std::string out = test::run_capture(labctl + " up --check --junit " + junit + " " + topo_.name +
                                      " 2>&1; echo rc=$?");
  EXPECT_NE(out.find("rc=0"), std::string::npos) << out;
  std::string lint = test::run_capture("xmllint --noout --schema " LABCTL_TEST_DATA "/junit.xsd " + junit + " 2>&1");
  EXPECT_NE(lint.find(junit + " validates"), std::string::npos) << lint;
  auto xpath = [&](const std::string& expr) {
    std::string v = test::run_capture("xmllint --xpath '" + expr + "' " + junit + " 2>&1");
    while (!v.empty() && v.back() == '\n') v.pop_back();
    return v;
  };
  EXPECT_EQ(xpath("count(//testcase)"), std::to_string(topo_.checks.size()));
  EXPECT_EQ(xpath("count(//failure)"), "0");
  EXPECT_EQ(xpath("string(//testsuite/@name)"), topo_.name);
  for (const auto& c : topo_.checks)
    EXPECT_EQ(xpath("count(//testcase[@classname=\"" + topo_.name + "\" and @name=\"" + c.name + "\"])"), "1")
        << c.name;
  std::remove(junit.c_str());
  if (topo_.name != "dr-demo") return;
  const auto start = std::chrono::steady_clock::now();
  out = test::run_capture(labctl + " check dr-demo 2>&1; echo rc=$?");
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("  passing dr-demo: `labctl check` took %.2f s\n%s", s, out.c_str());
  EXPECT_NE(out.find("rc=0"), std::string::npos) << out;
  EXPECT_LT(s, 6.0) << "the goal is 3 s in the guest; this bound leaves room for a slow host";
}

// A failure injected at each IPVS/IPIP step and every step after it.
using test::FailAt;

TEST_P(KernelLab, FailureAtEveryKernelFeatureStepRollsBack) {
  const size_t first = first_kernel_feature_step(plan_);
  ASSERT_LT(first, plan_.steps.size());
  for (size_t i = first; i < plan_.steps.size(); ++i) {
    UpOptions o;
    o.wrap_executor = [i](Executor& real) { return std::make_unique<FailAt>(real, i); };
    Status st = lab_up(topo_, plan_, o);
    ASSERT_FALSE(st) << "step " << i;
    EXPECT_NE(st.error().message.find("injected failure"), std::string::npos);
    ASSERT_TRUE(nothing_left(topo_.name)) << "after a failure at step " << i << ": "
                                          << describe(plan_.steps[i].step);
  }
}

// A crash (SIGKILL) right after each step from just before the first IPVS/IPIP step to the
// last, in a child running `up`, then the real `labctl down` without state: every step the
// host tier cannot reach is crashed after exactly once, where timed kills hit them by chance
// (and cost ~1.6 s each under emulation). The host tier's timed sweep covers the steps
// before with 200 kills.
TEST_P(KernelLab, CrashAfterEveryKernelFeatureStepThenDownWithoutStateLeavesNothing) {
  const size_t first = first_kernel_feature_step(plan_);
  ASSERT_LT(first, plan_.steps.size());
  ASSERT_GT(first, 0u);
  const std::string labctl = LABCTL_BINARY_DIR "/labctl/labctl";
  const std::string links_before = root_links();
  const int agents_before = test::count_labagents();
  for (size_t i = first - 1; i < plan_.steps.size(); ++i) {
    const std::string after = "after step " + std::to_string(i) + " (" + describe(plan_.steps[i].step) + ")";
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      UpOptions o;
      o.on_step = [i](size_t at, const PlannedStep&) {
        if (at == i) ::raise(SIGKILL);
      };
      (void)lab_up(topo_, plan_, o);
      ::_exit(3);  // up ended without reaching step i
    }
    ASSERT_EQ(test::wait_status(pid), 128 + SIGKILL) << "up did not crash " << after;
    std::error_code ec;
    std::filesystem::remove_all(state_dir(topo_.name), ec);
    EXPECT_EQ(test::wait_status(test::spawn_quiet(labctl, {"down", topo_.name})), 0) << after;
    const auto left = test::traces_of(topo_.name);
    ASSERT_TRUE(left.empty()) << after << ": " << left.front() << " is left";
    ASSERT_EQ(test::count_labagents(), agents_before) << after << ": labagent(s) left";
  }
  EXPECT_EQ(root_links(), links_before) << "the root namespace's links changed";
}

// SIGKILLs from outside at moments spread over the whole of the real `labctl up dr-demo`
// (lock, journal, IPVS, agents), each followed by `labctl down` without state. The crash test
// above reaches every kernel step of every demo; these kills add the process as a whole,
// killed mid-step and mid-syscall. 30 kills over 1.2x a guest `up` of about 1 s land about
// 40 ms apart (200 cost 330 s of CI, 120 about 190 s, for no step more).
class KernelSweep : public KernelLab {};

TEST_P(KernelSweep, SigkillAnywhereInUpThenDownWithoutStateLeavesNothing) {
  const int kills = 30;
  const std::string links_before = root_links();
  auto r = test::kill_sweep(LABCTL_BINARY_DIR "/labctl/labctl", topo_.name, topo_.name, kills);
  EXPECT_GE(r.kills, kills);
  for (const auto& left : r.leftovers) ADD_FAILURE() << left;
  EXPECT_GT(r.finished_first, 0) << "up took " << r.up_ms << " ms";
  // At least a tenth landed inside up (the machine's speed varies 2x between runs here).
  EXPECT_LE(r.finished_first, r.kills * 9 / 10) << "up took " << r.up_ms << " ms";
  EXPECT_EQ(root_links(), links_before)
      << "the root namespace's links changed";
  std::printf("  kill sweep %s: %d kills over %.0f ms, %d after up had finished\n",
              topo_.name.c_str(), kills, r.up_ms * 1.2, r.finished_first);
}

INSTANTIATE_TEST_SUITE_P(Demos, KernelLab, ::testing::Values("dr-demo", "nat-demo", "tun-demo"),
                         [](const auto& param_info) {
                           std::string n = param_info.param;
                           n.erase(std::remove(n.begin(), n.end(), '-'), n.end());
                           return n;
                         });
INSTANTIATE_TEST_SUITE_P(Demos, KernelSweep, ::testing::Values("dr-demo"), [](const auto&) { return "drdemo"; });

}  // namespace
}  // namespace labctl
