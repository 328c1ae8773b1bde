// Host tier: the diagnosis's readers and the ARP probe against real namespaces. The demos
// are brought up without their IPVS services (this kernel has no IPVS), then bent with
// ip/sysctl as a user would; the diagnosis must read each change back from the kernel,
// and the arp-owner check must see every node that answers ARP for the VIP.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include <gtest/gtest.h>

#include "labctl/checks/arp_probe.h"
#include "labctl/checks/checks.h"
#include "labctl/checks/diagnose.h"
#include "labctl/kernel/netns.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/model/load.h"
#include "labctl/plan/planner.h"
#include "tests/host/host_test.h"

namespace labctl {
namespace {

using namespace std::chrono_literals;

bool has_cause(const std::vector<Cause>& cs, const std::string& node, const std::string& what,
               const std::string& fix) {
  for (const auto& c : cs)
    if (c.node == node && c.what.find(what) != std::string::npos && c.fix == fix) return true;
  return false;
}

std::string text(const std::vector<Cause>& cs) {
  std::string s;
  for (const auto& c : cs) s += c.node + ": " + c.what + " | " + c.fix + "\n";
  return s;
}

class HostDiagnose : public ::testing::Test {
 protected:
  void SetUp() override { LABCTL_REQUIRE_ROOT(); }
  void TearDown() override {
    if (!full_.name.empty()) {
      EXPECT_TRUE(lab_down(full_.name));
    }
  }
  // Brings up `builtin` under a fresh name, without its IPVS services; full_ keeps them,
  // as the diagnosis and the checks see the lab.
  void up(const char* builtin) {
    auto r = load_topology(builtin);
    ASSERT_TRUE(r.ok());
    Topology t = *r.topology;
    t.name = "dg" + std::to_string(::getpid() % 10000) + "x" + std::to_string(std::rand() % 10000);
    t.exercise.reset();
    Topology bare = t;
    for (auto& n : bare.nodes) n.services.clear();
    bare.checks.clear();
    Status st = lab_up(bare, make_plan(bare), {});
    ASSERT_TRUE(st) << st.error().str();
    full_ = t;
  }
  void sh(const std::string& cmd) { ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd; }
  std::string ns(const std::string& node) { return netns_name(full_.name, node); }
  const Check& check(const std::string& name) {
    for (const auto& c : full_.checks)
      if (c.name == name) return c;
    throw std::runtime_error("no check " + name);
  }
  // The agents listen a moment after up; wait for both (bounded).
  void wait_listening(const Check& c) {
    for (int i = 0; i < 40; ++i) {
      auto f = gather_facts(full_, c);
      if (f.nodes["rs1"].tcp_listen.count(80) && f.nodes["rs2"].tcp_listen.count(80)) return;
      std::this_thread::sleep_for(50ms);
    }
  }
  Topology full_;
};

TEST_F(HostDiagnose, ReadsAddressesSysctlsAndListenersFromEachNamespace) {
  up("dr-demo");
  const Check& c = check("http-through-vip");
  wait_listening(c);
  LabFacts f = gather_facts(full_, c);
  ASSERT_TRUE(f.nodes["rs1"].read);
  EXPECT_EQ(f.nodes["rs1"].sysctls["net.ipv4.conf.all.arp_ignore"], "1");
  EXPECT_EQ(f.nodes["rs1"].sysctls["net.ipv4.conf.eth0.arp_announce"], "2");
  EXPECT_TRUE(f.nodes["rs1"].tcp_listen.count(80));
  EXPECT_TRUE(f.nodes["client"].tcp_listen.empty());
  EXPECT_TRUE(f.nodes["director"].read);
  auto start = std::chrono::steady_clock::now();
  auto none = diagnose(full_, c);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(none.empty()) << text(none);
  EXPECT_LT(ms, 200) << "a diagnosis must take milliseconds";
  std::printf("diagnose of a healthy dr-demo (4 namespaces read): %.1f ms\n", ms);

  // Bend the live lab as a user would; the diagnosis must see each change.
  sh("ip netns exec " + ns("rs1") + " sysctl -qw net.ipv4.conf.all.arp_ignore=0 net.ipv4.conf.eth0.arp_ignore=0");
  sh("ip -n " + ns("rs2") + " addr del 10.10.0.100/32 dev lo");
  sh("ip -n " + ns("director") + " addr del 10.10.0.100/32 dev eth0");
  auto cs = diagnose(full_, c);
  EXPECT_TRUE(has_cause(cs, "rs1", "arp_ignore is 0", "[nodes.rs1.sysctl] net.ipv4.conf.all.arp_ignore = 1")) << text(cs);
  EXPECT_TRUE(has_cause(cs, "rs2", "does not hold the VIP 10.10.0.100", "[nodes.rs2] lo += \"10.10.0.100/32\"")) << text(cs);
  EXPECT_TRUE(has_cause(cs, "director", "does not hold the VIP",
                        "[nodes.director] interfaces.eth0.addresses += \"10.10.0.100/32\"")) << text(cs);

  // A port nothing listens on.
  Topology other = full_;
  for (auto& n : other.nodes)
    for (auto& s : n.services) s.port = 81;
  Check c81 = c;
  c81.port = 81;
  cs = diagnose(other, c81);
  EXPECT_TRUE(has_cause(cs, "rs1", "nothing listens on TCP port 81 on real server rs1",
                        "[nodes.rs1] agents.web = { kind = \"http\", port = 81 }")) << text(cs);
}

TEST_F(HostDiagnose, ReadsRoutesAndForwardingOfANatLab) {
  up("nat-demo");
  const Check& c = check("vip-reachable");
  wait_listening(c);
  auto none = diagnose(full_, c);
  EXPECT_TRUE(none.empty()) << text(none);
  sh("ip -n " + ns("rs1") + " route replace default via 10.20.0.254");
  sh("ip netns exec " + ns("director") + " sysctl -qw net.ipv4.ip_forward=0");
  auto cs = diagnose(full_, c);
  EXPECT_TRUE(has_cause(cs, "rs1", "default route goes via 10.20.0.254",
                        "[nodes.rs1] routes = [{ to = \"default\", via = \"10.20.0.1\" }]")) << text(cs);
  EXPECT_TRUE(has_cause(cs, "director", "ip_forward is 0", "[nodes.director.sysctl] net.ipv4.ip_forward = 1")) << text(cs);
  EXPECT_EQ(cs.size(), 2u) << text(cs);
}

TEST_F(HostDiagnose, ArpProbeHearsEveryNodeThatAnswersForTheVip) {
  up("dr-demo");
  auto client = open_netns(ns("client"));
  ASSERT_TRUE(client);
  auto probe = [&] {
    ArpProbeResult r;
    Status st = run_in_netns(client->get(), [&]() -> Status {
      TRY_ASSIGN(r, arp_probe(*IpAddr::parse("10.10.0.100"), 250ms));
      return {};
    });
    EXPECT_TRUE(st) << st.error().str();
    return r;
  };
  // As built: only the director answers (the real servers' arp_ignore hides their lo VIP).
  auto r = probe();
  EXPECT_EQ(r.dev, "eth0");
  EXPECT_EQ(r.sender.str(), "10.10.0.10");
  ASSERT_EQ(r.answers.size(), 1u);
  // Through the check: passes, then fails naming both real servers, every time (no race).
  auto rep = run_checks(full_, {"director-owns-vip"});
  ASSERT_TRUE(rep) << rep.error().str();
  EXPECT_TRUE(rep->results[0].passed) << rep->results[0].detail;
  for (const char* rs : {"rs1", "rs2"})
    sh("ip netns exec " + ns(rs) + " sysctl -qw net.ipv4.conf.all.arp_ignore=0 net.ipv4.conf.eth0.arp_ignore=0");
  EXPECT_EQ(probe().answers.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    rep = run_checks(full_, {"director-owns-vip"});
    ASSERT_TRUE(rep);
    const auto& res = rep->results[0];
    EXPECT_FALSE(res.passed) << res.detail;
    EXPECT_NE(res.detail.find("rs1's eth0 and rs2's eth0 also answer ARP for 10.10.0.100"), std::string::npos)
        << res.detail;
    EXPECT_TRUE(has_cause(res.causes, "rs1", "arp_ignore", "[nodes.rs1.sysctl] net.ipv4.conf.all.arp_ignore = 1"))
        << text(res.causes);
    EXPECT_LT(res.ms, 1000) << "ARP is asked once, bounded";
  }
}

}  // namespace
}  // namespace labctl
