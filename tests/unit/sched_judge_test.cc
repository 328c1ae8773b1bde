// The scheduler checks' verdicts as pure functions: right spreads pass, and every wrong one
// fed here (a drained server answering, an uneven rr, a source on two servers, a new
// connection to a busy server) must fail, saying what broke.
#include <chrono>
#include <cstring>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "labctl/checks/checks.h"
#include "labctl/checks/sched_judge.h"

namespace labctl::sched {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::vector<Share> shares_of(const std::string& scheduler, const std::vector<int>& weights) {
  auto x = expected_shares(scheduler, false, weights);
  std::vector<Share> out;
  for (size_t i = 0; i < x.size(); ++i) out.push_back({"rs" + std::to_string(i + 1), x[i]});
  return out;
}

TEST(SharesExact, RoundRobinOverWholeCyclesIsExact) {
  auto s = shares_of("rr", {1, 2, 3});
  EXPECT_THAT(share_problems(s, {{"rs1", 4}, {"rs2", 4}, {"rs3", 4}}, 12, 12, 0), IsEmpty());
  auto why = share_problems(s, {{"rs1", 3}, {"rs2", 5}, {"rs3", 4}}, 12, 12, 0);
  ASSERT_EQ(why.size(), 2u);
  EXPECT_EQ(why[0], "rs1 got 3, expected exactly 4");
  EXPECT_EQ(why[1], "rs2 got 5, expected exactly 4");
}

TEST(SharesExact, WeightedRoundRobinFollowsTheWeights) {
  auto s = shares_of("wrr", {1, 2, 3});
  EXPECT_THAT(share_problems(s, {{"rs1", 2}, {"rs2", 4}, {"rs3", 6}}, 12, 12, 0), IsEmpty());
  // rr's even spread is wrong for wrr: rs1 above its 2, rs3 below its 6 (rs2's 4 is right).
  EXPECT_THAT(share_problems(s, {{"rs1", 4}, {"rs2", 4}, {"rs3", 4}}, 12, 12, 0),
              ElementsAre("rs1 got 4, expected exactly 2", "rs3 got 4, expected exactly 6"));
  // A third of 30 is not "above" 10 because of rounding.
  EXPECT_THAT(share_problems(shares_of("rr", {1, 1, 1}), {{"rs1", 10}, {"rs2", 10}, {"rs3", 10}}, 30, 30, 0),
              IsEmpty());
}

TEST(SharesExact, WeightZeroGetsNothingEvenOnce) {
  auto s = shares_of("wrr", {1, 2, 0});
  EXPECT_THAT(share_problems(s, {{"rs1", 4}, {"rs2", 8}}, 12, 12, 0), IsEmpty());
  auto why = share_problems(s, {{"rs1", 4}, {"rs2", 7}, {"rs3", 1}}, 12, 12, 0.25);
  ASSERT_FALSE(why.empty());
  EXPECT_EQ(why.back(), "rs3 has weight 0 but answered 1");
}

TEST(SharesExact, ConclusiveBeforeTheEnd) {
  // After 6 of 12, rs1 at 0 can still reach 4; rs3 at 6 is already above 4.
  auto s = shares_of("rr", {1, 1, 1});
  EXPECT_THAT(share_problems(s, {{"rs2", 2}, {"rs3", 4}}, 6, 12, 0), IsEmpty());
  EXPECT_THAT(share_problems(s, {{"rs3", 5}}, 5, 12, 0), ElementsAre("rs3 got 5, expected exactly 4"));
  EXPECT_THAT(share_problems(s, {{"rs2", 5}, {"rs3", 4}}, 9, 12, 0),
              ElementsAre("rs1 got 0 of the first 9 and can no longer reach 4 of 12", "rs2 got 5, expected exactly 4"));
}

TEST(Sticky, PromisesFollowSchedulerAndPersistence) {
  EXPECT_EQ(stickiness("sh", false), Stickiness::PerSource);
  EXPECT_EQ(stickiness("mh", false), Stickiness::PerSource);
  EXPECT_EQ(stickiness("dh", false), Stickiness::PerDestination);
  EXPECT_EQ(stickiness("rr", true), Stickiness::PerClient);
  EXPECT_EQ(stickiness("sh", true), Stickiness::PerClient) << "persistence decides first";
  EXPECT_EQ(stickiness("rr", false), Stickiness::None);
  EXPECT_EQ(stickiness("wlc", false), Stickiness::None);
}

TEST(Sticky, SourceHashingKeepsEachSourceNotAllSources) {
  std::vector<SourceAnswers> a = {{"10.0.0.10", "10.0.0.10", {{"rs3", 4}}, 0},
                                  {"10.0.0.20", "10.0.0.20", {{"rs1", 4}}, 0}};
  EXPECT_THAT(sticky_problems(Stickiness::PerSource, "sh", a), IsEmpty());
  // dh: the same answers break "one server per destination".
  auto why = sticky_problems(Stickiness::PerDestination, "dh", a);
  ASSERT_EQ(why.size(), 1u);
  EXPECT_EQ(why[0], "the sources reached different servers: 10.0.0.10 -> rs3 4, 10.0.0.20 -> rs1 4");
}

TEST(Sticky, ASourceOnTwoServersFails) {
  std::vector<SourceAnswers> a = {{"10.0.0.10", "10.0.0.10", {{"rs1", 2}, {"rs2", 2}}, 0},
                                  {"10.0.0.20", "10.0.0.20", {{"rs3", 4}}, 0}};
  EXPECT_THAT(sticky_problems(Stickiness::PerSource, "sh", a), ElementsAre("10.0.0.10 reached rs1 2, rs2 2"));
}

TEST(Sticky, PersistenceGroupsSourcesByNetmask) {
  // Under a /24 netmask both addresses are one client: they must share a server.
  std::vector<SourceAnswers> a = {{"10.0.0.10", "10.0.0.0", {{"rs1", 4}}, 0},
                                  {"10.0.0.20", "10.0.0.0", {{"rs2", 4}}, 0}};
  auto why = sticky_problems(Stickiness::PerClient, "rr", a);
  ASSERT_EQ(why.size(), 1u);
  EXPECT_THAT(why[0], HasSubstr("client 10.0.0.0 reached rs1 4, rs2 4"));
  a[1].client = "10.0.0.20";
  EXPECT_THAT(sticky_problems(Stickiness::PerClient, "rr", a), IsEmpty());
}

TEST(Sticky, PersistenceClientIsTheSourceUnderTheNetmask) {
  const auto a = *IpAddr::parse("10.10.0.20");
  uint32_t mask24, mask32;
  const uint8_t m24[4] = {255, 255, 255, 0}, m32[4] = {255, 255, 255, 255};
  std::memcpy(&mask24, m24, 4);  // as the kernel keeps it: network order
  std::memcpy(&mask32, m32, 4);
  EXPECT_EQ(persistence_client(a, mask32), "10.10.0.20");
  EXPECT_EQ(persistence_client(a, mask24), "10.10.0.0");
  EXPECT_EQ(persistence_client(a, 0), "10.10.0.20");
  EXPECT_EQ(persistence_client(*IpAddr::parse("fd00::1:2"), 64), "fd00::");
  EXPECT_EQ(persistence_client(*IpAddr::parse("fd00::1:2"), 128), "fd00::1:2");
}

TEST(Sticky, NoPromiseIsAFailureWhateverTheAnswers) {
  std::vector<SourceAnswers> a = {{"10.0.0.10", "10.0.0.10", {{"rs1", 4}}, 0}};
  auto why = sticky_problems(Stickiness::None, "rr", a);
  ASSERT_EQ(why.size(), 1u);
  EXPECT_THAT(why[0], HasSubstr("rr without persistence promises no stickiness"));
}

TEST(LeastLoaded, LcCountsActive256TimesInactiveAndIgnoresWeights) {
  std::vector<DestLoad> d = {{"rs1", 1, 2, 0}, {"rs2", 2, 1, 9}, {"rs3", 3, 1, 3}};
  EXPECT_THAT(least_loaded("lc", d), ElementsAre("rs3"));
  d[2].inactive = 9;
  EXPECT_THAT(least_loaded("lc", d), ElementsAre("rs2", "rs3")) << "a tie allows either";
  // 256 inactive weigh as much as one active connection.
  EXPECT_THAT(least_loaded("lc", {{"rs1", 1, 1, 0}, {"rs2", 1, 0, 300}}), ElementsAre("rs1"));
}

TEST(LeastLoaded, WlcDividesByWeight) {
  // 1 of weight 1 against 2 of weight 3: 256 > 512/3.
  std::vector<DestLoad> d = {{"rs1", 1, 1, 0}, {"rs2", 2, 2, 0}, {"rs3", 3, 2, 0}};
  EXPECT_THAT(least_loaded("wlc", d), ElementsAre("rs3"));
  EXPECT_THAT(least_loaded("lc", d), ElementsAre("rs1")) << "lc would pick the emptiest instead";
}

TEST(LeastLoaded, WeightZeroNeverAndNqPrefersIdle) {
  EXPECT_THAT(least_loaded("lc", {{"rs1", 0, 0, 0}, {"rs2", 1, 5, 0}}), ElementsAre("rs2"));
  EXPECT_THAT(least_loaded("lc", {{"rs1", 0, 0, 0}}), IsEmpty());
  // sed: (active + 1) / weight: rs1 (0+1)/1 = 1 against rs2 (1+1)/4 = 0.5.
  std::vector<DestLoad> d = {{"rs1", 1, 0, 0}, {"rs2", 4, 1, 0}};
  EXPECT_THAT(least_loaded("sed", d), ElementsAre("rs2"));
  EXPECT_THAT(least_loaded("nq", d), ElementsAre("rs1")) << "nq never queues on a busy server while one is idle";
}

TEST(LeastLoaded, OtherSchedulersAreJudgedByWlc) {
  EXPECT_FALSE(counts_connections("rr"));
  EXPECT_TRUE(counts_connections("wlc"));
  std::vector<DestLoad> d = {{"rs1", 1, 2, 0}, {"rs2", 1, 0, 0}};
  // rr sending the next connection to rs1 breaks the least-connection promise.
  EXPECT_THAT(least_loaded("rr", d), ElementsAre("rs2"));
}

TEST(LeastLoaded, AServerNearItsLimitMayBeSkipped) {
  // rs1 is least loaded but between l_thresh and u_thresh: the kernel may have flagged it.
  DestLoad rs1{"rs1", 1, 3, 0, 4, 2};
  DestLoad rs2{"rs2", 1, 5, 0, 0, 0};
  EXPECT_THAT(least_loaded("lc", {rs1, rs2}), ElementsAre("rs1", "rs2"));
  rs1.active = 1;  // below l_thresh: certainly not overloaded
  EXPECT_THAT(least_loaded("lc", {rs1, rs2}), ElementsAre("rs1"));
}

TEST(LeastLoaded, AChoiceIsJudgedOnlyWhenNothingElseMovedTheCounts) {
  std::vector<DestLoad> before = {{"rs1", 1, 2, 5}, {"rs2", 1, 1, 5}};
  // The new connection to rs1, still active or already closed: judged.
  EXPECT_TRUE(only_this_connection(before, {{"rs1", 1, 3, 5}, {"rs2", 1, 1, 5}}, "rs1"));
  EXPECT_TRUE(only_this_connection(before, {{"rs1", 1, 2, 6}, {"rs2", 1, 1, 5}}, "rs1"));
  // An old connection of rs2 expired meanwhile, or one of rs1's: not judged.
  EXPECT_FALSE(only_this_connection(before, {{"rs1", 1, 3, 5}, {"rs2", 1, 1, 4}}, "rs1"));
  EXPECT_FALSE(only_this_connection(before, {{"rs1", 1, 3, 4}, {"rs2", 1, 1, 5}}, "rs1"));
  // A server gone from the table.
  EXPECT_FALSE(only_this_connection(before, {{"rs1", 1, 3, 5}}, "rs1"));
}

TEST(LeastLoaded, LoadsText) {
  EXPECT_EQ(loads_text({{"rs1", 1, 2, 0}, {"rs2", 2, 1, 9}}), "rs1 2/0, rs2 1/9");
}

// The new kinds carry what passing means into --json and --junit ("expected"), and a
// deadline of their own.
TEST(SchedKinds, ExpectationAndDeadline) {
  for (const char* kind : {"sticky", "least-conn"}) {
    EXPECT_EQ(default_deadline(kind), std::chrono::seconds(10)) << kind;
    EXPECT_EQ(check_expectation(kind).find("kind "), std::string::npos) << kind;
  }
  CheckReport rep{"sched-demo", {}};
  CheckResult r;
  r.name = "sh-per-source";
  r.kind = "sticky";
  r.detail = "10.10.0.10 reached rs1 2, rs2 2";
  r.expected = check_expectation("sticky");
  rep.results.push_back(r);
  auto j = checks_json(rep);
  EXPECT_EQ(j["checks"][0]["expected"], check_expectation("sticky"));
  EXPECT_FALSE(j["passed"].get<bool>());
}

}  // namespace
}  // namespace labctl::sched

// The kernel's rule (is_new_conn_expected in ip_vs_core.c): which earlier entries a reused
// client port follows, unscheduled, under each conn_reuse_mode.
TEST(ReusedPorts, FollowsTheKernelsRuleForEachMode) {
  using labctl::sched::OldEntry;
  using labctl::sched::reused_unscheduled;
  const OldEntry dr_fin{"rs1", "FIN_WAIT", true}, nat_fin{"rs1", "FIN_WAIT", false};
  const OldEntry time_wait{"rs1", "TIME_WAIT", false}, close{"rs1", "CLOSE", false};
  const OldEntry established{"rs1", "ESTABLISHED", true};
  for (const auto& e : {dr_fin, nat_fin, time_wait, close, established}) EXPECT_TRUE(reused_unscheduled(e, 0));
  EXPECT_TRUE(reused_unscheduled(dr_fin, 1));  // the default: a DR director's FIN_WAIT is followed
  EXPECT_FALSE(reused_unscheduled(dr_fin, 3));
  EXPECT_TRUE(reused_unscheduled(nat_fin, 3));  // a NAT director saw the server: it waits for TIME_WAIT
  EXPECT_FALSE(reused_unscheduled(time_wait, 1));
  EXPECT_FALSE(reused_unscheduled(close, 1));
  EXPECT_TRUE(reused_unscheduled(established, 3));
}

// The case seen in CI: persistence turned on while a DR director held FIN_WAIT entries of
// the client's earlier, unpersisted requests; one reused port went to rs1, not the template's
// rs2. The note names them and both ways out; with mode 3 (or only TIME_WAIT entries) there
// is nothing to name.
TEST(ReusedPorts, NoteNamesTheEntriesAndTheWaysOut) {
  using labctl::sched::OldEntry;
  using labctl::sched::reused_ports_note;
  const std::vector<OldEntry> fin = {{"rs1", "FIN_WAIT", true}, {"rs1", "FIN_WAIT", true}, {"rs2", "FIN_WAIT", true}};
  const std::string note = reused_ports_note(fin, 1);
  EXPECT_THAT(note, ::testing::HasSubstr("3 entries"));
  EXPECT_THAT(note, ::testing::HasSubstr("FIN_WAIT 3; to rs1 2, rs2 1"));
  EXPECT_THAT(note, ::testing::HasSubstr("conn_reuse_mode = 1"));
  EXPECT_THAT(note, ::testing::HasSubstr("never sees the server's FIN"));
  EXPECT_THAT(note, ::testing::HasSubstr("net.ipv4.vs.conn_reuse_mode = 3 on the director"));
  EXPECT_EQ(reused_ports_note(fin, 3), "");
  EXPECT_EQ(reused_ports_note({{"rs1", "TIME_WAIT", false}}, 1), "");
  EXPECT_EQ(reused_ports_note({}, 1), "");
  EXPECT_THAT(reused_ports_note({{"rs1", "FIN_WAIT", false}}, 1),
              ::testing::Not(::testing::HasSubstr("never sees")));
}
