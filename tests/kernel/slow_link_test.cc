// Kernel tier: checks hold on a slow link. netem (the micro-VM has sch_netem) delays the
// client's and the real servers' egress by 300 ms, so every request through the DR VIP waits
// 300 ms each way: a TCP connect takes 0.6 s and an HTTP GET 1.2 s, longer than a probe's
// least timeout (0.5 s). reach, http and balance must pass all the same (a probe waits a
// quarter of its check's deadline, and is sent again with more patience after a timeout),
// and still fail at once where the answer is a refusal.
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>

#include "labctl/checks/checks.h"
#include "labctl/kernel/features.h"
#include "labctl/kernel/netns.h"
#include "labctl/kernel/qdisc.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/model/load.h"
#include "labctl/plan/planner.h"
#include "tests/kernel/kernel_test.h"

namespace labctl {
namespace {

using namespace std::chrono_literals;

std::string rs(const std::string& name, const std::string& addr) {
  return "[nodes." + name + "]\n"
         "interfaces.eth0 = { switch = \"lan\", addresses = [\"" + addr + "/24\"] }\n"
         "lo = [\"10.41.0.100/32\"]\n"
         "agents.web = { kind = \"http\", port = 80 }\n"
         "[nodes." + name + ".sysctl]\n"
         "net.ipv4.conf.all.arp_ignore = 1\n"
         "net.ipv4.conf.all.arp_announce = 2\n";
}

// Deadlines that fit requests of 1.2 s each (docs/checks.md: Deadlines).
const std::string kLab = std::string(R"(version = 1
name = "chk-slow"
[switches.lan]
[nodes.client]
interfaces.eth0 = { switch = "lan", addresses = ["10.41.0.10/24"] }
[nodes.director]
interfaces.eth0 = { switch = "lan", addresses = ["10.41.0.2/24", "10.41.0.100/32"] }
[nodes.director.services.web]
vip = "10.41.0.100"
port = 80
method = "dr"
real_servers = [{ node = "rs1" }, { node = "rs2" }]
[checks.slow-reach]
kind = "reach"
from = "client"
to = "10.41.0.11"
port = 80
[checks.slow-refused]
kind = "reach"
from = "client"
to = "10.41.0.11"
port = 81
[checks.slow-http]
kind = "http"
from = "client"
service = "web"
timeout = 12
[checks.slow-balance]
kind = "balance"
from = "client"
service = "web"
requests = 6
timeout = 30
)") + rs("rs1", "10.41.0.11") + rs("rs2", "10.41.0.12");

class KernelSlowLink : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "kernel tier needs root";
    if (Status ipvs = test::ipvs_available(); !ipvs) LABCTL_KERNEL_SKIP() << ipvs.error().str();
    if (Status netem = probe_netem(); !netem) LABCTL_KERNEL_SKIP() << netem.error().str();
    std::ofstream(file_) << kLab;
    auto loaded = load_topology(file_);
    std::string diags;
    for (const auto& d : loaded.diagnostics) diags += format_diagnostic(d) + "\n";
    ASSERT_TRUE(loaded.ok()) << diags;
    topo_ = *loaded.topology;
    Status st = lab_up(topo_, make_plan(topo_), {});
    ASSERT_TRUE(st) << st.error().str();
    // 300 ms each way: the client's requests out, the real servers' replies back (DR).
    Impairment slow;
    slow.delay = 300ms;
    for (const char* node : {"client", "rs1", "rs2"}) {
      auto fd = open_netns(netns_name(topo_.name, node));
      ASSERT_TRUE(fd) << fd.error().str();
      st = run_in_netns(fd->get(), [&]() -> Status {
        TRY_ASSIGN(Rtnl rtnl, Rtnl::open());
        return set_impairment(rtnl, "eth0", slow);
      });
      ASSERT_TRUE(st) << node << ": " << st.error().str();
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
  std::string file_ = "/tmp/labctl-chk-slow.toml";
  Topology topo_;
};

TEST_F(KernelSlowLink, ReachHttpAndBalancePassOverADelayedLink) {
  auto r = result("slow-reach");
  EXPECT_TRUE(r.passed) << r.detail;
  EXPECT_GE(r.ms, 600) << "the connect crossed the delay both ways: " << r.detail;
  r = result("slow-http");
  EXPECT_TRUE(r.passed) << r.detail;
  EXPECT_EQ(r.detail.find("failed"), std::string::npos) << r.detail;
  r = result("slow-balance");
  EXPECT_TRUE(r.passed) << r.detail;
  EXPECT_NE(r.detail.find("rs1 3, rs2 3 of 6"), std::string::npos) << r.detail;
}

TEST_F(KernelSlowLink, ARefusalStillDecidesAtOnce) {
  auto r = result("slow-refused");
  EXPECT_FALSE(r.passed) << r.detail;
  EXPECT_NE(r.detail.find("refused"), std::string::npos) << r.detail;
  EXPECT_LT(r.ms, 2000) << "a refusal is an answer, never waited out: " << r.detail;
}

}  // namespace
}  // namespace labctl
