// Kernel tier: keepalived's per-service options, with Debian's keepalived 2.2.7 programming a
// real IPVS table (tests/data/keepalived-options.toml), read back with ipvsadm -Ln in the
// director's namespace and tried with curl from the client:
// - inhibit_on_failure: a real server whose web server stops stays with weight 0, and gets
//   its weight back when the web server runs again;
// - sorry_server: with every real server down, the sorry server is in the table and answers
//   the VIP;
// - check = "udp" (UDP_CHECK): a real server whose UDP echo server stops leaves the table
//   (the ICMP port unreachable fails the check) and returns when it runs again.
// Every wait polls with a deadline; keepalived's delay_loop is 0.5 s in the fixture.
// About 25 s in the micro-VM (lab up and down included).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <optional>
#include <sstream>
#include <string>

#include "labctl/lab/agent_control.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/model/load.h"
#include "labctl/plan/planner.h"
#include "tests/kernel/kernel_test.h"
#include "tests/support/kill_sweep.h"

namespace labctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct Dest {
  std::string fwd;  // Route, Masq, Tunnel, Local
  int weight = -1;
};

/// The destination `addr_port` of the service whose ipvsadm line starts with `service`
/// ("TCP  10.10.0.100:80"), or nothing when it is not in the table.
std::optional<Dest> dest(const std::string& table, const std::string& service,
                         const std::string& addr_port) {
  std::istringstream in(table);
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    if (line.rfind("TCP", 0) == 0 || line.rfind("UDP", 0) == 0 || line.rfind("SCTP", 0) == 0 ||
        line.rfind("FWM", 0) == 0) {
      inside = line.rfind(service + " ", 0) == 0;
      continue;
    }
    if (!inside) continue;
    std::istringstream words(line);
    std::string arrow, ap;
    Dest d;
    if (words >> arrow >> ap >> d.fwd >> d.weight && arrow == "->" && ap == addr_port) return d;
  }
  return std::nullopt;
}

constexpr const char* kWeb = "TCP  10.10.0.100:80";
constexpr const char* kEcho = "UDP  10.10.0.100:7";

class KernelKeepalivedOptions : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "kernel tier needs root";
    if (Status ipvs = test::ipvs_available(); !ipvs) LABCTL_KERNEL_SKIP() << ipvs.error().str();
    if (::access("/usr/sbin/keepalived", X_OK) != 0)
      LABCTL_KERNEL_SKIP() << "keepalived is not installed";
    ASSERT_TRUE(test::up_fixture("keepalived-options.toml", topo_));
    up_ = true;
  }
  void TearDown() override {
    if (!up_) return;
    EXPECT_TRUE(lab_down(topo_.name));
    EXPECT_EQ(test::run_capture("ip netns list | grep '^" + topo_.name + "-' || true"), "");
    EXPECT_EQ(test::run_capture("pgrep -f -- '/labs/" + topo_.name + "/[k]eepalived' || true"), "");
  }
  std::string in(const std::string& node, const std::string& cmd) {
    return test::run_capture("ip netns exec " + netns_name(topo_.name, node) + " " + cmd);
  }
  std::string table() { return in("dir1", "ipvsadm -Ln 2>&1"); }
  /// The answering node's name, or curl's error.
  std::string get() {
    std::string body = in("client", "curl -sS -m 2 http://10.10.0.100/ 2>&1");
    while (!body.empty() && body.back() == '\n') body.pop_back();
    return body;
  }
  /// Polls the director's table until `ok` holds (at most `limit`); returns the last table.
  std::string until(const std::function<bool(const std::string&)>& ok, const std::string& what,
                    std::chrono::milliseconds limit = std::chrono::seconds(15)) {
    auto start = std::chrono::steady_clock::now();
    std::string t = table();
    while (!ok(t)) {
      if (std::chrono::steady_clock::now() - start > limit) {
        ADD_FAILURE() << "after " << limit.count() << " ms: " << what << "\n" << t;
        return t;
      }
      ::usleep(100000);
      t = table();
    }
    std::fprintf(stderr, "%s after %lld ms\n", what.c_str(),
                 static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::steady_clock::now() - start)
                                            .count()));
    return t;
  }
  static auto weight(const char* svc, const char* ap, int w) {
    return [=](const std::string& t) {
      auto d = dest(t, svc, ap);
      return d && d->weight == w;
    };
  }
  static auto absent(const char* svc, const char* ap) {
    return
        [=](const std::string& t) { return t.find(svc) != std::string::npos && !dest(t, svc, ap); };
  }
  Topology topo_;
  bool up_ = false;
};

TEST_F(KernelKeepalivedOptions, InhibitSorryServerAndUdpCheckInTheRealIpvsTable) {
  // keepalived programmed both services; both web servers pass HTTP_GET. With
  // sorry_server_inhibit the sorry server is listed from the start, at weight 0.
  std::string t = until(
      [](const std::string& tab) {
        return weight(kWeb, "10.10.0.11:80", 1)(tab) && weight(kWeb, "10.10.0.12:80", 1)(tab) &&
               weight(kEcho, "10.10.0.11:7", 1)(tab);
      },
      "both web servers and the echo server in the table with weight 1");
  ASSERT_TRUE(dest(t, kWeb, "10.10.0.20:80")) << t;
  EXPECT_EQ(dest(t, kWeb, "10.10.0.20:80")->weight, 0) << t;
  EXPECT_EQ(dest(t, kWeb, "10.10.0.11:80")->fwd, "Route") << t;

  // 1. inhibit_on_failure: rs1's web server stops; rs1 stays, weight 0, and gets no traffic.
  ASSERT_TRUE(stop_agent(topo_, "rs1", "web", std::chrono::seconds(5)));
  t = until(weight(kWeb, "10.10.0.11:80", 0), "rs1 inhibited (weight 0, still listed)");
  EXPECT_EQ(dest(t, kWeb, "10.10.0.12:80")->weight, 1) << t;
  EXPECT_EQ(dest(t, kWeb, "10.10.0.20:80")->weight, 0) << "one server is still up:\n" << t;
  for (int i = 0; i < 4; ++i) EXPECT_EQ(get(), "rs2");
  ASSERT_TRUE(start_agent(topo_, "rs1", "web"));
  until(weight(kWeb, "10.10.0.11:80", 1), "rs1's weight restored");

  // 2. sorry_server: every web server down; both stay inhibited and the sorry server gets
  // weight 1, and it answers the VIP.
  ASSERT_TRUE(stop_agent(topo_, "rs1", "web", std::chrono::seconds(5)));
  ASSERT_TRUE(stop_agent(topo_, "rs2", "web", std::chrono::seconds(5)));
  t = until(
      [](const std::string& tab) {
        auto s = dest(tab, kWeb, "10.10.0.20:80");
        return s && s->weight > 0 && weight(kWeb, "10.10.0.11:80", 0)(tab) &&
               weight(kWeb, "10.10.0.12:80", 0)(tab);
      },
      "the sorry server in the table, both real servers at weight 0");
  // The sorry server is forwarded to like the service's real servers: DR.
  EXPECT_EQ(dest(t, kWeb, "10.10.0.20:80")->fwd, "Route") << t;
  EXPECT_EQ(get(), "sorry") << t;
  ASSERT_TRUE(start_agent(topo_, "rs1", "web"));
  ASSERT_TRUE(start_agent(topo_, "rs2", "web"));
  t = until(
      [](const std::string& tab) {
        auto s = dest(tab, kWeb, "10.10.0.20:80");
        // sorry_server_inhibit: the sorry server stays listed with weight 0.
        return weight(kWeb, "10.10.0.11:80", 1)(tab) && weight(kWeb, "10.10.0.12:80", 1)(tab) &&
               s && s->weight == 0;
      },
      "both real servers back, the sorry server out of service");
  std::fprintf(stderr, "after recovery:\n%s", t.c_str());
  for (int i = 0; i < 4; ++i) EXPECT_THAT(get(), Not(HasSubstr("sorry")));

  // 3. UDP_CHECK: rs1's echo server stops, the ICMP port unreachable fails the check and
  // rs1 leaves the UDP service (no inhibit_on_failure there); it returns with the server.
  ASSERT_TRUE(stop_agent(topo_, "rs1", "echo", std::chrono::seconds(5)));
  until(absent(kEcho, "10.10.0.11:7"), "rs1 out of the UDP service");
  ASSERT_TRUE(start_agent(topo_, "rs1", "echo"));
  until(weight(kEcho, "10.10.0.11:7", 1), "rs1 back in the UDP service");
}

}  // namespace
}  // namespace labctl
