// Host tier: impairments as root qdiscs (kernel/qdisc.h) on a veth inside a namespace of the
// test's own (root needed). tbf is set, read back, refused twice, replaced and cleared; the
// --dry-run line (tc_command) run by tc makes the same qdisc; a netem on a kernel without it
// fails with the hint that names CONFIG_NET_SCH_NETEM. The namespace goes with each test.
#include <gtest/gtest.h>
#include <linux/pkt_sched.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>

#include "labctl/base/shell_quote.h"
#include "labctl/kernel/features.h"
#include "labctl/kernel/netns.h"
#include "labctl/kernel/qdisc.h"
#include "tests/host/host_test.h"
#include "tests/support/impair_print.h"

namespace labctl {
namespace {

using namespace std::chrono_literals;

nlohmann::json tc_json(const std::string& ns, const std::string& dev) {
  std::string out;
  FILE* p =
      ::popen((shell_join({"ip", "netns", "exec", ns, "tc", "-j", "qdisc", "show", "dev", dev}) +
               " 2>/dev/null")
                  .c_str(),
              "r");
  if (!p) return nullptr;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
}

Impairment rate_of(uint64_t bytes) {
  Impairment i;
  i.rate = bytes;
  return i;
}

class HostQdisc : public ::testing::Test {
 protected:
  void SetUp() override {
    LABCTL_REQUIRE_ROOT();
    ns_ = test::unique_name("lt-qdisc");
    ASSERT_TRUE(create_netns(ns_));
    made_ = true;
    auto fd = open_netns(ns_);
    ASSERT_TRUE(fd) << fd.error().str();
    Status st = run_in_netns(fd->get(), [&]() -> Status {
      TRY_ASSIGN(Rtnl r, Rtnl::open(ns_));
      rtnl_.emplace(std::move(r));
      return {};
    });
    ASSERT_TRUE(st) << st.error().str();
    st = rtnl_->apply([](RtnlBatch& b) -> Status {
      TRY(b.create_veth("qa0", "qb0", -1, 0, "", ""));
      TRY(b.link_up("qa0"));
      return b.link_up("qb0");
    });
    ASSERT_TRUE(st) << st.error().str();
  }
  void TearDown() override {
    rtnl_.reset();
    if (made_) {
      EXPECT_TRUE(delete_netns(ns_));
    }
  }

  QdiscInfo root(const std::string& dev) {
    auto q = root_qdisc(*rtnl_, dev);
    EXPECT_TRUE(q) << q.error().str();
    return q ? *q : QdiscInfo{};
  }

  std::string ns_;
  bool made_ = false;
  std::optional<Rtnl> rtnl_;
};

TEST_F(HostQdisc, TbfSetReadBackReplaceClear) {
  EXPECT_EQ(root("qa0").kind, "noqueue") << "a veth starts without a qdisc of its own";

  Status st = set_impairment(*rtnl_, "qa0", rate_of(1250000), QdiscChange::Add);
  ASSERT_TRUE(st) << st.error().str();
  QdiscInfo q = root("qa0");
  EXPECT_EQ(q.kind, "tbf");
  EXPECT_EQ(q.parent, TC_H_ROOT);
  ASSERT_TRUE(q.impairment);
  EXPECT_EQ(*q.impairment, rate_of(1250000));
  EXPECT_EQ(root("qb0").kind, "noqueue") << "the peer is not touched";

  // The kernel holds the bucket and the queue labctl asked for, as tc shows them.
  const TbfShape shape = tbf_shape(1250000);
  nlohmann::json tc = tc_json(ns_, "qa0");
  ASSERT_TRUE(tc.is_array() && tc.size() == 1) << tc.dump();
  EXPECT_EQ(tc[0]["kind"], "tbf");
  EXPECT_EQ(tc[0]["options"]["rate"], 1250000) << tc.dump();
  EXPECT_EQ(tc[0]["options"]["burst"], shape.burst) << tc.dump();
  // tc 6.1 prints no limit in JSON but the latency it makes (limit - burst at the rate).
  EXPECT_EQ(tc[0]["options"]["lat"], (shape.limit - shape.burst) * 1000000ull / 1250000)
      << tc.dump();

  // Add on a link that has one: refused, and the error says what to do.
  st = set_impairment(*rtnl_, "qa0", rate_of(125000), QdiscChange::Add);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().errnum, EEXIST);
  EXPECT_EQ(st.error().message, "add tbf on qa0 (1mbit) in " + ns_);
  EXPECT_NE(st.error().hint.find("clear it first"), std::string::npos) << st.error().str();
  EXPECT_EQ(*root("qa0").impairment, rate_of(1250000)) << "the refused change changed nothing";

  st = set_impairment(*rtnl_, "qa0", rate_of(125000), QdiscChange::Replace);
  ASSERT_TRUE(st) << st.error().str();
  EXPECT_EQ(*root("qa0").impairment, rate_of(125000));
  st = set_impairment(*rtnl_, "qa0", rate_of(125000), QdiscChange::Replace);
  ASSERT_TRUE(st) << "replacing with the same is fine: " << st.error().str();

  st = clear_impairment(*rtnl_, "qa0");
  ASSERT_TRUE(st) << st.error().str();
  q = root("qa0");
  EXPECT_EQ(q.kind, "noqueue");
  EXPECT_FALSE(q.impairment);
  st = clear_impairment(*rtnl_, "qa0");
  EXPECT_TRUE(st) << "clearing a link with nothing set is no error: " << st.error().str();

  st = set_impairment(*rtnl_, "nosuch0", rate_of(125000));
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().errnum, ENODEV);
}

TEST_F(HostQdisc, TheDryRunLineMakesTheSameQdisc) {
  for (uint64_t r : {uint64_t{1250000}, uint64_t{125000}, uint64_t{5000000000}}) {
    SCOPED_TRACE(r);
    const std::string line = tc_command(ns_, "qa0", rate_of(r));
    ASSERT_EQ(std::system((line + " >/dev/null 2>&1").c_str()), 0) << line;
    QdiscInfo q = root("qa0");
    EXPECT_EQ(q.kind, "tbf");
    ASSERT_TRUE(q.impairment);
    EXPECT_EQ(*q.impairment, rate_of(r)) << line;
    nlohmann::json by_tc = tc_json(ns_, "qa0");
    // and labctl's own request gives what tc gave, bucket and queue included
    Status st = set_impairment(*rtnl_, "qa0", rate_of(r));
    ASSERT_TRUE(st) << st.error().str();
    nlohmann::json by_labctl = tc_json(ns_, "qa0");
    ASSERT_TRUE(by_tc.is_array() && by_labctl.is_array());
    by_tc[0].erase("handle");
    by_labctl[0].erase("handle");
    EXPECT_EQ(by_tc, by_labctl);
  }
  const std::string clear = tc_command(ns_, "qa0", Impairment{});
  ASSERT_EQ(std::system((clear + " >/dev/null 2>&1").c_str()), 0) << clear;
  EXPECT_EQ(root("qa0").kind, "noqueue");
}

TEST_F(HostQdisc, NetemWithoutTheKernelsSupportFailsWithTheHint) {
  if (probe_netem()) GTEST_SKIP() << "this kernel has netem: the kernel tier covers it";
  Impairment d;
  d.delay = 20ms;
  Status st = set_impairment(*rtnl_, "qa0", d);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().errnum, ENOENT);
  EXPECT_EQ(st.error().message, "replace netem on qa0 (delay 20ms) in " + ns_);
  EXPECT_NE(st.error().kernel.find("unknown"), std::string::npos) << st.error().str();
  EXPECT_NE(st.error().hint.find("CONFIG_NET_SCH_NETEM"), std::string::npos) << st.error().str();
  EXPECT_NE(st.error().hint.find("up --vm=auto"), std::string::npos) << st.error().str();
  EXPECT_EQ(root("qa0").kind, "noqueue") << "nothing was made";

  Status probe = probe_netem();
  EXPECT_EQ(probe.error().errnum, ENOENT);
  EXPECT_NE(probe.error().hint.find("CONFIG_NET_SCH_NETEM"), std::string::npos)
      << probe.error().str();
}

TEST(HostQdiscProbe, TbfIsThere) {
  LABCTL_REQUIRE_ROOT();
  Status st = probe_tbf();
  EXPECT_TRUE(st) << st.error().str();
}

}  // namespace
}  // namespace labctl
