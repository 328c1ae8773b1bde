// Host tier: `labctl capture` and `labctl trace --to` on a routed lab of real namespaces
// (no IPVS here), checked against tcpdump reading the pcap files and against the link
// addresses the kernel reports in each namespace.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/host/host_test.h"
#include "tests/support/kill_sweep.h"

namespace labctl {
namespace {

using ::testing::HasSubstr;
const std::string kLabctl = LABCTL_BINARY_DIR "/labctl/labctl";

std::string sh(const std::string& cmd) { return test::run_capture(cmd); }

class HostTrace : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    lab_ = test::unique_name("trace");
    file_ = std::filesystem::temp_directory_path() / (lab_ + ".toml");
    std::ofstream(file_) << test::routed_lab(lab_);
    up_ = sh(kLabctl + " up " + file_.string() + " 2>&1; echo rc=$?");
  }
  static void TearDownTestSuite() {
    if (lab_.empty()) return;
    sh(kLabctl + " down " + lab_ + " >/dev/null 2>&1");
    std::filesystem::remove(file_);
  }
  void SetUp() override {
    LABCTL_REQUIRE_ROOT();
    ASSERT_THAT(up_, HasSubstr("rc=0")) << up_;
  }
  // A link's MAC address as `ip` reads it from the kernel in the node's namespace.
  static std::string mac_of(const std::string& node, const std::string& dev) {
    auto j = nlohmann::json::parse(sh("ip -n " + lab_ + "-" + node + " -j link show " + dev));
    return j.at(0).at("address");
  }
  // Requests from the client until `pid` (a capture) exits; returns its exit status.
  static int traffic_until_exit(pid_t pid) {
    for (int i = 0; i < 100; ++i) {
      int ws = 0;
      if (::waitpid(pid, &ws, WNOHANG) == pid) return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
      sh("ip netns exec " + lab_ + "-client curl -s -m 1 http://10.72.2.10/ >/dev/null 2>&1");
      ::usleep(50'000);
    }
    ::kill(pid, SIGKILL);
    return -1;
  }
  static pid_t spawn(const std::string& cmd) {
    pid_t pid = ::fork();
    if (pid == 0) {
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
      ::_exit(127);
    }
    return pid;
  }
  static inline std::string lab_, up_;
  static inline std::filesystem::path file_;
};

TEST_F(HostTrace, CaptureWritesAPcapThatTcpdumpReads) {
  const std::string pcap = "/tmp/" + lab_ + "-server.pcap";
  pid_t pid = spawn("exec " + kLabctl + " capture " + lab_ + " server eth0 -w " + pcap +
                    " --count 6 --seconds 20 --filter 'tcp port 80' 2>/dev/null");
  ASSERT_EQ(traffic_until_exit(pid), 0);
  const std::string read = sh("tcpdump -nn -r " + pcap + " 2>&1");
  std::filesystem::remove(pcap);
  int lines = 0;
  std::istringstream in(read);
  for (std::string l; std::getline(in, l);)
    if (l.find("10.72.2.10.80") != std::string::npos) ++lines;
  EXPECT_EQ(lines, 6) << read;
  EXPECT_THAT(read, HasSubstr("reading from file"));
}

TEST_F(HostTrace, CaptureSummaryLinesAndCtrlCStillLeavesAValidFile) {
  // One line per packet, with direction, MACs and addresses. Only SYNs (and SYN-ACKs): the
  // traffic starts before the capture is armed, and the tail of a connection caught in the
  // middle would be all answers (seen once in eight runs beside a full test run).
  pid_t pid = spawn("exec " + kLabctl + " capture " + lab_ + " router eth1 --count 4 --seconds 20 " +
                    "--filter 'tcp[tcpflags] & tcp-syn != 0' > /tmp/" + lab_ + ".lines 2>/dev/null");
  ASSERT_EQ(traffic_until_exit(pid), 0);
  const std::string lines = sh("cat /tmp/" + lab_ + ".lines; rm -f /tmp/" + lab_ + ".lines");
  EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), 4) << lines;
  EXPECT_THAT(lines, HasSubstr(" out " + mac_of("router", "eth1") + " > " + mac_of("server", "eth0")));
  EXPECT_THAT(lines, HasSubstr("10.72.2.10.80: TCP"));
  // Ctrl-C in the middle of a long capture: a complete pcap file, exit 0, at once.
  const std::string pcap = "/tmp/" + lab_ + "-int.pcap";
  pid = spawn("exec " + kLabctl + " capture " + lab_ + " client eth0 -w " + pcap + " --seconds 60 2>/dev/null");
  for (int i = 0; i < 5; ++i) sh("ip netns exec " + lab_ + "-client curl -s -m 1 http://10.72.2.10/ >/dev/null 2>&1");
  ::kill(pid, SIGINT);
  const auto t0 = std::chrono::steady_clock::now();
  int ws = 0;
  ::waitpid(pid, &ws, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_TRUE(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
  const std::string read = sh("tcpdump -nn -r " + pcap + " 2>&1; echo rc=$?");
  std::filesystem::remove(pcap);
  EXPECT_THAT(read, HasSubstr("rc=0"));
  EXPECT_THAT(read, HasSubstr("10.72.2.10.80"));
}

TEST_F(HostTrace, CaptureNamesWhatExistsWhenTheNodeOrInterfaceDoesNot) {
  std::string out = sh(kLabctl + " capture " + lab_ + " server eth9 --count 1 2>&1; echo rc=$?");
  EXPECT_THAT(out, HasSubstr("has no interface 'eth9'"));
  EXPECT_THAT(out, HasSubstr("its interfaces: eth0"));
  EXPECT_THAT(out, HasSubstr("rc=2"));
  out = sh(kLabctl + " capture " + lab_ + " nosuch eth0 --count 1 2>&1; echo rc=$?");
  EXPECT_THAT(out, HasSubstr("has no node 'nosuch'"));
  EXPECT_THAT(out, HasSubstr("client"));
  EXPECT_THAT(out, HasSubstr("rc=2"));
  out = sh(kLabctl + " capture " + lab_ + " server eth0 --filter 'tcp port banana' --count 1 2>&1; echo rc=$?");
  EXPECT_THAT(out, HasSubstr("filter \"tcp port banana\""));
  EXPECT_THAT(out, HasSubstr("rc=2"));
}

// The walk through a router: each hop's fields as captured, the router's new MACs (the
// kernel's own addresses) and TTL, the addresses unchanged, the reply's way back.
TEST_F(HostTrace, TraceWalksThroughTheRouterAndBack) {
  const std::string out = sh(kLabctl + " trace " + lab_ + " --from client --to 10.72.2.10:80 --json 2>&1");
  nlohmann::json j;
  ASSERT_NO_THROW(j = nlohmann::json::parse(out)) << out;
  ASSERT_TRUE(j["ok"]) << out;
  const auto& req = j["request"];
  ASSERT_EQ(req.size(), 4u) << out;
  const std::vector<std::string> where = {"client:eth0:out", "router:eth0:in", "router:eth1:out", "server:eth0:in"};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(req[i]["node"].get<std::string>() + ":" + req[i]["iface"].get<std::string>() + ":" +
                  req[i]["dir"].get<std::string>(),
              where[i]);
    EXPECT_EQ(req[i]["src"], "10.72.1.10");
    EXPECT_EQ(req[i]["dst"], "10.72.2.10");
    EXPECT_EQ(req[i]["dport"], 80);
    EXPECT_EQ(req[i]["flags"], "S");
    if (i) {
      EXPECT_GE(req[i]["t_us"].get<double>(), req[i - 1]["t_us"].get<double>());
    }
  }
  EXPECT_EQ(req[0]["src_mac"], mac_of("client", "eth0"));
  EXPECT_EQ(req[0]["dst_mac"], mac_of("router", "eth0"));
  EXPECT_EQ(req[2]["src_mac"], mac_of("router", "eth1"));
  EXPECT_EQ(req[2]["dst_mac"], mac_of("server", "eth0"));
  EXPECT_EQ(req[2]["ttl"].get<int>(), req[1]["ttl"].get<int>() - 1);
  EXPECT_THAT(req[2]["why"].get<std::string>(), HasSubstr("router routed it"));
  const auto& rep = j["reply"];
  ASSERT_EQ(rep.size(), 4u) << out;
  EXPECT_EQ(rep[0]["node"], "server");
  EXPECT_EQ(rep[0]["src"], "10.72.2.10");
  EXPECT_EQ(rep[0]["flags"], "S.");
  EXPECT_EQ(rep[3]["node"], "client");
  EXPECT_EQ(rep[3]["dst"], "10.72.1.10");
  EXPECT_EQ(rep[3]["dport"], j["client_port"]);
  EXPECT_TRUE(j["answered"]);
}

// --wait sends nothing and follows the next connection the node opens (here a curl);
// capture --json and -w - are read back too.
TEST_F(HostTrace, TraceWaitsForTheNextConnectionAndCaptureSpeaksJsonAndPcapOnStdout) {
  const std::string out_file = "/tmp/" + lab_ + ".wait.json";
  pid_t pid = spawn("exec " + kLabctl + " trace " + lab_ + " --from client --to 10.72.2.10:80 --wait --timeout 20 --json > " +
                    out_file + " 2>&1");
  EXPECT_EQ(traffic_until_exit(pid), 0);
  const std::string out = sh("cat " + out_file + "; rm -f " + out_file);
  nlohmann::json j;
  ASSERT_NO_THROW(j = nlohmann::json::parse(out)) << out;
  EXPECT_TRUE(j["ok"]);
  EXPECT_EQ(j["request"].size(), 4u);
  EXPECT_EQ(j["reply"].size(), 4u);

  pid = spawn("exec " + kLabctl + " capture " + lab_ + " server eth0 --json --count 2 --filter tcp > /tmp/" + lab_ +
              ".jsonl 2>/dev/null");
  ASSERT_EQ(traffic_until_exit(pid), 0);
  std::istringstream lines(sh("cat /tmp/" + lab_ + ".jsonl; rm -f /tmp/" + lab_ + ".jsonl"));
  int n = 0;
  for (std::string l; std::getline(lines, l); ++n) {
    auto p = nlohmann::json::parse(l);
    EXPECT_EQ(p["node"], "server");
    EXPECT_EQ(p["packet"]["l4"]["proto"], "TCP");
    EXPECT_TRUE(p["dir"] == "in" || p["dir"] == "out");
  }
  EXPECT_EQ(n, 2);

  pid = spawn("exec " + kLabctl + " capture " + lab_ + " server eth0 -w - --count 3 --filter tcp 2>/dev/null | tcpdump -nn -r - > /tmp/" +
              lab_ + ".stdout 2>/dev/null");
  ASSERT_EQ(traffic_until_exit(pid), 0);
  const std::string read = sh("cat /tmp/" + lab_ + ".stdout; rm -f /tmp/" + lab_ + ".stdout");
  EXPECT_EQ(std::count(read.begin(), read.end(), '\n'), 3) << read;
}

// --all: the whole connection as the client's interface saw it, in order: the three-way
// handshake, the request and the reply, the four-way close begun by the server (labctl's
// http agent closes after its answer), and the server holding TIME_WAIT, which `ss` in its
// namespace confirms.
TEST_F(HostTrace, AllFollowsTheConnectionToItsCloseAndFindsTimeWait) {
  const std::string out = sh(kLabctl + " trace " + lab_ + " --from client --to 10.72.2.10:80 --all --json 2>&1");
  nlohmann::json j;
  ASSERT_NO_THROW(j = nlohmann::json::parse(out)) << out;
  ASSERT_TRUE(j["ok"]) << out;
  const auto& life = j["lifecycle"];
  ASSERT_TRUE(life.is_object()) << out;
  EXPECT_EQ(life["seen_at"], "client:eth0");
  EXPECT_EQ(life["server"]["node"], "server");
  const auto& steps = life["steps"];
  ASSERT_GE(steps.size(), 7u) << out;
  EXPECT_EQ(steps[0]["handshake"], 1);
  EXPECT_EQ(steps[0]["from"], "client");
  EXPECT_EQ(steps[1]["handshake"], 2);
  EXPECT_EQ(steps[2]["handshake"], 3);
  EXPECT_TRUE(life["established"]);
  EXPECT_GT(life["request_bytes"].get<int>(), 0);
  EXPECT_GT(life["reply_bytes"].get<int>(), 0);
  // The close in the order it happened: 1/4 (server's FIN), 2/4, 3/4, 4/4, each once.
  std::vector<int> order;
  for (const auto& st : steps) {
    if (st["close_ack"] == 2) order.push_back(2);
    if (st["close"].get<int>()) order.push_back(st["close"].get<int>());
    if (st["close_ack"] == 4) order.push_back(4);
    if (st["close"] == 1) {
      EXPECT_EQ(st["from"], "server") << out;
    }
  }
  EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4})) << out;
  EXPECT_TRUE(life["closed"]);
  EXPECT_EQ(life["closed_first_node"], "server");
  EXPECT_EQ(life["time_wait_node"], "server");
  ASSERT_EQ(life["sockets"].size(), 2u) << out;
  EXPECT_EQ(life["sockets"][0]["node"], "client");
  EXPECT_TRUE(life["sockets"][0]["state"].is_null()) << out;
  EXPECT_EQ(life["sockets"][1]["node"], "server");
  EXPECT_EQ(life["sockets"][1]["state"], "TIME_WAIT") << out;
  const std::string port = std::to_string(j["client_port"].get<int>());
  // ss shows the dual-stack listener's sockets with v4-mapped addresses: [::ffff:10.72.1.10]:PORT.
  const std::string tw = sh("ip netns exec " + lab_ + "-server ss -Htan state time-wait");
  EXPECT_THAT(tw, HasSubstr("10.72.1.10]:" + port)) << tw;
  EXPECT_FALSE(j.contains("upstream"));  // the server answered by itself: no proxy

  // The same in words.
  const std::string text = sh(kLabctl + " trace " + lab_ + " --from client --to 10.72.2.10:80 --all 2>&1");
  EXPECT_THAT(text, HasSubstr("as client:eth0 saw it:"));
  EXPECT_THAT(text, HasSubstr("three-way handshake 2/3: SYN-ACK: server answers and asks back"));
  EXPECT_THAT(text, HasSubstr("four-way close 1/4: FIN: server says it wants to close"));
  EXPECT_THAT(text, HasSubstr("closed first: server (its FIN came first), so server holds TIME_WAIT"));
  EXPECT_THAT(text, HasSubstr("server: 10.72.2.10:80 <-> 10.72.1.10:"));
}

// Nothing listens on port 81: the server resets, no SYN-ACK comes, and the trace says
// where the SYN was last seen, fast, with exit status 1.
TEST_F(HostTrace, TraceOfAnUnansweredRequestSaysWhereItWasLastSeen) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string out = sh(kLabctl + " trace " + lab_ + " --from client --to 10.72.2.10:81 2>&1; echo rc=$?");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3)) << out;
  EXPECT_THAT(out, HasSubstr("last seen on server:eth0 (in)"));
  EXPECT_THAT(out, HasSubstr("connect to 10.72.2.10:81"));
  EXPECT_THAT(out, HasSubstr("server answered with a TCP reset from 10.72.2.10:81"));
  EXPECT_THAT(out, HasSubstr("rc=1"));
}

}  // namespace
}  // namespace labctl
