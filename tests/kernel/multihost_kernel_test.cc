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

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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

// dr-demo with client and director on h1, rs1 and rs2 on h2.
std::string dr_across_hosts(const test::SimHosts& sim, const std::string& lab) {
  std::string t(find_builtin("dr-demo")->text);
  auto replace = [&](const std::string& from, const std::string& to) {
    auto at = t.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    t.replace(at, from.size(), to);
  };
  replace("name = \"dr-demo\"", "name = \"" + lab + "\"");
  replace("[switches.lan]\n", "[switches.lan]\nmtu = 1450\n");
  for (const char* n : {"client", "director"}) replace(std::string("[nodes.") + n + "]\n", std::string("[nodes.") + n + "]\nhost = \"h1\"\n");
  for (const char* n : {"rs1", "rs2"}) replace(std::string("[nodes.") + n + "]\n", std::string("[nodes.") + n + "]\nhost = \"h2\"\n");
  for (int h = 1; h <= 2; ++h)
    t += "\n[hosts.h" + std::to_string(h) + "]\nssh = \"h" + std::to_string(h) + "\"\nunderlay = \"" + sim.underlay(h) +
         "\"\nlabctl = \"" + kLabctl + "\"\n";
  return t;
}

TEST(KernelMultiHost, DrAcrossTwoHostsRepliesBypassTheDirectorOverVxlan) {
  if (::geteuid() != 0) GTEST_SKIP() << "kernel tier needs root";
  if (Status ipvs = test::ipvs_available(); !ipvs) LABCTL_KERNEL_SKIP() << ipvs.error().str();
  if (!std::filesystem::exists("/usr/sbin/sshd")) GTEST_SKIP() << "needs Debian's openssh-server";
  auto sim = test::SimHosts::start(2, test::SimHosts::default_program());
  ASSERT_TRUE(sim) << sim.error().str();
  ::setenv("LABCTL_SSH_CONFIG", sim->ssh_config().c_str(), 1);
  const std::string lab = "drx" + std::to_string(::getpid());
  const std::string file = sim->dir() + "/drx.toml";
  std::ofstream(file) << dr_across_hosts(*sim, lab);

  auto up = run_captured({kLabctl, "up", "--check", file}, Clock::now() + std::chrono::minutes(3));
  ASSERT_TRUE(up) << up.error().str();
  EXPECT_EQ(up->exit_code, 0) << up->out << up->err;
  for (const char* check : {"vip-reachable", "http-through-vip", "balanced", "replies-bypass-director",
                            "director-owns-vip"})
    EXPECT_THAT(up->out, HasSubstr(std::string("PASS  ") + check)) << up->out;
  // The real servers' replies crossed the VXLAN from h2: its device sent packets.
  auto tx = sim->run(2, {"ip", "netns", "exec", lab + "-lan", "cat", "/sys/class/net/vxlan0/statistics/tx_packets"});
  ASSERT_TRUE(tx) << tx.error().str();
  EXPECT_GT(std::stoll(*tx), 40) << "h2's vxlan0 sent " << *tx;

  auto down = run_captured({kLabctl, "down", lab}, Clock::now() + std::chrono::minutes(2));
  ASSERT_TRUE(down) << down.error().str();
  EXPECT_EQ(down->exit_code, 0) << down->out << down->err;
  for (int i = 1; i <= 2; ++i) EXPECT_THAT(sim->leftovers(i), IsEmpty()) << "host h" << i;
  ::unsetenv("LABCTL_SSH_CONFIG");
  EXPECT_TRUE(sim->stop());
}

}  // namespace
}  // namespace labctl
