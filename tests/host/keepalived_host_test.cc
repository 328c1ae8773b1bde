// Host tier: keepalived's VRRP between lab namespaces on this kernel (no IPVS needed). Two
// directors run Debian's keepalived as labctl agents: the MASTER holds the floating VIP,
// and when its keepalived is stopped the BACKUP takes it over (read from the namespaces'
// own addresses); started again, the MASTER takes it back. A pair whose routers sit on
// different segments never hear each other: both hold the VIP. `down` leaves no keepalived.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "labctl/kernel/netns.h"
#include "labctl/kernel/probe.h"
#include "labctl/kernel/rtnl.h"
#include "labctl/lab/agent_control.h"
#include "labctl/lab/state.h"
#include "labctl/model/load.h"
#include "tests/host/host_test.h"
#include "tests/support/kill_sweep.h"

namespace labctl {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

const std::string kLabctl = LABCTL_BINARY_DIR "/labctl/labctl";
const std::string kVip = "10.78.0.100";

std::string run(const std::string& cmd) { return test::run_capture(cmd); }

// Two directors on switch lan (and a second switch, other, for the broken pair).
std::string topology(const std::string& lab, const std::string& d2_interface) {
  auto agent = [&](const std::string& node, const std::string& ifname, const char* state,
                   int prio) {
    return "[nodes." + node + ".agents.vrrp]\nkind = \"keepalived\"\ninterface = \"" + ifname +
           "\"\nstate = \"" + state + "\"\npriority = " + std::to_string(prio) +
           "\nvirtual_router_id = 42\nadvert_int = 0.5\nvips = [\"" + kVip + "/32\"]\n";
  };
  return "version = 1\nname = \"" + lab + "\"\n[switches.lan]\n[switches.other]\n" +
         "[nodes.client]\ninterfaces.eth0 = { switch = \"lan\", addresses = [\"10.78.0.10/24\"] "
         "}\n" +
         "[nodes.d1]\ninterfaces.eth0 = { switch = \"lan\", addresses = [\"10.78.0.2/24\"] }\n" +
         "interfaces.eth1 = { switch = \"other\", addresses = [\"10.79.0.2/24\"] }\n" +
         agent("d1", "eth0", "MASTER", 150) +
         "[nodes.d2]\ninterfaces.eth0 = { switch = \"lan\", addresses = [\"10.78.0.3/24\"] }\n" +
         "interfaces.eth1 = { switch = \"other\", addresses = [\"10.79.0.3/24\"] }\n" +
         agent("d2", d2_interface, "BACKUP", 100);
}

class HostKeepalived : public ::testing::Test {
 protected:
  void SetUp() override {
    LABCTL_REQUIRE_ROOT();
    if (::access("/usr/sbin/keepalived", X_OK) != 0)
      GTEST_SKIP() << "keepalived is not installed (apt-get install keepalived)";
    lab_ = "ka" + std::to_string(::getpid() % 10000) + "x" +
           std::to_string(std::random_device{}() % 100000);
    file_ = "/tmp/" + lab_ + ".toml";
  }
  void TearDown() override {
    if (lab_.empty()) return;
    std::string out = run(kLabctl + " down " + lab_ + " 2>&1");
    for (const auto& ns : list_netns()) EXPECT_NE(ns.rfind(lab_ + "-", 0), 0u) << ns << "\n" << out;
    EXPECT_FALSE(std::filesystem::exists(state_dir(lab_)));
    // keepalived (parent and VRRP child) went with the lab.
    EXPECT_EQ(run("pgrep -f -- '" + state_dir(lab_) + "/[k]eepalived' || true"), "");
    std::remove(file_.c_str());
  }
  void up(const std::string& text) {
    std::ofstream(file_) << text;
    std::string out = run(kLabctl + " up " + file_ + " 2>&1; echo rc=$?");
    ASSERT_THAT(out, HasSubstr("rc=0")) << out;
    auto r = load_topology(file_);
    ASSERT_TRUE(r.ok());
    t_ = *r.topology;
  }
  // Whether node holds the VIP now, read from its namespace.
  bool holds(const std::string& node) {
    auto fd = open_netns(netns_name(lab_, node));
    if (!fd) return false;
    bool has = false;
    EXPECT_TRUE(run_in_netns(fd->get(), [&]() -> Status {
      TRY_ASSIGN(Rtnl rtnl, Rtnl::open());
      TRY_ASSIGN(auto addrs, rtnl.addresses());
      for (const auto& a : addrs)
        if (a.prefix.addr.str() == kVip) has = true;
      return {};
    }));
    return has;
  }
  // Polls until exactly the nodes in `want` hold the VIP (of d1, d2), or `limit` passes.
  bool await_holders(bool d1, bool d2, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (holds("d1") == d1 && holds("d2") == d2) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
  std::string logs() {
    return run(kLabctl + " logs " + lab_ + " d1 2>&1; " + kLabctl + " logs " + lab_ + " d2 2>&1");
  }
  std::string lab_, file_;
  Topology t_;
};

TEST_F(HostKeepalived, VipMovesToTheBackupWhenTheMastersKeepalivedStopsAndBack) {
  up(topology(lab_, "eth0"));
  // VRRP elects d1 (priority 150): it holds the VIP, d2 does not.
  ASSERT_TRUE(await_holders(true, false, 8s)) << logs();
  // keepalived wrote its config and pid files into the lab's state, one directory per agent.
  EXPECT_TRUE(std::filesystem::exists(keepalived_dir(lab_, "d1", "vrrp") + "/keepalived.conf"));
  EXPECT_TRUE(std::filesystem::exists(keepalived_dir(lab_, "d2", "vrrp") + "/vrrp.pid"));
  ASSERT_TRUE(stop_agent(t_, "d1", "vrrp", 8s));
  const auto stopped = std::chrono::steady_clock::now();
  ASSERT_TRUE(await_holders(false, true, 5s)) << logs();
  // A priority-0 advert on a clean stop: the backup takes over well before 3 adverts.
  EXPECT_LT(std::chrono::steady_clock::now() - stopped, 2500ms);
  // The client reaches the VIP at d2 now.
  auto client = open_netns(netns_name(lab_, "client"));
  ASSERT_TRUE(client);
  Status ping = fail("not run");
  for (int i = 0; i < 20 && !ping; ++i)
    ping = run_in_netns(client->get(), [&] { return icmp_echo(*IpAddr::parse(kVip), 300ms); });
  EXPECT_TRUE(ping) << ping.error().str();
  auto st = read_agent_state(lab_, "d1", "vrrp");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->state, "stopped");
  // Started again, d1 (higher priority, preempting) takes the VIP back.
  ASSERT_TRUE(start_agent(t_, "d1", "vrrp"));
  EXPECT_TRUE(await_holders(true, false, 8s)) << logs();
  // Starting one that runs is refused, naming its state.
  auto again = start_agent(t_, "d1", "vrrp");
  ASSERT_FALSE(again);
  EXPECT_THAT(again.error().str(), HasSubstr("it is running"));
}

TEST_F(HostKeepalived, RoutersOnDifferentSegmentsBothHoldTheVip) {
  up(topology(lab_, "eth1"));
  // d2 never hears d1's adverts (they go out on lan, d2 listens on other): both MASTER.
  EXPECT_TRUE(await_holders(true, true, 8s)) << logs();
  // And `labctl validate` says why, as a warning.
  std::string v = run(kLabctl + " validate " + file_ + " 2>&1");
  EXPECT_THAT(v, HasSubstr("split brain"));
}

}  // namespace
}  // namespace labctl
