// Kernel tier: `labctl trace` of each demo, checked field by field against what the LVS
// method promises, with the expected MACs and addresses read from the kernel in each
// node's namespace (ip -j), never from labctl's records. One `up` per demo; dr-demo also
// checks `labctl capture -w` against tcpdump -r.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "labctl/lab/lifecycle.h"
#include "labctl/model/load.h"
#include "tests/kernel/kernel_test.h"
#include "tests/support/kill_sweep.h"

namespace labctl {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;
const std::string kLabctl = LABCTL_BINARY_DIR "/labctl/labctl";

std::string sh(const std::string& cmd) { return test::run_capture(cmd); }

class KernelTrace : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "kernel tier needs root";
    if (Status ipvs = test::ipvs_available(); !ipvs) LABCTL_KERNEL_SKIP() << ipvs.error().str();
    auto loaded = load_topology(GetParam());
    ASSERT_TRUE(loaded.ok());
    topo_ = *loaded.topology;
    ASSERT_TRUE(lab_namespaces(topo_.name).empty()) << topo_.name << " is up already";
    // Up as a user brings it up: the CLI keeps the topology in the lab's state for trace.
    const std::string up = sh(kLabctl + " up " + topo_.name + " 2>&1; echo rc=$?");
    ASSERT_THAT(up, HasSubstr("rc=0")) << up;
  }
  void TearDown() override {
    if (!topo_.name.empty()) {
      EXPECT_TRUE(lab_down(topo_.name));
    }
  }
  std::string mac(const std::string& node, const std::string& dev) const {
    auto j = json::parse(sh("ip -n " + topo_.name + "-" + node + " -j link show " + dev));
    return j.at(0).at("address");
  }
  // The first IPv4 address of dev in node, as the kernel has it.
  std::string addr(const std::string& node, const std::string& dev) const {
    auto j = json::parse(sh("ip -n " + topo_.name + "-" + node + " -4 -j addr show " + dev));
    return j.at(0).at("addr_info").at(0).at("local");
  }
  json trace() {
    const std::string out = sh(kLabctl + " trace " + topo_.name + " --json 2>&1; echo rc=$?");
    const auto rc = out.rfind("rc=");
    json j;
    try {
      j = json::parse(out.substr(0, rc));
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not JSON: " << out;
    }
    EXPECT_EQ(out.substr(rc), "rc=0\n") << out;
    return j;
  }
  static std::string where(const json& hop) {
    return hop["node"].get<std::string>() + ":" + hop["iface"].get<std::string>() + ":" + hop["dir"].get<std::string>();
  }
  static std::vector<std::string> path(const json& hops) {
    std::vector<std::string> p;
    for (const auto& h : hops) p.push_back(where(h));
    return p;
  }
  Topology topo_;
};

TEST_P(KernelTrace, TheWalkIsWhatTheMethodPromises) {
  const std::string lab = topo_.name;
  json j = trace();
  ASSERT_TRUE(j.is_object());
  SCOPED_TRACE(j.dump(1));
  EXPECT_TRUE(j["ok"]);
  EXPECT_TRUE(j["answered"]);
  const std::string rs = j["real_server"];
  ASSERT_TRUE(rs == "rs1" || rs == "rs2") << rs;
  const std::string cip = addr("client", "eth0");
  const auto& req = j["request"];
  const auto& rep = j["reply"];
  ASSERT_GE(req.size(), 4u);
  ASSERT_GE(rep.size(), 2u);
  EXPECT_EQ(where(req[0]), "client:eth0:out");
  EXPECT_EQ(where(rep.back()), "client:eth0:in");
  for (size_t i = 1; i < req.size(); ++i) EXPECT_GE(req[i]["t_us"].get<double>(), req[i - 1]["t_us"].get<double>());
  const std::string vip = j["vip"];
  EXPECT_EQ(rep.back()["src"], vip) << "the client's answer must come from the VIP";
  EXPECT_EQ(rep.back()["dst"], cip);
  bool reply_via_director = false;
  for (const auto& h : rep) reply_via_director = reply_via_director || h["node"] == "director";

  if (lab == "dr-demo") {
    EXPECT_EQ(path(req), (std::vector<std::string>{"client:eth0:out", "director:eth0:in", "director:eth0:out",
                                                   rs + ":eth0:in"}));
    for (const auto& h : req) {  // DR: the IP header never changes
      EXPECT_EQ(h["src"], cip);
      EXPECT_EQ(h["dst"], vip);
      EXPECT_TRUE(h["outer"].is_null());
    }
    EXPECT_EQ(req[1]["dst_mac"], mac("director", "eth0"));
    EXPECT_EQ(req[2]["src_mac"], mac("director", "eth0"));
    EXPECT_EQ(req[2]["dst_mac"], mac(rs, "eth0")) << "DR rewrites the destination MAC to the real server's";
    EXPECT_THAT(req[2]["why"].get<std::string>(), HasSubstr("DR: the director rewrote only the destination MAC"));
    EXPECT_EQ(path(rep), (std::vector<std::string>{rs + ":eth0:out", "client:eth0:in"}));
    EXPECT_EQ(rep[0]["src"], vip);
    EXPECT_EQ(rep[0]["src_mac"], mac(rs, "eth0"));
    EXPECT_FALSE(reply_via_director);
    EXPECT_FALSE(j["reply_via_director"]);
  } else if (lab == "nat-demo") {
    const std::string rip = addr(rs, "eth0");
    EXPECT_EQ(path(req), (std::vector<std::string>{"client:eth0:out", "director:eth0:in", "director:eth1:out",
                                                   rs + ":eth0:in"}));
    EXPECT_EQ(req[1]["dst"], vip);
    EXPECT_EQ(req[2]["dst"], rip) << "NAT rewrites the destination VIP -> RIP";
    EXPECT_EQ(req[2]["src"], cip);
    EXPECT_EQ(req[2]["dst_mac"], mac(rs, "eth0"));
    EXPECT_THAT(req[2]["why"].get<std::string>(), HasSubstr("NAT: the director rewrote the destination VIP -> RIP"));
    EXPECT_EQ(path(rep), (std::vector<std::string>{rs + ":eth0:out", "director:eth1:in", "director:eth0:out",
                                                   "client:eth0:in"}));
    EXPECT_EQ(rep[0]["src"], rip);
    EXPECT_EQ(rep[1]["src"], rip);
    EXPECT_EQ(rep[2]["src"], vip) << "NAT rewrites the reply's source RIP -> VIP";
    EXPECT_THAT(rep[2]["why"].get<std::string>(), HasSubstr("rewrote the reply's source RIP -> VIP"));
    EXPECT_TRUE(reply_via_director);
    EXPECT_TRUE(j["reply_via_director"]);
  } else if (lab == "tun-demo") {
    const std::string rip = addr(rs, "eth0"), dip = addr("director", "eth0");
    EXPECT_EQ(path(req), (std::vector<std::string>{"client:eth0:out", "director:eth0:in", "director:eth0:out",
                                                   "router:eth0:in", "router:eth1:out", rs + ":eth0:in",
                                                   rs + ":tunl0:in"}));
    EXPECT_TRUE(req[1]["outer"].is_null());
    for (size_t i = 2; i <= 5; ++i) {  // TUN: outer DIP -> RIP around the untouched CIP -> VIP
      ASSERT_FALSE(req[i]["outer"].is_null()) << where(req[i]);
      EXPECT_EQ(req[i]["outer"]["src"], dip);
      EXPECT_EQ(req[i]["outer"]["dst"], rip);
      EXPECT_EQ(req[i]["outer"]["proto"], 4);
      EXPECT_EQ(req[i]["src"], cip);
      EXPECT_EQ(req[i]["dst"], vip);
    }
    EXPECT_EQ(req[2]["dst_mac"], mac("router", "eth0"));
    EXPECT_EQ(req[4]["dst_mac"], mac(rs, "eth0"));
    EXPECT_TRUE(req[6]["outer"].is_null()) << "tunl0 shows the unwrapped packet";
    EXPECT_EQ(req[6]["src"], cip);
    EXPECT_EQ(req[6]["dst"], vip);
    EXPECT_THAT(req[2]["why"].get<std::string>(), HasSubstr("TUN: the director wrapped the packet"));
    EXPECT_EQ(path(rep), (std::vector<std::string>{rs + ":eth0:out", "router:eth1:in", "router:eth0:out",
                                                   "client:eth0:in"}));
    EXPECT_EQ(rep[0]["src"], vip);
    EXPECT_FALSE(reply_via_director);
  } else {
    FAIL() << "no expectations for " << lab;
  }

  // The text form says the same, in words.
  const std::string text = sh(kLabctl + " trace " + lab + " 2>&1");
  EXPECT_THAT(text, HasSubstr("the walk is what"));
  EXPECT_THAT(text, HasSubstr("reply path:"));

  if (lab != "dr-demo") return;
  // capture -w while traffic flows: tcpdump reads exactly --count packets back.
  const std::string pcap = "/tmp/labctl-trace-kernel.pcap";
  const std::string cmd = kLabctl + " capture " + lab + " rs1 eth0 -w " + pcap +
                          " --count 4 --seconds 30 --filter 'tcp port 80' 2>/dev/null";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
    ::_exit(127);
  }
  int ws = 0, rc = -1;
  for (int i = 0; i < 100; ++i) {
    if (::waitpid(pid, &ws, WNOHANG) == pid) {
      rc = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
      break;
    }
    sh("ip netns exec " + lab + "-client curl -s -m 1 http://" + vip + "/ >/dev/null 2>&1");
  }
  if (rc == -1) ::kill(pid, SIGKILL), ::waitpid(pid, &ws, 0);
  EXPECT_EQ(rc, 0);
  const std::string read = sh("tcpdump -nn -r " + pcap + " 2>/dev/null");
  std::filesystem::remove(pcap);
  std::istringstream in(read);
  int n = 0;
  for (std::string l; std::getline(in, l);) n += l.find(vip + ".80") != std::string::npos;
  EXPECT_EQ(n, 4) << read;
}

// --all: the connection to its close, who holds TIME_WAIT, and what the director saw of it.
// In DR and TUN the director receives only the client's half (its FIN too, never the real
// server's), so its IPVS entry stays FIN_WAIT and `labctl ipvs` counts it in InActConn; in
// NAT it carries both halves and the entry ends in TIME_WAIT.
TEST_P(KernelTrace, AllFollowsTheCloseAndReadsTheDirectorsEntry) {
  const std::string lab = topo_.name;
  const std::string out = sh(kLabctl + " trace " + lab + " --all --json 2>&1");
  json j;
  ASSERT_NO_THROW(j = json::parse(out)) << out;
  ASSERT_TRUE(j["ok"]) << out;
  const auto& life = j["lifecycle"];
  const std::string rs = j["real_server"];
  EXPECT_TRUE(life["closed"]) << out;
  EXPECT_EQ(life["server"]["node"], rs);
  // labctl's http agent answers and closes: the real server closes first and holds TIME_WAIT.
  EXPECT_EQ(life["closed_first_node"], rs) << out;
  EXPECT_EQ(life["time_wait_node"], rs) << out;
  EXPECT_EQ(life["sockets"][1]["state"], "TIME_WAIT") << out;
  const auto& d = life["director"];
  ASSERT_TRUE(d.is_object()) << out;
  EXPECT_TRUE(d["fin_from_client"]);
  ASSERT_TRUE(d["entry"].is_object()) << out;
  const bool nat = std::string(GetParam()) == "nat-demo";
  if (nat) {
    EXPECT_GT(d["from_server"].get<int>(), 0);
    EXPECT_TRUE(d["fin_from_server"]);
    EXPECT_EQ(d["entry"]["state"], "TIME_WAIT") << out;
  } else {
    EXPECT_EQ(d["from_server"], 0) << out;
    EXPECT_FALSE(d["fin_from_server"]);
    EXPECT_EQ(d["entry"]["state"], "FIN_WAIT") << out;
    EXPECT_TRUE(d["entry"]["inactive"]);
    // `labctl ipvs` counts it where the trace said: the real server's InActConn.
    const std::string table = sh(kLabctl + " ipvs " + lab + " 2>&1");
    int inact = -1;
    std::istringstream in(table);
    for (std::string l; std::getline(in, l);) {
      std::istringstream words(l);
      std::vector<std::string> w{std::istream_iterator<std::string>(words), {}};
      if (w.size() == 7 && w[0] == "->" && w[6] == rs) inact = std::stoi(w[5]);
    }
    EXPECT_GE(inact, 1) << table;
    const std::string text = sh(kLabctl + " trace " + lab + " --all 2>&1");
    EXPECT_THAT(text, HasSubstr("all from the client (its FIN too), none from "));
    EXPECT_THAT(text, HasSubstr("IPVS connection entry: FIN_WAIT, expires in "));
    EXPECT_THAT(text, HasSubstr("`labctl ipvs` counts it in InActConn until then"));
  }
}

// three-tier: the walk goes through both tiers: the director's MAC rewrite to a proxy, then
// the proxy's own connection to an app from its back-side address and a new port, the
// app's answer and the proxy's; with --all both connections to their close.
TEST(KernelTraceTiers, ThreeTierWalksThroughTheProxyToTheApp) {
  if (::geteuid() != 0) GTEST_SKIP() << "kernel tier needs root";
  if (Status ipvs = test::ipvs_available(); !ipvs) LABCTL_KERNEL_SKIP() << ipvs.error().str();
  if (::access("/usr/sbin/nginx", X_OK) != 0) GTEST_SKIP() << "nginx is not installed (apt-get install nginx)";
  ASSERT_TRUE(lab_namespaces("three-tier").empty()) << "three-tier is up already";
  const std::string up = sh(kLabctl + " up three-tier 2>&1; echo rc=$?");
  ASSERT_THAT(up, HasSubstr("rc=0")) << up;
  const std::string out = sh(kLabctl + " trace three-tier --all --json 2>&1");
  json j;
  try {
    j = json::parse(out);
  } catch (const std::exception&) {
    ADD_FAILURE() << "not JSON: " << out;
  }
  if (j.is_object()) {
    EXPECT_TRUE(j["ok"]) << out;
    const std::string proxy = j["real_server"];
    EXPECT_TRUE(proxy == "proxy1" || proxy == "proxy2") << out;
    EXPECT_EQ(j["request"][2]["node"], "director");
    ASSERT_EQ(j["upstream"].size(), 1u) << out;
    const auto& leg = j["upstream"][0];
    EXPECT_EQ(leg["proxy"], proxy);
    // Its own back-side address, as the kernel has it, and a port of its own.
    const auto a = json::parse(sh("ip -n three-tier-" + proxy + " -4 -j addr show eth1"));
    EXPECT_EQ(leg["src"], a.at(0).at("addr_info").at(0).at("local")) << out;
    EXPECT_EQ(leg["request"][0]["iface"], "eth1");
    const std::string app = leg["server"];
    EXPECT_TRUE(app == "app1" || app == "app2") << out;  // "/" goes to the shop group
    EXPECT_TRUE(leg["answered"]);
    EXPECT_EQ(leg["server_answer"]["node"], proxy);
    EXPECT_EQ(leg["proxy_answer"]["src"], "10.30.0.100");  // DR: the proxy answers from the VIP
    EXPECT_EQ(j["lifecycle"]["director"]["from_server"], 0) << out;
    EXPECT_EQ(j["lifecycle"]["time_wait_node"], proxy) << out;
    EXPECT_TRUE(leg["lifecycle"]["closed"]) << out;
  }
  EXPECT_TRUE(lab_down("three-tier"));
}

INSTANTIATE_TEST_SUITE_P(Demos, KernelTrace, ::testing::Values("dr-demo", "nat-demo", "tun-demo"),
                         [](const auto& p) {
                           std::string n = p.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

}  // namespace
}  // namespace labctl
