// Kernel tier: LVS-DR across hosts (docs/multihost.md). The director and the client on one
// simulated host, both real servers on another, the switch between them stretched over
// VXLAN: the director's MAC rewrite sends each request across the VXLAN to a real server,
// which answers the client straight back across it, never through the director. The
// simulated hosts (tests/support/simhosts.h) run inside the micro-VM, whose kernel has IPVS:
// one guest, one kernel, as the host tier has; the hosts differ in everything labctl sees
// (their namespaces, /run, processes), which is what a second guest would add beyond a
// slower boot.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <set>
#include <nlohmann/json.hpp>

#include "labctl/kernel/process.h"
#include "labctl/lab/multihost.h"
#include "labctl/model/builtins.h"
#include "tests/kernel/kernel_test.h"
#include "tests/support/simhosts.h"

namespace labctl {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using Clock = std::chrono::steady_clock;

const std::string kLabctl = LABCTL_BINARY_DIR "/labctl/labctl";

// A lab's text with its switch's MTU fitting VXLAN, `host = ` on the nodes named, and [hosts].
std::string placed(const test::SimHosts& sim, std::string t, const std::string& lab,
                   const std::vector<std::pair<std::string, int>>& where) {
  auto replace = [&](const std::string& from, const std::string& to) {
    auto at = t.find(from);
    if (at != std::string::npos) t.replace(at, from.size(), to);
    EXPECT_NE(at, std::string::npos) << from;
  };
  replace(t.substr(t.find("name = \""), t.find('\n', t.find("name = \"")) - t.find("name = \"")),
          "name = \"" + lab + "\"");
  replace("[switches.lan]\n", "[switches.lan]\nmtu = 1450\n");
  for (const auto& [node, h] : where)
    replace("[nodes." + node + "]\n", "[nodes." + node + "]\nhost = \"h" + std::to_string(h) + "\"\n");
  for (int h = 1; h <= sim.size(); ++h)
    t += "\n[hosts.h" + std::to_string(h) + "]\nssh = \"h" + std::to_string(h) + "\"\nunderlay = \"" + sim.underlay(h) +
         "\"\nlabctl = \"" + kLabctl + "\"\n";
  return t;
}

// Polls `probe` (every 200 ms) until it is true or `limit` has passed.
bool within(std::chrono::seconds limit, const std::function<bool()>& probe) {
  for (auto until = Clock::now() + limit; Clock::now() < until; std::this_thread::sleep_for(std::chrono::milliseconds(200)))
    if (probe()) return true;
  return probe();
}

// Two simulated hosts in the guest, labctl reaching them with their ssh config; TearDown
// takes the lab down from the controller and asserts nothing is left on either host.
class KernelMultiHost : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "kernel tier needs root";
    if (Status ipvs = test::ipvs_available(); !ipvs) LABCTL_KERNEL_SKIP() << ipvs.error().str();
    if (!std::filesystem::exists("/usr/sbin/sshd")) GTEST_SKIP() << "needs Debian's openssh-server";
    auto sim = test::SimHosts::start(2, test::SimHosts::default_program());
    ASSERT_TRUE(sim) << sim.error().str();
    sim_ = std::make_unique<test::SimHosts>(std::move(*sim));
    ::setenv("LABCTL_SSH_CONFIG", sim_->ssh_config().c_str(), 1);
  }
  void TearDown() override {
    if (!sim_) return;
    if (!lab_.empty()) {
      auto down = run_captured({kLabctl, "down", lab_}, Clock::now() + std::chrono::minutes(2));
      ASSERT_TRUE(down) << down.error().str();
      EXPECT_EQ(down->exit_code, 0) << down->out << down->err;
    }
    for (int i = 1; i <= 2; ++i) EXPECT_THAT(sim_->leftovers(i), IsEmpty()) << "host h" << i;
    ::unsetenv("LABCTL_SSH_CONFIG");
    EXPECT_TRUE(sim_->stop());
  }
  // Writes the built-in `builtin` as lab `lab`, its nodes placed as `where` says; its path.
  std::string write_lab(const std::string& builtin, const std::string& lab,
                        const std::vector<std::pair<std::string, int>>& where) {
    lab_ = lab;
    const std::string file = sim_->dir() + "/" + lab + ".toml";
    std::ofstream(file) << placed(*sim_, std::string(find_builtin(builtin)->text), lab, where);
    return file;
  }
  // dr-demo placed as `where`, brought up with --check: every one of its checks passes.
  // What up printed.
  std::string dr_demo_up_passing(const std::string& lab, const std::vector<std::pair<std::string, int>>& where) {
    const std::string file = write_lab("dr-demo", lab, where);
    auto up = run_captured({kLabctl, "up", "--check", file}, Clock::now() + std::chrono::minutes(3));
    if (!up) {
      ADD_FAILURE() << up.error().str();
      return "";
    }
    EXPECT_EQ(up->exit_code, 0) << up->out << up->err;
    for (const char* check : {"vip-reachable", "http-through-vip", "balanced", "replies-bypass-director",
                              "director-owns-vip"})
      EXPECT_THAT(up->out, HasSubstr(std::string("PASS  ") + check)) << up->out;
    return up->out;
  }
  std::unique_ptr<test::SimHosts> sim_;
  std::string lab_;
};

// dr-demo with client and director on h1, rs1 and rs2 on h2.
TEST_F(KernelMultiHost, DrAcrossTwoHostsRepliesBypassTheDirectorOverVxlan) {
  const std::string lab = "drx" + std::to_string(::getpid());
  dr_demo_up_passing(lab, {{"client", 1}, {"director", 1}, {"rs1", 2}, {"rs2", 2}});
  if (HasFatalFailure()) return;
  // The real servers' replies crossed the VXLAN from h2: its device sent packets.
  auto tx = sim_->run(2, {"ip", "netns", "exec", lab + "-lan", "cat", "/sys/class/net/vxlan0/statistics/tx_packets"});
  ASSERT_TRUE(tx) << tx.error().str();
  EXPECT_GT(std::stoll(*tx), 40) << "h2's vxlan0 sent " << *tx;

  // `labctl ipvs LAB` is answered by the director's host, h1.
  auto ipvs = run_captured({kLabctl, "ipvs", lab}, Clock::now() + std::chrono::minutes(1));
  ASSERT_TRUE(ipvs) << ipvs.error().str();
  EXPECT_EQ(ipvs->exit_code, 0) << ipvs->out << ipvs->err;
  EXPECT_THAT(ipvs->out, HasSubstr("10.10.0.100:80"));
  EXPECT_THAT(ipvs->out, HasSubstr("rs2"));

  // trace captures on both hosts at once: the SYN goes client -> director (h1) -> a real
  // server (h2) with only the destination MAC rewritten, and the SYN-ACK from h2 straight
  // to the client, never through the director: DR's walk, its hops from two hosts.
  auto tr = run_captured({kLabctl, "trace", lab, "--json"}, Clock::now() + std::chrono::minutes(1));
  ASSERT_TRUE(tr) << tr.error().str();
  EXPECT_EQ(tr->exit_code, 0) << tr->out << tr->err;
  auto w = nlohmann::json::parse(tr->out, nullptr, false);
  ASSERT_FALSE(w.is_discarded()) << tr->out << tr->err;
  std::set<std::string> request_nodes, reply_nodes;
  for (const auto& h : w["request"]) request_nodes.insert(h["node"].get<std::string>());
  for (const auto& h : w["reply"]) reply_nodes.insert(h["node"].get<std::string>());
  EXPECT_TRUE(request_nodes.contains("director")) << tr->out;
  EXPECT_TRUE(request_nodes.contains(w["real_server"].get<std::string>())) << tr->out;
  EXPECT_FALSE(reply_nodes.contains("director")) << tr->out;
  EXPECT_FALSE(w["reply_via_director"].get<bool>()) << tr->out;
  EXPECT_THAT(w["findings"].dump(), HasSubstr("captured on hosts h1, h2 over ssh"));
}

// dr-demo with the client alone on h1, the director and rs1 on h2, rs2 back on h1: every
// check runs on the client's host and reads the director on another (its IPVS table through
// `labctl ipvs --json`, its exact counters through /proc/net there), and passes.
TEST_F(KernelMultiHost, ChecksReadTheDirectorOnAnotherHost) {
  const std::string out =
      dr_demo_up_passing("drr" + std::to_string(::getpid()), {{"client", 1}, {"director", 2}, {"rs1", 2}, {"rs2", 1}});
  EXPECT_THAT(out, HasSubstr("weights from the director's IPVS table (rr): rs1 1, rs2 1")) << out;
}

// ha-demo with dir1 (VRRP master, IPVS sync master) on h1 beside the client, dir2 (backup)
// and both real servers on h2: VRRP adverts and the IPVS sync daemon's multicast must cross
// the VXLAN, else dir2 would take the VIP too (split brain) and never learn a connection.
TEST_F(KernelMultiHost, VrrpAndIpvsSyncCrossHostsAndDir2TakesOverWhenDir1Crashes) {
  const std::string lab = "hax" + std::to_string(::getpid());
  const std::string file =
      write_lab("ha-demo", lab, {{"client", 1}, {"dir1", 1}, {"dir2", 2}, {"rs1", 2}, {"rs2", 2}});
  auto up = run_captured({kLabctl, "up", file}, Clock::now() + std::chrono::minutes(3));
  ASSERT_TRUE(up) << up.error().str();
  ASSERT_EQ(up->exit_code, 0) << up->out << up->err;

  auto holds_vip = [&](int host, const std::string& node) {
    auto a = sim_->run(host, {"ip", "-n", lab + "-" + node, "-o", "addr", "show", "dev", "eth0"});
    return a && a->find("10.10.0.100/32") != std::string::npos;
  };
  // dir1 takes the VIP; dir2 hears its adverts across the VXLAN and stays backup. Without
  // them dir2 would be master after 3 adverts missed (~3.6 s): it is watched for 6 s.
  EXPECT_TRUE(within(std::chrono::seconds(10), [&] { return holds_vip(1, "dir1"); }));
  EXPECT_FALSE(within(std::chrono::seconds(6), [&] { return holds_vip(2, "dir2"); })) << "split brain: adverts did not cross";

  auto checks = run_captured({kLabctl, "check", lab, "vip-reachable", "http-through-vip"}, Clock::now() + std::chrono::minutes(1));
  ASSERT_TRUE(checks) << checks.error().str();
  EXPECT_EQ(checks->exit_code, 0) << checks->out << checks->err;
  // The sync daemon's multicast crossed too: dir2's table on h2 holds dir1's connections.
  EXPECT_TRUE(within(std::chrono::seconds(10), [&] {
    auto c = sim_->run(2, {"ip", "netns", "exec", lab + "-dir2", "ipvsadm", "-Lnc"});
    return c && c->find("10.10.0.100:80") != std::string::npos;
  })) << "dir2 never learned a connection from dir1's sync daemon";

  // dir1 crashes (labctl node, answered by h1): dir2 takes the VIP over across the VXLAN.
  auto crash = run_captured({kLabctl, "node", lab, "dir1", "crash"}, Clock::now() + std::chrono::minutes(1));
  ASSERT_TRUE(crash) << crash.error().str();
  EXPECT_EQ(crash->exit_code, 0) << crash->out << crash->err;
  EXPECT_TRUE(within(std::chrono::seconds(15), [&] { return holds_vip(2, "dir2"); }));
  auto after = run_captured({kLabctl, "check", lab, "vip-reachable"}, Clock::now() + std::chrono::minutes(1));
  ASSERT_TRUE(after) << after.error().str();
  EXPECT_EQ(after->exit_code, 0) << after->out << after->err;
}

// ha-demo's own checks with the VRRP master elsewhere: the client on h1, dir1 (master) on
// h2, dir2 on h1. failover runs on the client's host, reads who holds the VIP on both
// hosts, stops dir1's keepalived on h2 (`labctl node ... stop-agent` there), and its 8 held
// connections survive on dir2 by the sync daemon across the VXLAN; health reads the
// director's table on h2.
TEST_F(KernelMultiHost, FailoverAndHealthWithTheMasterOnAnotherHost) {
  const std::string lab = "hay" + std::to_string(::getpid());
  const std::string file =
      write_lab("ha-demo", lab, {{"client", 1}, {"dir1", 2}, {"dir2", 1}, {"rs1", 2}, {"rs2", 1}});
  auto up = run_captured({kLabctl, "up", "--check", file}, Clock::now() + std::chrono::minutes(4));
  ASSERT_TRUE(up) << up.error().str();
  EXPECT_EQ(up->exit_code, 0) << up->out << up->err;
  EXPECT_THAT(up->out, HasSubstr("PASS  failover (failover)")) << up->out;
  EXPECT_THAT(up->out, HasSubstr("8 of 8")) << up->out;
  EXPECT_THAT(up->out, HasSubstr("PASS  rs1-health (health)")) << up->out;
}

}  // namespace
}  // namespace labctl
