// Host tier: a node's nat rules (issue 14) applied with libnftables in real namespaces on
// this kernel (nf_tables, no IPVS), read back with the real `nft list table` inside each
// namespace, and proved with curl between the lab's nodes: a router that masquerades its
// inside network for a server without a route back, a port it forwards inward by dnat, and
// a server that takes an address it does not hold by redirect (tests/data/host/nat.toml).
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "labctl/checks/checks.h"
#include "labctl/kernel/netns.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/model/load.h"
#include "labctl/plan/nft.h"
#include "labctl/plan/planner.h"
#include "tests/host/host_test.h"
#include "tests/host/script_lab.h"
#include "tests/support/kill_sweep.h"

namespace labctl {
namespace {

class HostNat : public ::testing::Test {
 protected:
  void SetUp() override {
    LABCTL_REQUIRE_ROOT();
    std::ifstream in(LABCTL_TEST_DATA "/host/nat.toml");
    std::stringstream text;
    text << in.rdbuf();
    std::string s = text.str();
    name_ = "nathost" + std::to_string(std::random_device{}() % 100000);
    s.replace(s.find("name = \"nat\""), 12, "name = \"" + name_ + "\"");
    auto r = parse_topology(s, "nat.toml");
    std::string diags;
    for (const auto& d : r.diagnostics) diags += format_diagnostic(d) + "\n";
    ASSERT_TRUE(r.ok()) << diags;
    EXPECT_TRUE(r.diagnostics.empty()) << diags;
    topo_ = *r.topology;
    Status st = lab_up(topo_, make_plan(topo_), {});
    ASSERT_TRUE(st) << st.error().str();
    up_ = true;
  }
  void TearDown() override {
    if (!up_) return;
    EXPECT_TRUE(lab_down(name_));
    for (const auto& ns : list_netns())
      EXPECT_NE(ns.rfind(name_ + "-", 0), 0u) << ns << " left behind";
  }
  std::string in(const std::string& node, const std::string& cmd) {
    return test::run_capture("ip netns exec " + netns_name(name_, node) + " " + cmd + " 2>&1");
  }
  /// curl's body, or its error, from `node`.
  std::string curl(const std::string& node, const std::string& url) {
    std::string body = in(node, "curl -sS -m 3 " + url);
    while (!body.empty() && body.back() == '\n') body.pop_back();
    return body;
  }
  std::string name_;
  Topology topo_;
  bool up_ = false;
};

TEST_F(HostNat, NftListsBackEveryRuleAsRendered) {
  for (const char* node : {"router", "server"}) {
    SCOPED_TRACE(node);
    const std::string listed = in(node, "nft list table inet labctl");
    for (const auto& r : topo_.node(node)->nat)
      EXPECT_NE(listed.find(nft_nat_rule(r) + "\n"), std::string::npos)
          << "want: " << nft_nat_rule(r) << "\n"
          << listed;
  }
  const std::string router = in("router", "nft list table inet labctl");
  EXPECT_NE(router.find("type nat hook prerouting priority dstnat; policy accept;"),
            std::string::npos)
      << router;
  EXPECT_NE(router.find("type nat hook postrouting priority srcnat; policy accept;"),
            std::string::npos)
      << router;
  const std::string server = in("server", "nft list table inet labctl");
  EXPECT_EQ(server.find("nat_postrouting"), std::string::npos) << "no chain without rules:\n"
                                                               << server;
  EXPECT_EQ(in("client", "nft list tables"), "") << "a node without rules gets no table";
}

TEST_F(HostNat, MasqueradeDnatAndRedirectCarryCurl) {
  // The server has no route to 10.81.0.0/24: only the router's masquerade brings the answer back.
  EXPECT_EQ(in("server", "ip route get 10.81.0.10"), "RTNETLINK answers: Network is unreachable\n");
  EXPECT_EQ(curl("client", "http://10.82.0.20/"), "server");
  // The server saw the router's address, not the client's.
  // (the agent listens on a dual-stack socket: ss writes the peer as [::ffff:10.82.0.1]:PORT).
  // The agent closes first, but curl may be gone before the close is done: the socket is in
  // FIN_WAIT1, FIN_WAIT2 or TIME_WAIT then, so every state but listening is read.
  const std::string seen = in("server", "ss -Htn state all exclude listening");
  EXPECT_NE(seen.find("10.82.0.1]:"), std::string::npos) << seen;
  EXPECT_EQ(seen.find("10.81.0.10"), std::string::npos) << seen;
  // Nobody holds 10.82.0.100: the server takes it by redirect, port 80 to its agent on 8081.
  EXPECT_EQ(curl("client", "http://10.82.0.100/"), "server");
  EXPECT_NE(in("server", "ss -Htln sport = :8081"), "");
  // The router forwards its own port 8080 to the client's web server.
  EXPECT_EQ(curl("server", "http://10.82.0.1:8080/"), "client");
  // And the lab's own checks say the same.
  auto rep = run_checks(topo_);
  ASSERT_TRUE(rep) << rep.error().str();
  EXPECT_EQ(rep->results.size(), 3u);
  for (const auto& r : rep->results) EXPECT_TRUE(r.passed) << r.name << ": " << r.detail;
}

// The test can fail: without the router's masquerade the server's answer has nowhere to go.
TEST_F(HostNat, WithoutTheMasqueradeTheServerCannotAnswer) {
  EXPECT_EQ(curl("client", "http://10.82.0.20/"), "server");
  EXPECT_EQ(in("router", "nft flush chain inet labctl nat_postrouting"), "");
  const std::string after = curl("client", "http://10.82.0.20/");
  EXPECT_NE(after, "server");
  EXPECT_NE(after.find("curl: (28)"), std::string::npos) << after;
}

// `up --dry-run` shows the table as nft reads it: the script, run as it is, builds the same
// lab, and the masquerade, dnat and redirect work there too.
TEST(HostNatScript, DryRunScriptAppliesTheSameRules) {
  LABCTL_REQUIRE_ROOT();
  std::ifstream file(LABCTL_TEST_DATA "/host/nat.toml");
  std::stringstream text;
  text << file.rdbuf();
  std::string s = text.str();
  const std::string name = test::unique_name("natdry");
  s.replace(s.find("name = \"nat\""), 12, "name = \"" + name + "\"");
  auto r = parse_topology(s, "nat.toml");
  ASSERT_TRUE(r.ok());
  Plan plan = make_plan(*r.topology);
  {
    test::ScriptLab lab(plan);
    auto up = lab.up();
    ASSERT_EQ(up.status, 0) << up.output;
    auto listed = test::run_shell("ip netns exec " + name + "-router nft list table inet labctl");
    for (const auto& rule : r.topology->node("router")->nat)
      EXPECT_NE(listed.output.find(nft_nat_rule(rule) + "\n"), std::string::npos) << listed.output;
    auto masq = lab.exec_until_ok("client", "curl -s --max-time 2 http://10.82.0.20/");
    EXPECT_EQ(masq.output, "server\n");
    auto redir = lab.exec_until_ok("client", "curl -s --max-time 2 http://10.82.0.100/");
    EXPECT_EQ(redir.output, "server\n");
    auto dnat = lab.exec_until_ok("server", "curl -s --max-time 2 http://10.82.0.1:8080/");
    EXPECT_EQ(dnat.output, "client\n");
  }
  EXPECT_FALSE(test::any_netns_left(plan));
}

}  // namespace
}  // namespace labctl
