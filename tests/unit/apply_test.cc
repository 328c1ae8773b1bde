#include "labctl/lab/apply.h"

#include <algorithm>
#include <set>

#include <gtest/gtest.h>

namespace labctl {
namespace {

// Records what it was asked to do; fails the steps whose descriptions are in `fail_on`.
class Recorder final : public Executor {
 public:
  std::vector<std::string> log;
  std::set<std::string> fail_on;
  bool batch_all = false;  ///< apply_run attempts every step, as the real one does.

  Status apply(const Step& s) override {
    log.push_back("apply " + describe(s));
    if (fail_on.count(describe(s))) return fail("boom");
    return {};
  }
  Status revert(const Step& s) override {
    log.push_back("revert " + describe(s));
    return {};
  }
  std::vector<Status> apply_run(std::span<const Step> steps) override {
    if (!batch_all) return Executor::apply_run(steps);
    log.push_back("run x" + std::to_string(steps.size()));
    std::vector<Status> out;
    for (const auto& s : steps) out.push_back(apply(s));
    return out;
  }
};

Plan plan_of(std::vector<Step> steps) {
  Plan p;
  p.lab = "t";
  for (auto& s : steps) p.steps.push_back({std::move(s), "n", ""});
  return p;
}

Plan three_namespaces_then_a_link() {
  return plan_of({step::CreateNetns{"t-a", "t", "a"}, step::CreateNetns{"t-b", "t", "b"},
                  step::CreateNetns{"t-c", "t", "c"}, step::LinkUp{"t-a", "lo"}});
}

TEST(ApplyPlan, RunsEveryStepInOrder) {
  Recorder r;
  std::vector<size_t> seen;
  ApplyOptions o;
  o.on_step = [&](size_t i, const PlannedStep&) { seen.push_back(i); };
  ASSERT_TRUE(apply_plan(three_namespaces_then_a_link(), r, o));
  EXPECT_EQ(r.log.size(), 4u);
  EXPECT_EQ(seen, (std::vector<size_t>{0, 1, 2, 3}));
}

TEST(ApplyPlan, FailureRevertsWhatWasDoneNewestFirstAndNamesTheStep) {
  Recorder r;
  r.fail_on = {describe(step::LinkUp{"t-a", "lo"})};
  auto st = apply_plan(three_namespaces_then_a_link(), r);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("step 4/4: bring up lo in t-a: boom"), std::string::npos)
      << st.error().message;
  std::vector<std::string> reverts(r.log.end() - 3, r.log.end());
  EXPECT_EQ(reverts, (std::vector<std::string>{"revert create namespace t-c",
                                               "revert create namespace t-b",
                                               "revert create namespace t-a"}));
}

TEST(ApplyPlan, NamespaceCreationsGoTogetherAndOnlyTheOnesMadeAreReverted) {
  Recorder r;
  r.batch_all = true;
  r.fail_on = {describe(step::CreateNetns{"t-b", "t", "b"})};
  auto st = apply_plan(three_namespaces_then_a_link(), r);
  ASSERT_FALSE(st);
  EXPECT_EQ(r.log.front(), "run x3");
  EXPECT_NE(st.error().message.find("step 2/4: create namespace t-b"), std::string::npos);
  // a and c were made (c after b failed, as parallel creation does): both are undone.
  EXPECT_EQ(std::count(r.log.begin(), r.log.end(), "revert create namespace t-a"), 1);
  EXPECT_EQ(std::count(r.log.begin(), r.log.end(), "revert create namespace t-c"), 1);
  EXPECT_EQ(std::count(r.log.begin(), r.log.end(), "revert create namespace t-b"), 0);
  EXPECT_EQ(std::count(r.log.begin(), r.log.end(), "apply bring up lo in t-a"), 0);
}

TEST(ApplyPlan, RtnetlinkStepsInOneNamespaceGoAsOneRun) {
  Plan p = plan_of({step::CreateNetns{"t-a", "t", "a"}, step::CreateNetns{"t-b", "t", "b"},
                    step::LinkUp{"t-a", "lo"}, step::LinkUp{"t-a", "eth0"},
                    step::AddAddress{"t-a", "eth0", *IpPrefix::parse("10.0.0.1/24")},
                    step::LinkUp{"t-b", "lo"}, step::SetSysctl{"t-b", "net.ipv4.ip_forward", "1"},
                    step::LinkUp{"t-b", "eth0"}, step::StartAgent{"t-b", "t", "b", {}}});
  std::vector<size_t> ends;
  for (size_t i = 0; i < p.steps.size(); i = run_end(p, i)) ends.push_back(run_end(p, i));
  EXPECT_EQ(ends, (std::vector<size_t>{2, 5, 6, 7, 8, 9}));
}

TEST(ApplyPlan, SysctlsInOneNamespaceGoAsOneRun) {
  Plan p = plan_of({step::SetSysctl{"t-a", "net.ipv4.ip_forward", "1"},
                    step::SetSysctl{"t-a", "net.ipv4.conf.all.arp_ignore", "1"},
                    step::SetSysctl{"t-b", "net.ipv4.ip_forward", "1"},
                    step::LinkUp{"t-b", "lo"}, step::SetSysctl{"t-b", "net.ipv4.conf.all.arp_ignore", "1"}});
  std::vector<size_t> ends;
  for (size_t i = 0; i < p.steps.size(); i = run_end(p, i)) ends.push_back(run_end(p, i));
  EXPECT_EQ(ends, (std::vector<size_t>{2, 3, 4, 5}));
}

TEST(ApplyPlan, AFailureInsideARunRevertsEveryStepOfItThatWasDone) {
  Recorder r;
  r.batch_all = true;
  r.fail_on = {describe(step::LinkUp{"t-a", "eth0"})};
  auto st = apply_plan(plan_of({step::CreateNetns{"t-a", "t", "a"}, step::LinkUp{"t-a", "lo"},
                                step::LinkUp{"t-a", "eth0"}, step::LinkUp{"t-a", "eth1"}}),
                       r);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("step 3/4: bring up eth0 in t-a: boom"), std::string::npos)
      << st.error().message;
  // The kernel goes on past a failed request of a batch: eth1 was done, and is undone.
  std::vector<std::string> reverts(r.log.end() - 3, r.log.end());
  EXPECT_EQ(reverts, (std::vector<std::string>{"revert bring up eth1 in t-a",
                                               "revert bring up lo in t-a",
                                               "revert create namespace t-a"}));
}

TEST(ApplyPlan, InterruptionRollsBackBeforeTheNextStep) {
  Recorder r;
  std::atomic<bool> cancel{false};
  ApplyOptions o;
  o.cancel = &cancel;
  o.on_step = [&](size_t, const PlannedStep&) { cancel = true; };
  auto st = apply_plan(plan_of({step::LinkUp{"t-a", "lo"}, step::LinkUp{"t-b", "lo"}}), r, o);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, "interrupted");
  EXPECT_EQ(r.log, (std::vector<std::string>{"apply bring up lo in t-a", "revert bring up lo in t-a"}));
}

}  // namespace
}  // namespace labctl
