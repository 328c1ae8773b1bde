// Kernel tier: each built-in exercise comes up, fails exactly the checks it is meant to
// fail, names its cause with the right fix line, and passes once that fix is applied by
// hand in the running lab (sysctl / ip route in the namespace, as a student would).
#include <unistd.h>

#include <cstdlib>
#include <set>

#include <gtest/gtest.h>

#include "labctl/checks/checks.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/model/load.h"
#include "labctl/plan/planner.h"
#include "tests/kernel/kernel_test.h"

namespace labctl {
namespace {

std::string text(const CheckReport& rep) { return render_checks(rep); }

class KernelExercise : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "kernel tier needs root";
    if (Status ipvs = test::ipvs_available(); !ipvs) LABCTL_KERNEL_SKIP() << ipvs.error().str();
  }
  void TearDown() override {
    if (!topo_.name.empty()) {
      EXPECT_TRUE(lab_down(topo_.name));
    }
  }
  void up(const char* name) {
    auto r = load_topology(name);
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(r.topology->exercise);
    Status st = lab_up(*r.topology, make_plan(*r.topology), {});
    ASSERT_TRUE(st) << st.error().str();
    topo_ = *r.topology;
  }
  CheckReport run(const std::vector<std::string>& only = {}) {
    auto rep = run_checks(topo_, only);
    EXPECT_TRUE(rep) << rep.error().str();
    return rep ? *rep : CheckReport{};
  }
  static std::set<std::string> failed(const CheckReport& rep) {
    std::set<std::string> out;
    for (const auto& r : rep.results)
      if (!r.passed) out.insert(r.name);
    return out;
  }
  static const CheckResult& result(const CheckReport& rep, const std::string& name) {
    for (const auto& r : rep.results)
      if (r.name == name) return r;
    throw std::runtime_error("no result " + name);
  }
  // Every failed check names, for each real server, a cause mentioning `what` with `fix`.
  void expect_cause(const CheckReport& rep, const std::string& what, const std::string& fix_fmt) {
    for (const auto& r : rep.results) {
      if (r.passed) continue;
      for (const char* rs : {"rs1", "rs2"}) {
        std::string fix = fix_fmt;
        fix.replace(fix.find("RS"), 2, rs);
        bool found = false;
        for (const auto& c : r.causes)
          found = found || (c.node == rs && c.what.find(what) != std::string::npos && c.fix == fix);
        EXPECT_TRUE(found) << r.name << " names no cause on " << rs << " with '" << what << "' and fix "
                           << fix << "\n" << text(rep);
      }
    }
  }
  void sh(const std::string& cmd) { ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd; }
  std::string ns(const std::string& node) { return netns_name(topo_.name, node); }
  Topology topo_;
};

TEST_F(KernelExercise, DrDemoNoarpFailsArpOwnerNamingArpIgnoreUntilItIsSet) {
  up("dr-demo-noarp");
  // The verdict never depends on which ARP answer wins: the same on every run.
  for (int i = 0; i < 2; ++i) {
    CheckReport rep = run();
    EXPECT_EQ(failed(rep), (std::set<std::string>{"director-owns-vip"})) << text(rep);
    const auto& r = result(rep, "director-owns-vip");
    EXPECT_NE(r.detail.find("rs1's eth0 and rs2's eth0 also answer ARP for 10.10.0.100"), std::string::npos)
        << r.detail;
    expect_cause(rep, "arp_ignore", "[nodes.RS.sysctl] net.ipv4.conf.all.arp_ignore = 1");
    expect_cause(rep, "arp_announce", "[nodes.RS.sysctl] net.ipv4.conf.all.arp_announce = 2");
  }
  for (const char* rs : {"rs1", "rs2"})
    sh("ip netns exec " + ns(rs) + " sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2");
  CheckReport rep = run();
  EXPECT_TRUE(failed(rep).empty()) << text(rep);
  EXPECT_TRUE(result(rep, "director-owns-vip").causes.empty());
}

TEST_F(KernelExercise, NatDemoNogwFailsReachAndHttpNamingTheDefaultRoute) {
  up("nat-demo-nogw");
  CheckReport rep = run();
  EXPECT_EQ(failed(rep), (std::set<std::string>{"vip-reachable", "http-through-vip"})) << text(rep);
  expect_cause(rep, "default route goes via 10.20.0.254, not via director director",
               "[nodes.RS] routes = [{ to = \"default\", via = \"10.20.0.1\" }]");
  for (const char* rs : {"rs1", "rs2"}) sh("ip -n " + ns(rs) + " route replace default via 10.20.0.1");
  rep = run();
  EXPECT_TRUE(failed(rep).empty()) << text(rep);
}

TEST_F(KernelExercise, TunDemoRpfilterFailsReachAndHttpNamingRpFilter) {
  up("tun-demo-rpfilter");
  CheckReport rep = run();
  EXPECT_EQ(failed(rep), (std::set<std::string>{"vip-reachable", "http-through-vip"})) << text(rep);
  expect_cause(rep, "rp_filter is 1 on all", "[nodes.RS.sysctl] net.ipv4.conf.all.rp_filter = 0");
  for (const char* rs : {"rs1", "rs2"})
    sh("ip netns exec " + ns(rs) + " sysctl -qw net.ipv4.conf.all.rp_filter=0");
  rep = run();
  EXPECT_TRUE(failed(rep).empty()) << text(rep);
}

TEST_F(KernelExercise, ThreeTierPortsFailsRushHourNamingThePortRangeUntilItIsWidened) {
  up("three-tier-ports");
  CheckReport rep = run();
  EXPECT_EQ(failed(rep), (std::set<std::string>{"rush-hour"})) << text(rep);
  const auto& r = result(rep, "rush-hour");
  EXPECT_NE(r.detail.find("502"), std::string::npos) << r.detail;
  // Each proxy gets 20 of the 40: its 10 ports to app3 are held in TIME_WAIT.
  for (const char* proxy : {"proxy1", "proxy2"}) {
    bool found = false;
    for (const auto& c : r.causes)
      found = found || (c.node == proxy && c.what.find("connections to 10.31.0.23:8080 in TIME_WAIT") != std::string::npos &&
                        c.what.find("ip_local_port_range 40000-40009 gives it 10 source ports") != std::string::npos &&
                        c.fix.find("net.ipv4.ip_local_port_range = \"32768 60999\"") != std::string::npos);
    EXPECT_TRUE(found) << proxy << " named in no cause\n" << text(rep);
  }
  for (const char* proxy : {"proxy1", "proxy2"})
    sh("ip netns exec " + ns(proxy) + " sysctl -qw net.ipv4.ip_local_port_range='32768 60999'");
  rep = run();
  EXPECT_TRUE(failed(rep).empty()) << text(rep);
}

}  // namespace
}  // namespace labctl
