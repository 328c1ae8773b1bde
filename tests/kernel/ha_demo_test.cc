// Kernel tier: ha-demo with Debian's keepalived in an IPVS kernel. The failover check fails
// the master as each `how` says (its keepalived stopped, its link cut, the node crashed). keepalived (not labctl)
// programs both directors' IPVS tables, read back with ipvsadm; the failover check moves
// the VIP with the client's outage measured; the health check sees a stopped real server
// leave both tables and come back. Its exercise fails failover naming the split brain,
// and the repaired topology passes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <regex>
#include <string>

#include "labctl/checks/checks.h"
#include "labctl/lab/agent_control.h"
#include "labctl/lab/live_edit.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/model/builtins.h"
#include "labctl/model/load.h"
#include "labctl/plan/planner.h"
#include "tests/kernel/kernel_test.h"

namespace labctl {
namespace {

using ::testing::HasSubstr;

std::string sh_out(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

class KernelHa : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "kernel tier needs root";
    if (Status ipvs = test::ipvs_available(); !ipvs) LABCTL_KERNEL_SKIP() << ipvs.error().str();
    if (::access("/usr/sbin/keepalived", X_OK) != 0)
      LABCTL_KERNEL_SKIP() << "keepalived is not installed";
  }
  void TearDown() override {
    if (!topo_.name.empty()) {
      EXPECT_TRUE(lab_down(topo_.name));
      // keepalived went with the lab.
      EXPECT_EQ(sh_out("pgrep -f -- '/labs/" + topo_.name + "/[k]eepalived' || true"), "");
    }
  }
  void up(const std::string& text, const std::string& file) {
    auto r = parse_topology(text, file);
    ASSERT_TRUE(r.ok());
    Status st = lab_up(*r.topology, make_plan(*r.topology), {});
    ASSERT_TRUE(st) << st.error().str();
    topo_ = *r.topology;
  }
  CheckReport run(const std::vector<std::string>& only = {}) {
    auto rep = run_checks(topo_, only);
    EXPECT_TRUE(rep) << rep.error().str();
    return rep ? *rep : CheckReport{};
  }
  static const CheckResult& result(const CheckReport& rep, const std::string& name) {
    for (const auto& r : rep.results)
      if (r.name == name) return r;
    throw std::runtime_error("no result " + name);
  }
  std::string ipvsadm(const std::string& node) {
    return sh_out("ip netns exec " + netns_name(topo_.name, node) + " ipvsadm -Ln 2>&1");
  }
  std::string addrs(const std::string& node) {
    return sh_out("ip -n " + netns_name(topo_.name, node) + " -br addr 2>&1");
  }
  Topology topo_;
};

TEST_F(KernelHa, HaDemoPassesFailoverAndHealthWithTheOutageMeasured) {
  up(std::string(find_builtin("ha-demo")->text), "ha-demo.toml");
  // dir1 won the election (up waited for it); keepalived programmed both tables itself.
  EXPECT_THAT(addrs("dir1"), HasSubstr("10.10.0.100/32"));
  EXPECT_THAT(addrs("dir2"), ::testing::Not(HasSubstr("10.10.0.100")));
  // keepalived runs the sync daemons as VRRP says: master on dir1, backup on dir2.
  EXPECT_THAT(sh_out("ip netns exec " + netns_name(topo_.name, "dir1") + " ipvsadm -Ln --daemon"),
              HasSubstr("master sync daemon (mcast=eth0, syncid=1"));
  EXPECT_THAT(sh_out("ip netns exec " + netns_name(topo_.name, "dir2") + " ipvsadm -Ln --daemon"),
              HasSubstr("backup sync daemon (mcast=eth0, syncid=1"));
  for (const char* d : {"dir1", "dir2"}) {
    std::string table = ipvsadm(d);
    EXPECT_THAT(table, HasSubstr("TCP  10.10.0.100:80 rr")) << d << "\n" << table;
    EXPECT_THAT(table, HasSubstr("10.10.0.11:80")) << d << "\n" << table;
    EXPECT_THAT(table, HasSubstr("10.10.0.12:80")) << d << "\n" << table;
  }
  CheckReport rep = run();
  std::string text = render_checks(rep);
  EXPECT_TRUE(rep.passed()) << text;
  const CheckResult& fo = result(rep, "failover");
  EXPECT_TRUE(fo.passed) << text;
  EXPECT_THAT(fo.detail, HasSubstr("moved from dir1 to dir2"));
  std::smatch m;
  ASSERT_TRUE(std::regex_search(fo.detail, m, std::regex(R"(outage (\d+) ms)"))) << fo.detail;
  // Measured, and bounded: a clean stop hands the VIP over well within three adverts.
  EXPECT_LT(std::stoi(m[1]), 4000) << fo.detail;
  // Its 8 held connections survive: dir2 learned them from dir1's sync daemon (ipvs_sync).
  EXPECT_THAT(fo.detail, HasSubstr("8 of 8 connections survived the takeover"));
  EXPECT_THAT(fo.detail, HasSubstr("dir2's sync daemon learned 8 of 8"));
  EXPECT_THAT(fo.detail, HasSubstr("restored"));
  const CheckResult& h = result(rep, "rs1-health");
  EXPECT_TRUE(h.passed) << text;
  EXPECT_THAT(h.detail, HasSubstr("left every director's IPVS table"));
  EXPECT_THAT(h.detail, HasSubstr("returned"));
  std::fprintf(stderr, "%s", text.c_str());
  // Everything restored: dir1 holds the VIP again, rs1 is back in both tables.
  EXPECT_THAT(addrs("dir1"), HasSubstr("10.10.0.100/32"));
  for (const char* d : {"dir1", "dir2"}) EXPECT_THAT(ipvsadm(d), HasSubstr("10.10.0.11:80"));

  // The checks fail loudly when things are wrong: with rs1's web server gone for good
  // (stopped by hand), health names the table it is missing from before anything else.
  ASSERT_TRUE(stop_agent(topo_, "rs1", "web", std::chrono::seconds(5)));
  CheckReport bad;
  for (int i = 0; i < 50; ++i) {  // until keepalived has taken rs1 out
    if (ipvsadm("dir1").find("10.10.0.11:80") == std::string::npos) break;
    ::usleep(100000);
  }
  bad = run({"rs1-health"});
  ASSERT_EQ(bad.results.size(), 1u);
  EXPECT_FALSE(bad.results[0].passed);
  EXPECT_THAT(bad.results[0].detail,
              HasSubstr("is not an active real server in every director's IPVS table"));
}

TEST_F(KernelHa, SplitBrainExerciseFailsFailoverNamingItUntilRepaired) {
  std::string text(find_builtin("ha-demo-splitbrain")->text);
  up(text, "ha-demo-splitbrain.toml");
  CheckReport rep = run();
  std::string out = render_checks(rep);
  EXPECT_TRUE(result(rep, "vip-reachable").passed) << out;
  const CheckResult& fo = result(rep, "failover");
  EXPECT_FALSE(fo.passed) << out;
  EXPECT_THAT(fo.detail, HasSubstr("split brain: dir1 and dir2 both hold the VIP 10.10.0.100"))
      << out;
  bool named = false;
  for (const auto& c : fo.causes)
    named = named || (c.node == "dir2" && c.fix == "[nodes.dir2.agents.vrrp] interface = \"eth0\"");
  EXPECT_TRUE(named) << out;
  std::fprintf(stderr, "%s", out.c_str());
  // The repair: dir2's VRRP on eth0, where dir1 advertises.
  ASSERT_TRUE(lab_down(topo_.name));
  topo_ = {};
  auto at = text.find("interface = \"eth1\"");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 18, "interface = \"eth0\"");
  up(text, "repaired.toml");
  CheckReport fixed = run({"failover"});
  EXPECT_TRUE(fixed.passed()) << render_checks(fixed);
}

// The master's link cut, and the master crashed (SIGKILL: no goodbye advert, so dir2 takes
// over only when dir1's adverts stop): each moves the VIP with an outage measured, and the
// lab is left as it was (dir1 holds the VIP again, nothing recorded as still changed).
TEST_F(KernelHa, FailoverByCutLinkAndByCrashNodeMeasureTheOutage) {
  std::string text(find_builtin("ha-demo")->text);
  text += "\n[checks.failover-cut]\nkind = \"failover\"\nfrom = \"client\"\nservice = \"web\"\n"
          "how = \"cut-link\"\n"
          "\n[checks.failover-crash]\nkind = \"failover\"\nfrom = \"client\"\nservice = \"web\"\n"
          "how = \"crash-node\"\n";
  up(text, "ha-demo.toml");
  for (const char* name : {"failover-cut", "failover-crash"}) {
    CheckReport rep = run({name});
    ASSERT_EQ(rep.results.size(), 1u);
    const CheckResult& fo = rep.results[0];
    EXPECT_TRUE(fo.passed) << render_checks(rep);
    EXPECT_THAT(fo.detail, HasSubstr("moved from dir1 to dir2"));
    EXPECT_THAT(fo.detail, HasSubstr(std::string(name) == "failover-cut" ? "dir1's link eth0 was cut"
                                                                        : "dir1 crashed"));
    std::smatch m;
    ASSERT_TRUE(std::regex_search(fo.detail, m, std::regex(R"(outage (\d+) ms)"))) << fo.detail;
    // Without a goodbye advert the backup waits out the master-down interval (3 adverts of
    // 1 s plus skew) from dir1's last advert, at most 1 s before the failure: over 1.5 s
    // whatever the emulation's speed (a crash whose keepalived got to say goodbye, as one
    // SIGKILLed parent before its children did, moved the VIP in 630 ms).
    EXPECT_GT(std::stoi(m[1]), 1500) << fo.detail;
    EXPECT_THAT(fo.detail, HasSubstr("restored"));
    std::fprintf(stderr, "%s", render_checks(rep).c_str());
    EXPECT_THAT(addrs("dir1"), HasSubstr("10.10.0.100/32"));
  }
  auto edits = recorded_live_edits(topo_.name);
  ASSERT_TRUE(edits);
  EXPECT_TRUE(fold_live_edits(*edits).empty());
  EXPECT_EQ(edits->size(), 4u);  // cut and restored, crashed and started
}

}  // namespace
}  // namespace labctl
