// Kernel tier: checks that speak UDP and server-speaks-first TCP, through an LVS-DR VIP.
// The lab is written here, not built in: a UDP echo service and a banner service behind
// one VIP, both balanced over two real servers.
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>

#include "labctl/checks/checks.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/model/load.h"
#include "labctl/plan/planner.h"
#include "tests/kernel/kernel_test.h"
#include "tests/support/kill_sweep.h"

namespace labctl {
namespace {

// Two real servers, each with a UDP echo agent on 7 and a banner (what an SSH server says
// first) on 2222 from a small python3 server (ready_timeout 60: python3 takes seconds to
// start under the guest's emulation, more on a busy machine).
std::string rs(const std::string& name, const std::string& addr) {
  return "[nodes." + name + "]\n"
         "interfaces.eth0 = { switch = \"lan\", addresses = [\"" + addr + "/24\"] }\n"
         "lo = [\"10.40.0.100/32\"]\n"
         "agents.echo = { kind = \"echo\", port = 7, proto = \"udp\" }\n"
         "agents.ssh = { kind = \"command\", port = 2222, ready_timeout = 60, argv = [\"/usr/bin/python3\", \"-c\", "
         "\"import socket; s = socket.create_server(('', 2222)); "
         "[c.sendall(b'SSH-2.0-labctl-" + name + "\\\\r\\\\n') or c.close() for c, _ in iter(s.accept, None)]\"] }\n"
         "[nodes." + name + ".sysctl]\n"
         "net.ipv4.conf.all.arp_ignore = 1\n"
         "net.ipv4.conf.all.arp_announce = 2\n";
}

const std::string kLab = std::string(R"(version = 1
name = "chk-proto"
[switches.lan]
[nodes.client]
interfaces.eth0 = { switch = "lan", addresses = ["10.40.0.10/24"] }
[nodes.director]
interfaces.eth0 = { switch = "lan", addresses = ["10.40.0.2/24", "10.40.0.100/32"] }
[nodes.director.services.echo]
proto = "udp"
vip = "10.40.0.100"
port = 7
method = "dr"
real_servers = [{ node = "rs1" }, { node = "rs2" }]
[nodes.director.services.ssh]
vip = "10.40.0.100"
port = 2222
method = "dr"
real_servers = [{ node = "rs1" }, { node = "rs2" }]
[checks.udp-echo]
kind = "reach"
from = "client"
service = "echo"
[checks.udp-bypass]
kind = "bypass"
from = "client"
service = "echo"
[checks.ssh-banner]
kind = "reach"
from = "client"
service = "ssh"
banner = "SSH-2.0-labctl-rs"
[checks.udp-direct]
kind = "reach"
from = "client"
to = "10.40.0.11"
port = 7
proto = "udp"
send = "hello rs1"
[checks.udp-nobody]
kind = "no-reach"
from = "client"
to = "10.40.0.11"
port = 9
proto = "udp"
)") + rs("rs1", "10.40.0.11") + rs("rs2", "10.40.0.12");

class KernelProtocols : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "kernel tier needs root";
    if (Status ipvs = test::ipvs_available(); !ipvs) LABCTL_KERNEL_SKIP() << ipvs.error().str();
    std::ofstream(file_) << kLab;
    auto loaded = load_topology(file_);
    std::string diags;
    for (const auto& d : loaded.diagnostics) diags += format_diagnostic(d) + "\n";
    ASSERT_TRUE(loaded.ok()) << diags;
    topo_ = *loaded.topology;
    Status st = lab_up(topo_, make_plan(topo_), {});
    ASSERT_TRUE(st) << st.error().str();
    // python3 starts slowly under emulation: wait until both banner servers listen.
    for (const char* node : {"rs1", "rs2"}) {
      bool listening = false;
      for (int i = 0; i < 200 && !listening; ++i) {
        listening = test::run_capture(std::string("ip netns exec chk-proto-") + node +
                                      " ss -Hltn 'sport = :2222'")
                        .find("LISTEN") != std::string::npos;
        if (!listening) ::usleep(100 * 1000);
      }
      ASSERT_TRUE(listening) << node << "'s banner server never listened";
    }
  }
  void TearDown() override {
    if (!topo_.name.empty()) {
      EXPECT_TRUE(lab_down(topo_.name));
    }
    std::remove(file_.c_str());
  }
  CheckResult result(const std::string& name) {
    auto rep = run_checks(topo_, {name});
    EXPECT_TRUE(rep) << rep.error().str();
    return rep && rep->results.size() == 1 ? rep->results[0] : CheckResult{};
  }
  std::string file_ = "/tmp/labctl-chk-proto.toml";
  Topology topo_;
};

TEST_F(KernelProtocols, UdpReachEchoesFromARealServersOwnAddress) {
  auto r = result("udp-direct");
  EXPECT_TRUE(r.passed) << r.detail;
  EXPECT_NE(r.detail.find("UDP to 10.40.0.11:7 from client succeeded ('hello rs1')"), std::string::npos) << r.detail;
}

TEST_F(KernelProtocols, UdpReachAndBypassThroughADrVip) {
  // Needs the echo agent to answer from the VIP it was asked on (IP_PKTINFO): a reply from
  // the real server's own address never reaches the connected socket.
  auto r = result("udp-echo");
  EXPECT_TRUE(r.passed) << r.detail;
  EXPECT_NE(r.detail.find("UDP to 10.40.0.100:7"), std::string::npos) << r.detail;
  r = result("udp-bypass");
  EXPECT_TRUE(r.passed) << r.detail;
  EXPECT_NE(r.detail.find("0 out"), std::string::npos) << r.detail;
}

TEST_F(KernelProtocols, UdpToAPortNobodyListensOnIsNoReach) {
  auto r = result("udp-nobody");
  EXPECT_TRUE(r.passed) << r.detail;
  EXPECT_LT(r.ms, 1500) << "an ICMP port unreachable answers at once: " << r.detail;
  Check reach = topo_.checks.back();
  reach.kind = "reach";
  Topology t = topo_;
  t.checks = {reach};
  auto rep = run_checks(t);
  ASSERT_TRUE(rep);
  EXPECT_FALSE(rep->results[0].passed);
  EXPECT_NE(rep->results[0].detail.find("refused"), std::string::npos) << rep->results[0].detail;
}

TEST_F(KernelProtocols, BannerIsReadAndMatched) {
  auto r = result("ssh-banner");
  EXPECT_TRUE(r.passed) << r.detail;
  EXPECT_NE(r.detail.find("SSH-2.0-labctl-rs"), std::string::npos) << r.detail;
  Topology t = topo_;
  for (auto& c : t.checks)
    if (c.name == "ssh-banner") c.params.set("banner", "220 ");
  auto rep = run_checks(t, {"ssh-banner"});
  ASSERT_TRUE(rep);
  EXPECT_FALSE(rep->results[0].passed);
  EXPECT_NE(rep->results[0].detail.find("not '220 '"), std::string::npos) << rep->results[0].detail;
}

// A fwmark service has no VIP: its checks send where they are told (to, port), and the
// kernel's table is found by mark. The lab's mark rule (nftables on the director) marks
// VIP:80 with 7.
TEST(KernelFwmark, BalanceBypassAndArpOwnerOfAFwmarkService) {
  if (::geteuid() != 0) GTEST_SKIP() << "kernel tier needs root";
  if (Status ipvs = test::ipvs_available(); !ipvs) LABCTL_KERNEL_SKIP() << ipvs.error().str();
  auto loaded = load_topology(LABCTL_TEST_DATA "/fwmark-dr.toml");
  ASSERT_TRUE(loaded.ok());
  Topology t = *loaded.topology;
  Status up = lab_up(t, make_plan(t), {});
  ASSERT_TRUE(up) << up.error().str();
  const std::string d = "ip netns exec chk-fwmark-director ";
  auto rep = run_checks(t);
  ASSERT_TRUE(rep) << rep.error().str();
  ASSERT_EQ(rep->results.size(), 3u);
  for (const auto& r : rep->results) EXPECT_TRUE(r.passed) << r.name << ": " << r.detail;
  EXPECT_NE(rep->results[0].detail.find("rs1 30, rs2 30 of 60"), std::string::npos) << rep->results[0].detail;
  // Without the mark nothing reaches the fwmark service: the balance must fail, fast.
  std::string out = test::run_capture(d + "nft delete table inet labctl 2>&1; echo rc=$?");
  EXPECT_NE(out.find("rc=0"), std::string::npos) << out;
  rep = run_checks(t, {"fw-balance"});
  ASSERT_TRUE(rep);
  EXPECT_FALSE(rep->results[0].passed) << rep->results[0].detail;
  EXPECT_LT(rep->results[0].ms, 3000) << rep->results[0].detail;
  EXPECT_TRUE(lab_down(t.name));
}

}  // namespace
}  // namespace labctl
