// Kernel tier: IPVS connection synchronisation. Without keepalived, labctl starts the sync
// daemons itself (NEW_DAEMON) in the roles written; status reads them back (GET_DAEMON),
// the backup director learns the master's connections, and `down` ends them with the
// namespaces. With keepalived (ha-demo), the failover check's held connections all survive
// the takeover (ha_demo_test.cc); the same lab without ipvs_sync loses them.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <regex>
#include <string>
#include <thread>

#include "labctl/base/fd.h"
#include "labctl/checks/checks.h"
#include "labctl/kernel/ipvs_proc.h"
#include "labctl/kernel/probe.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/lab/status.h"
#include "labctl/model/builtins.h"
#include "labctl/model/load.h"
#include "labctl/plan/planner.h"
#include "tests/kernel/kernel_test.h"

namespace labctl {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

class KernelSync : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "kernel tier needs root";
    if (Status ipvs = test::ipvs_available(); !ipvs) {
      LABCTL_KERNEL_SKIP() << ipvs.error().str();
    }
  }
  void TearDown() override {
    if (!topo_.name.empty()) {
      EXPECT_TRUE(lab_down(topo_.name));
    }
  }
  void up_text(const std::string& text, const std::string& file) {
    auto r = parse_topology(text, file);
    ASSERT_TRUE(r.ok());
    Status st = lab_up(*r.topology, make_plan(*r.topology), {});
    ASSERT_TRUE(st) << st.error().str();
    topo_ = *r.topology;
  }
  const NetnsStatus* ns_of(const LabStatus& s, const std::string& member) {
    for (const auto& n : s.namespaces)
      if (n.member == member) return &n;
    return nullptr;
  }
  Topology topo_;
};

TEST_F(KernelSync, LabctlStartsTheDaemonsAndTheBackupLearnsTheMastersConnections) {
  ASSERT_TRUE(test::up_fixture("ipvs-sync-pair.toml", topo_));
  // Read back from the kernel (GET_DAEMON), as status shows them.
  auto st = lab_status(topo_.name);
  ASSERT_TRUE(st) << st.error().str();
  const NetnsStatus* d1 = ns_of(*st, "dir1");
  const NetnsStatus* d2 = ns_of(*st, "dir2");
  ASSERT_TRUE(d1 && d2);
  ASSERT_EQ(d1->sync.size(), 1u) << d1->error;
  EXPECT_EQ(d1->sync[0].role, IpvsDaemon::Role::Master);
  EXPECT_EQ(d1->sync[0].interface, "eth0");
  EXPECT_EQ(d1->sync[0].sync_id, 7u);
  ASSERT_EQ(d2->sync.size(), 1u) << d2->error;
  EXPECT_EQ(d2->sync[0].role, IpvsDaemon::Role::Backup);
  EXPECT_THAT(render_status(*st), HasSubstr("ipvs sync master on eth0 syncid 7"));
  EXPECT_THAT(status_json(*st).dump(), HasSubstr(R"("role":"backup")"));

  // Four connections through dir1, kept open; dir2 must learn all four.
  const IpAddr vip = *IpAddr::parse("10.21.0.100");
  std::vector<Fd> held(4);
  std::vector<uint16_t> ports;
  auto client = open_netns(netns_name(topo_.name, "client"));
  ASSERT_TRUE(client);
  ASSERT_TRUE(run_in_netns(client->get(), [&]() -> Status {
    for (auto& fd : held) {
      HttpGetOptions o;
      o.keep = &fd;
      o.keep_alive = true;
      TRY_ASSIGN(std::string body, http_get(vip, 80, "/", 2000ms, o));
      if (body != "rs1" && body != "rs2") return fail("answered " + body);
      sockaddr_in a{};
      socklen_t len = sizeof a;
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
      ports.push_back(ntohs(a.sin_port));
    }
    return {};
  }));
  auto dir2 = open_netns(netns_name(topo_.name, "dir2"));
  ASSERT_TRUE(dir2);
  int learned = 0;
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < 6s) {
    learned = 0;
    ASSERT_TRUE(run_in_netns(dir2->get(), [&]() -> Status {
      TRY_ASSIGN(auto table, ipvs::read_conn_table());
      for (uint16_t p : ports)
        for (const auto& e : table)
          if (e.client_port == p && e.vip == vip && e.vport == 80) {
            ++learned;
            break;
          }
      return {};
    }));
    if (learned == 4) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(learned, 4) << "dir2's backup daemon learned " << learned << " of dir1's 4 connections";
  std::fprintf(stderr, "dir2 learned %d of 4 connections in %lld ms\n", learned,
               static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now() - t0)
                                          .count()));
  // The kept connections still answer through dir1.
  for (auto& fd : held) EXPECT_TRUE(http_get_kept(fd, vip, 80, "/", 2000ms));
}

// ha-demo syncs through keepalived, and its failover check's held connections all survive
// the takeover (asserted where ha-demo's checks run: ha_demo_test.cc). The same lab
// without ipvs_sync loses them: dir2 knows none, and resets each.
TEST_F(KernelSync, HaDemoWithoutSyncLosesTheHeldConnections) {
  if (::access("/usr/sbin/keepalived", X_OK) != 0) {
    LABCTL_KERNEL_SKIP() << "keepalived is not installed";
  }
  const std::string demo(find_builtin("ha-demo")->text);
  ASSERT_THAT(demo, HasSubstr("connections = 8"));
  // The same lab without connection synchronisation.
  std::string text = std::regex_replace(demo, std::regex(R"(\nipvs_sync = [^\n]*)"), "");
  ASSERT_THAT(text, ::testing::Not(HasSubstr("ipvs_sync =")));
  up_text(text, "ha-demo-nosync.toml");
  // keepalived started no daemon: none is in the kernel.
  auto st = lab_status(topo_.name);
  ASSERT_TRUE(st);
  for (const auto& n : st->namespaces) EXPECT_TRUE(n.sync.empty()) << n.member;
  auto bad = run_checks(topo_, {"failover"});
  ASSERT_TRUE(bad) << bad.error().str();
  ASSERT_EQ(bad->results.size(), 1u);
  const CheckResult& without = bad->results[0];
  std::fprintf(stderr, "without sync: %s\n", render_checks(*bad).c_str());
  EXPECT_FALSE(without.passed) << without.detail;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(without.detail, m, std::regex(R"((\d+) of 8 connections survived)")))
      << without.detail;
  EXPECT_LT(std::stoi(m[1]), 8) << without.detail;
  EXPECT_THAT(without.detail, HasSubstr("dir2 runs no backup sync daemon"));
  EXPECT_THAT(without.detail, HasSubstr("reset by peer"));
  // The VIP moved all the same: new connections are answered, old ones are lost.
  EXPECT_THAT(without.detail, HasSubstr("moved from dir1 to dir2"));
}

}  // namespace
}  // namespace labctl
