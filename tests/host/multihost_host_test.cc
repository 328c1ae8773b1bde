// Labs across hosts (docs/multihost.md), on simulated hosts (tests/support/simhosts.h):
// each host its own network, mount, UTS and PID namespaces with a private /run, running
// Debian's sshd; labctl reaches them with the real ssh, as it would real machines. The
// controller is this test's labctl in the machine's root namespace, with no part of the lab:
// nothing of a lab is ever made here.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <atomic>
#include <thread>

#include "labctl/base/shell_quote.h"
#include "labctl/kernel/features.h"
#include "labctl/kernel/process.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/lab/multihost.h"
#include "labctl/lab/state.h"
#include "tests/host/host_test.h"
#include "tests/support/kill_sweep.h"
#include "tests/support/simhosts.h"

namespace labctl::test {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using Clock = std::chrono::steady_clock;

const std::string kLabctl = LABCTL_BINARY_DIR "/labctl/labctl";

class HostMultiHost : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    if (!std::filesystem::exists("/usr/sbin/sshd")) GTEST_SKIP() << "needs Debian's openssh-server";
    auto h = SimHosts::start(2, SimHosts::default_program());
    ASSERT_TRUE(h) << h.error().str();
    hosts_ = std::make_unique<SimHosts>(std::move(*h));
    ::setenv("LABCTL_SSH_CONFIG", hosts_->ssh_config().c_str(), 1);
    lab_ = unique_name("mh");
    file_ = hosts_->dir() + "/lab.toml";
  }
  void TearDown() override {
    if (!hosts_) return;
    (void)labctl({"down", lab_});
    // Nothing of the lab on any host, nor a record here.
    for (int i = 1; i <= hosts_->size(); ++i) EXPECT_THAT(hosts_->leftovers(i), IsEmpty()) << "host h" << i;
    EXPECT_FALSE(std::filesystem::exists(controller_record_path(lab_)));
    EXPECT_FALSE(std::filesystem::exists(controller_topology_path(lab_)));
    ::unsetenv("LABCTL_SSH_CONFIG");
    EXPECT_TRUE(hosts_->stop());
  }

  Captured labctl(const std::vector<std::string>& args, std::chrono::seconds limit = std::chrono::seconds(60)) {
    std::vector<std::string> argv = {kLabctl};
    argv.insert(argv.end(), args.begin(), args.end());
    auto c = run_captured(argv, Clock::now() + limit);
    EXPECT_TRUE(c) << c.error().str();
    return c ? *c : Captured{};
  }

  // c1 on h1, s1 on h2 (an http agent), both on switch lan, stretched over VXLAN.
  void write_lab(const std::string& extra = {}) {
    std::ofstream(file_) << "version = 1\nname = \"" << lab_ << "\"\n"
                         << "[hosts.h1]\nssh = \"h1\"\nunderlay = \"" << hosts_->underlay(1) << "\"\nlabctl = \""
                         << kLabctl << "\"\n"
                         << "[hosts.h2]\nssh = \"h2\"\nunderlay = \"" << hosts_->underlay(2) << "\"\nlabctl = \""
                         << kLabctl << "\"\n"
                         << R"(
[switches.lan]
mtu = 1450

[nodes.c1]
host = "h1"
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.1/24"] }

[nodes.s1]
host = "h2"
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.2/24"] }
agents.web = { kind = "http", port = 80 }

[checks.reach]
kind = "reach"
from = "c1"
to = "10.0.0.2"

[checks.web]
kind = "http"
from = "c1"
to = "10.0.0.2"
port = 80
)" << extra;
  }

  std::unique_ptr<SimHosts> hosts_;
  std::string lab_, file_;
};

TEST_F(HostMultiHost, ALabSplitOverTwoHostsWorksAcrossTheVxlanAndGoesDown) {
  write_lab();
  auto up = labctl({"up", "--check", file_});
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
  EXPECT_THAT(up.out, HasSubstr("hosts: h1 (1 node) h2 (1 node)"));
  EXPECT_THAT(up.out, HasSubstr("PASS  reach (reach)"));
  EXPECT_THAT(up.out, HasSubstr("PASS  web (http)"));
  EXPECT_THAT(up.out, HasSubstr("[on host h1]"));
  // Each host holds its nodes and its copy of the switch; the controller holds only a record.
  EXPECT_THAT(hosts_->netns_names(1), ::testing::UnorderedElementsAre(lab_ + "-c1", lab_ + "-lan"));
  EXPECT_THAT(hosts_->netns_names(2), ::testing::UnorderedElementsAre(lab_ + "-s1", lab_ + "-lan"));
  EXPECT_THAT(lab_namespaces(lab_), IsEmpty());
  EXPECT_TRUE(std::filesystem::exists(controller_record_path(lab_)));

  // ARP crossed the VXLAN: c1 knows s1's MAC (exec is answered by c1's host, h1).
  auto mac = labctl({"exec", lab_, "s1", "--", "cat", "/sys/class/net/eth0/address"});
  ASSERT_EQ(mac.exit_code, 0) << mac.err;
  auto neigh = labctl({"exec", lab_, "c1", "--", "ip", "neigh", "show", "10.0.0.2"});
  ASSERT_EQ(neigh.exit_code, 0) << neigh.err;
  std::string s1_mac = mac.out.substr(0, mac.out.find('\n'));
  EXPECT_THAT(neigh.out, HasSubstr(s1_mac));
  // The VXLAN device lives in the switch's namespace, its UDP socket in the host's own.
  auto vx = hosts_->run(1, {"ip", "-n", lab_ + "-lan", "-d", "link", "show", "vxlan0"});
  ASSERT_TRUE(vx) << vx.error().str();
  EXPECT_THAT(*vx, HasSubstr("master lan"));
  EXPECT_THAT(*vx, HasSubstr("local " + hosts_->underlay(1)));
  auto udp = hosts_->run(1, {"ss", "-Hlun", "sport", "=", "4789"});
  ASSERT_TRUE(udp) << udp.error().str();
  EXPECT_THAT(*udp, HasSubstr(":4789"));

  // capture and logs about s1 are answered by s1's host, h2: a capture there sees c1's
  // requests arrive across the VXLAN.
  Captured cap;
  std::atomic<bool> captured{false};
  std::thread capture([&] {
    cap = labctl({"capture", lab_, "s1", "eth0", "--count", "1", "--seconds", "10", "--filter", "src host 10.0.0.1"});
    captured = true;
  });
  // Requests until the capture (started over ssh meanwhile) has seen one.
  for (const auto until = Clock::now() + std::chrono::seconds(12); !captured && Clock::now() < until;)
    (void)labctl({"check", lab_, "web"});
  capture.join();
  EXPECT_EQ(cap.exit_code, 0) << cap.out << cap.err;
  EXPECT_THAT(cap.out, HasSubstr("10.0.0.1"));
  auto logs = labctl({"logs", lab_, "s1", "web"});
  EXPECT_EQ(logs.exit_code, 0) << logs.out << logs.err;

  // status gathers every host.
  auto st = labctl({"status", lab_});
  EXPECT_EQ(st.exit_code, 0) << st.err;
  EXPECT_THAT(st.out, HasSubstr("host h1:"));
  EXPECT_THAT(st.out, HasSubstr("host h2:"));

  // Replaced at once: each host's VNI is free again when its old part is down (the VXLAN
  // device is deleted before its namespace, whose cleanup the kernel defers); -v shows each
  // host's steps as they are done.
  auto again = labctl({"up", "-v", "--replace", file_});
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  EXPECT_THAT(again.out, HasSubstr("[h2] ["));
  EXPECT_THAT(again.out, HasSubstr("stretch bridge lan in " + lab_ + "-lan over vxlan vxlan0"));
  EXPECT_THAT(again.out, HasSubstr("[h1] up: "));

  auto down = labctl({"down", lab_});
  EXPECT_EQ(down.exit_code, 0) << down.out << down.err;
  for (int i = 1; i <= 2; ++i) EXPECT_THAT(hosts_->netns_names(i), IsEmpty());
  // And up again right after down.
  auto third = labctl({"up", file_});
  EXPECT_EQ(third.exit_code, 0) << third.out << third.err;
}

// trace captures on every host at once: run from the controller (no part of the lab), it
// has h1 and h2 capture their nodes' interfaces over ssh, h1 send the request from c1, and
// merges the frames, so the walk has both hosts' hops. No host needs ssh to another.
TEST_F(HostMultiHost, TraceAcrossHostsMergesEveryHostsCapture) {
  write_lab();
  auto up = labctl({"up", file_});
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
  auto tr = labctl({"trace", lab_, "--from", "c1", "--to", "10.0.0.2:80", "--all", "--json"});
  ASSERT_EQ(tr.exit_code, 0) << tr.out << tr.err;
  auto j = nlohmann::json::parse(tr.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << tr.out;
  std::vector<std::string> request, reply;
  for (const auto& h : j["request"]) request.push_back(h["node"].get<std::string>() + ":" + h["iface"].get<std::string>());
  for (const auto& h : j["reply"]) reply.push_back(h["node"].get<std::string>() + ":" + h["iface"].get<std::string>());
  EXPECT_THAT(request, ::testing::ElementsAre("c1:eth0", "s1:eth0")) << tr.out;
  EXPECT_THAT(reply, ::testing::ElementsAre("s1:eth0", "c1:eth0")) << tr.out;
  EXPECT_TRUE(j["ok"].get<bool>()) << tr.out;
  EXPECT_THAT(j["findings"].dump(), HasSubstr("captured on hosts h1, h2 over ssh"));
  // --all: the whole connection, h2's segments included; s1's socket table is h2's to read.
  ASSERT_TRUE(j.contains("lifecycle")) << tr.out;
  EXPECT_THAT(j["lifecycle"].dump(), HasSubstr("runs on host h2"));
  auto text = labctl({"trace", lab_, "--from", "c1", "--to", "10.0.0.2:80"});
  EXPECT_EQ(text.exit_code, 0) << text.out << text.err;
  EXPECT_THAT(text.out, HasSubstr("s1:eth0")) << text.out;
  std::printf("%s", text.out.c_str());
  // A plain --to needs a sender.
  auto no_from = labctl({"trace", lab_, "--to", "10.0.0.2:80"});
  EXPECT_EQ(no_from.exit_code, 2) << no_from.out << no_from.err;
  EXPECT_THAT(no_from.err, HasSubstr("--to needs --from NODE"));
}

// A check reads nodes of another host: handshakes, run on c1's host (h1), reads s1's TCP
// counters on h2 through `labctl exec ... cat /proc/net/snmp` there; s1 accepted every
// connection c1 opened. Before, it failed naming s1's host.
TEST_F(HostMultiHost, ACheckReadsTheNodesOfAnotherHost) {
  write_lab(R"(
[checks.handshakes]
kind = "handshakes"
from = "c1"
to = "10.0.0.2"
port = 80
requests = 5
)");
  auto up = labctl({"up", file_});
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
  auto c = labctl({"check", lab_, "handshakes"});
  EXPECT_EQ(c.exit_code, 0) << c.out << c.err;
  EXPECT_THAT(c.out, HasSubstr("PASS  handshakes (handshakes)")) << c.out;
  EXPECT_THAT(c.out, HasSubstr("[on host h1]")) << c.out;
  EXPECT_THAT(c.out, ::testing::ContainsRegex("s1[^;]*passive \\+5")) << c.out;
}

// labctl test takes a lab across hosts as any other: up on every host (not this machine's
// micro-VM), each check on its from-node's host, a JUnit report, and down everywhere; a
// failing check (s1 has nothing on port 81) fails the run.
TEST_F(HostMultiHost, LabctlTestRunsALabAcrossHostsAndTakesItDown) {
  write_lab(R"(
[checks.nothing-on-81]
kind = "http"
from = "c1"
to = "10.0.0.2"
port = 81
)");
  const std::string junit = hosts_->dir() + "/report.xml";
  auto t = labctl({"test", "--junit", junit, file_}, std::chrono::seconds(120));
  EXPECT_EQ(t.exit_code, 1) << t.out << t.err;
  EXPECT_THAT(t.out, HasSubstr("PASS  web (http)")) << t.out;
  EXPECT_THAT(t.out, HasSubstr("FAIL  nothing-on-81 (http)")) << t.out;
  const std::string lint = test::run_capture("xmllint --noout --schema " LABCTL_TEST_DATA "/junit.xsd " + junit + " 2>&1");
  EXPECT_THAT(lint, HasSubstr("validates")) << lint;
  EXPECT_EQ(test::run_capture("xmllint --xpath 'count(//testcase)' " + junit), "4\n");  // up + 3 checks
  EXPECT_EQ(test::run_capture("xmllint --xpath 'count(//failure)' " + junit), "1\n");
  for (int i = 1; i <= 2; ++i) EXPECT_THAT(hosts_->netns_names(i), IsEmpty()) << "host h" << i;
  EXPECT_FALSE(std::filesystem::exists(controller_record_path(lab_)));
}

// A failure on one host rolls every host back, and says which host and why.
TEST_F(HostMultiHost, AFailureOnOneHostRollsBackEveryHost) {
  write_lab();
  // Something not of the lab already holds one of its names on h2.
  ASSERT_TRUE(hosts_->run(2, {"ip", "netns", "add", lab_ + "-s1"}));
  auto up = labctl({"up", file_});
  EXPECT_EQ(up.exit_code, 1) << up.out << up.err;
  EXPECT_THAT(up.err, HasSubstr("on host h2"));
  EXPECT_THAT(up.err, HasSubstr("every host was rolled back"));
  EXPECT_THAT(hosts_->netns_names(1), IsEmpty());
  // What was not the lab's is left alone.
  EXPECT_THAT(hosts_->netns_names(2), ::testing::ElementsAre(lab_ + "-s1"));
  ASSERT_TRUE(hosts_->run(2, {"ip", "netns", "del", lab_ + "-s1"}));
}

// Before anything is made: a host whose labctl differs is named, and nothing is made anywhere.
TEST_F(HostMultiHost, AHostWithAnotherLabctlIsNamedBeforeAnythingIsMade) {
  write_lab();
  std::string text;
  {
    std::ifstream in(file_);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  // h2's "labctl" is a script that claims another version.
  const std::string fake = hosts_->dir() + "/old-labctl";
  std::ofstream(fake) << "#!/bin/sh\necho 'labctl 0.0.1 (git 000000000000)'\n";
  std::filesystem::permissions(fake, std::filesystem::perms::owner_all);
  const auto at = text.rfind(kLabctl);
  text.replace(at, kLabctl.size(), fake);
  std::ofstream(file_) << text;
  auto up = labctl({"up", file_});
  EXPECT_EQ(up.exit_code, 1) << up.out << up.err;
  EXPECT_THAT(up.err, HasSubstr("host h2: it runs labctl 0.0.1 (git 000000000000), this is labctl"));
  EXPECT_THAT(up.err, HasSubstr("nothing was made on any host"));
  EXPECT_THAT(hosts_->netns_names(1), IsEmpty());
  EXPECT_FALSE(std::filesystem::exists(controller_record_path(lab_)));
}

// A host that lacks what its part needs (here: IPVS for a director on h2, on a kernel without
// it) is named before anything is made on any host.
TEST_F(HostMultiHost, AHostWithoutIpvsIsNamedBeforeAnythingIsMade) {
  if (probe_ipvs({"rr"}).family) GTEST_SKIP() << "this kernel has IPVS: the case needs one without";
  write_lab(R"(
[nodes.d]
host = "h2"
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.3/24", "10.0.0.100/32"] }
agents.web = { kind = "http", port = 80 }
[nodes.d.services.web]
vip = "10.0.0.100"
port = 80
method = "local"
real_servers = [{ node = "d" }]
)");
  auto up = labctl({"up", "--vm=never", file_});
  EXPECT_EQ(up.exit_code, 1) << up.out << up.err;
  EXPECT_THAT(up.err, HasSubstr("cannot build lab " + lab_ + " on host h2"));
  EXPECT_THAT(up.err, HasSubstr("IPVS"));
  EXPECT_THAT(up.err, HasSubstr("nothing was made on any host"));
  for (int i = 1; i <= 2; ++i) EXPECT_THAT(hosts_->netns_names(i), IsEmpty());
  EXPECT_FALSE(std::filesystem::exists(controller_record_path(lab_)));
}

// `down` from another host of the lab takes every host down, the controller's record gone.
TEST_F(HostMultiHost, DownFromAnyHostWithTheControllersRecordGone) {
  write_lab();
  auto up = labctl({"up", file_});
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
  std::filesystem::remove(controller_record_path(lab_));
  std::filesystem::remove(controller_topology_path(lab_));
  auto down = hosts_->run(2, {"env", "LABCTL_SSH_CONFIG=" + hosts_->ssh_config(), kLabctl, "down", lab_},
                          std::chrono::seconds(60));
  ASSERT_TRUE(down) << down.error().str();
  EXPECT_THAT(*down, HasSubstr("h1:"));
  for (int i = 1; i <= 2; ++i) EXPECT_THAT(hosts_->netns_names(i), IsEmpty());
  // Idempotent.
  auto again = labctl({"down", lab_});
  EXPECT_EQ(again.exit_code, 0) << again.err;
}

}  // namespace
}  // namespace labctl::test
