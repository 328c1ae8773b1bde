// Kernel tier: the whole diagnosis on a live dr-demo with IPVS. The real servers judged are
// those of the director's IPVS table as it is now, and a VIP taken away (from a real
// server's lo, from the director) is named with its fix, then the fix makes the check pass.
#include <unistd.h>

#include <chrono>
#include <cstdlib>

#include <gtest/gtest.h>

#include "labctl/checks/checks.h"
#include "labctl/checks/diagnose.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/model/load.h"
#include "labctl/plan/planner.h"
#include "tests/kernel/kernel_test.h"

namespace labctl {
namespace {

class KernelDiagnose : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "kernel tier needs root";
    if (Status ipvs = test::ipvs_available(); !ipvs) LABCTL_KERNEL_SKIP() << ipvs.error().str();
    auto r = load_topology("dr-demo");
    ASSERT_TRUE(r.ok());
    Status st = lab_up(*r.topology, make_plan(*r.topology), {});
    ASSERT_TRUE(st) << st.error().str();
    topo_ = *r.topology;
  }
  void TearDown() override {
    if (!topo_.name.empty()) {
      EXPECT_TRUE(lab_down(topo_.name));
    }
  }
  CheckResult run(const std::string& check) {
    auto rep = run_checks(topo_, {check});
    EXPECT_TRUE(rep) << rep.error().str();
    return rep && !rep->results.empty() ? rep->results[0] : CheckResult{};
  }
  const Check& check(const std::string& name) {
    for (const auto& c : topo_.checks)
      if (c.name == name) return c;
    throw std::runtime_error("no check " + name);
  }
  void sh(const std::string& cmd) { ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd; }
  std::string ns(const std::string& node) { return netns_name(topo_.name, node); }
  static std::string text(const CheckResult& r) {
    std::string s = r.detail + "\n";
    for (const auto& c : r.causes) s += "  " + c.node + ": " + c.what + " | " + c.fix + "\n";
    return s;
  }
  Topology topo_;
};

TEST_F(KernelDiagnose, RealServersComeFromTheLiveIpvsTable) {
  const Check& c = check("http-through-vip");
  sh("ip netns exec " + ns("director") + " ipvsadm -e -t 10.10.0.100:80 -r 10.10.0.11 -g -w 0");
  auto start = std::chrono::steady_clock::now();
  LabFacts f = gather_facts(topo_, c);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::printf("gather_facts on dr-demo with IPVS (4 namespaces): %.1f ms\n", ms);
  ASSERT_TRUE(f.services["web"].read);
  ASSERT_TRUE(f.services["web"].present);
  ASSERT_EQ(f.services["web"].dests.size(), 2u);
  // rs1 is out of the table's rotation (weight 0): its missing VIP explains nothing.
  sh("ip -n " + ns("rs1") + " addr del 10.10.0.100/32 dev lo");
  EXPECT_TRUE(decide_causes(topo_, c, gather_facts(topo_, c)).empty());
  sh("ip netns exec " + ns("director") + " ipvsadm -e -t 10.10.0.100:80 -r 10.10.0.11 -g -w 1");
  // Back in rotation, rs1 drops what it is sent: the check fails and names why.
  CheckResult r = run("http-through-vip");
  EXPECT_FALSE(r.passed) << text(r);
  ASSERT_EQ(r.causes.size(), 1u) << text(r);
  EXPECT_EQ(r.causes[0].node, "rs1");
  EXPECT_NE(r.causes[0].what.find("does not hold the VIP 10.10.0.100"), std::string::npos) << text(r);
  EXPECT_EQ(r.causes[0].fix, "[nodes.rs1] lo += \"10.10.0.100/32\"");
  sh("ip -n " + ns("rs1") + " addr add 10.10.0.100/32 dev lo");
  r = run("http-through-vip");
  EXPECT_TRUE(r.passed) << text(r);
}

TEST_F(KernelDiagnose, VipMissingOnTheDirectorIsNamedAndItsFixWorks) {
  sh("ip -n " + ns("director") + " addr del 10.10.0.100/32 dev eth0");
  CheckResult r = run("vip-reachable");
  EXPECT_FALSE(r.passed) << text(r);
  ASSERT_EQ(r.causes.size(), 1u) << text(r);
  EXPECT_EQ(r.causes[0].node, "director");
  EXPECT_EQ(r.causes[0].fix, "[nodes.director] interfaces.eth0.addresses += \"10.10.0.100/32\"");
  // And arp-owner: nobody answers ARP for the VIP now.
  r = run("director-owns-vip");
  EXPECT_FALSE(r.passed) << text(r);
  EXPECT_NE(r.detail.find("nobody answered"), std::string::npos) << text(r);
  ASSERT_EQ(r.causes.size(), 1u) << text(r);
  EXPECT_EQ(r.causes[0].node, "director");
  sh("ip -n " + ns("director") + " addr add 10.10.0.100/32 dev eth0");
  // The client remembers that nobody answered (a FAILED neighbour entry, EHOSTUNREACH for a
  // while); a student would wait or flush it, as here.
  sh("ip -n " + ns("client") + " neigh flush to 10.10.0.100");
  r = run("vip-reachable");
  EXPECT_TRUE(r.passed) << text(r);
  r = run("director-owns-vip");
  EXPECT_TRUE(r.passed) << text(r);
}

}  // namespace
}  // namespace labctl
