// Host tier: `labctl link` and `labctl node` on a real lab (the routed fixture: client --
// s1 -- router -- s2 -- server, an http agent on the server). Every effect is read back
// from the kernel, not from labctl's output: both ends' carrier of a cut link, the root
// qdisc of an impaired one (tbf: this host has no netem), a crashed node's processes and
// interfaces, and what `down` leaves (nothing) after all of it.
#include <linux/if.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "labctl/base/shell_quote.h"
#include "labctl/kernel/netns.h"
#include "labctl/kernel/process.h"
#include "labctl/kernel/qdisc.h"
#include "labctl/kernel/rtnl.h"
#include "labctl/lab/agent_control.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/lab/state.h"
#include "tests/host/host_test.h"

namespace labctl {
namespace {

using ::testing::HasSubstr;

const std::string kLabctl = LABCTL_BINARY_DIR "/labctl/labctl";

std::pair<std::string, int> run(const std::string& args) {
  std::string out;
  FILE* p = ::popen((kLabctl + " " + args + " 2>&1").c_str(), "r");
  if (!p) return {out, -1};
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int st = ::pclose(p);
  return {out, WIFEXITED(st) ? WEXITSTATUS(st) : -1};
}

// `dev` in namespace `ns` as the kernel shows it.
LinkInfo link_in(const std::string& ns, const std::string& dev) {
  LinkInfo out;
  auto fd = open_netns(ns);
  EXPECT_TRUE(fd) << ns;
  if (!fd) return out;
  Status st = run_in_netns(fd->get(), [&]() -> Status {
    TRY_ASSIGN(Rtnl r, Rtnl::open(ns));
    TRY_ASSIGN(out, r.link(dev));
    return {};
  });
  EXPECT_TRUE(st) << st.error().str();
  return out;
}

QdiscInfo root_in(const std::string& ns, const std::string& dev) {
  QdiscInfo out;
  auto fd = open_netns(ns);
  if (!fd) return out;
  Status st = run_in_netns(fd->get(), [&]() -> Status {
    TRY_ASSIGN(Rtnl r, Rtnl::open(ns));
    TRY_ASSIGN(out, root_qdisc(r, dev));
    return {};
  });
  EXPECT_TRUE(st) << st.error().str();
  return out;
}

size_t default_routes(const std::string& ns) {
  size_t n = 0;
  auto fd = open_netns(ns);
  if (!fd) return 0;
  Status st = run_in_netns(fd->get(), [&]() -> Status {
    TRY_ASSIGN(Rtnl r, Rtnl::open(ns));
    TRY_ASSIGN(auto routes, r.routes(AF_INET));
    for (const auto& x : routes) n += !x.dst;
    return {};
  });
  EXPECT_TRUE(st) << st.error().str();
  return n;
}

bool carrier(const LinkInfo& l) { return (l.flags & IFF_LOWER_UP) != 0; }

// `labctl check LAB` until it passes, for at most 5 s: a check run during the cut left the
// client's ARP entry for its gateway resolving, and a request queued on it when it gives
// up (3 probes, 1 s apart, all lost) fails at once with EHOSTUNREACH, however well the
// link works by then. The next request resolves afresh.
std::pair<std::string, int> check_until_passes(const std::string& lab) {
  std::pair<std::string, int> r;
  for (int i = 0; i < 5; ++i) {
    r = run("check " + lab);
    if (r.second == 0) break;
    ::sleep(1);
  }
  return r;
}

class LiveEditHost : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "host tier needs root (CAP_NET_ADMIN, mounts)";
    lab_ = test::unique_name("live");
    file_ = ::testing::TempDir() + "/" + lab_ + ".toml";
    std::ofstream(file_) << test::routed_lab(lab_) << test::kRoutedReachCheck;
    auto [out, rc] = run("up " + shell_quote(file_));
    ASSERT_EQ(rc, 0) << out;
  }
  void TearDown() override {
    if (!lab_.empty()) (void)run("down " + lab_);
    if (!file_.empty()) std::filesystem::remove(file_);
  }
  std::string ns(const std::string& member) const { return lab_ + "-" + member; }
  // The bridge port of NODE's eth0 in its switch: <node>-<interface> by default.
  static std::string port(const std::string& node, const std::string& /*sw*/) {
    return node + "-eth0";
  }
  std::string lab_, file_;
};

TEST_F(LiveEditHost, LinkDownUpCutsBothEndsCarrierAndRestoresIt) {
  auto [list, list_rc] = run("link " + lab_);
  ASSERT_EQ(list_rc, 0) << list;
  EXPECT_THAT(list, HasSubstr("client:eth0"));
  EXPECT_THAT(list, HasSubstr("router:eth1"));
  const std::string p = port("client", "s1");
  ASSERT_FALSE(p.empty());
  EXPECT_TRUE(carrier(link_in(ns("client"), "eth0")));

  auto [down, down_rc] = run("link " + lab_ + " client:eth0 down");
  ASSERT_EQ(down_rc, 0) << down;
  const LinkInfo near = link_in(ns("client"), "eth0"), far = link_in(ns("s1"), p);
  EXPECT_TRUE(near.up);  // administratively up, as a node whose cable was pulled
  EXPECT_FALSE(carrier(near));
  EXPECT_FALSE(far.up);
  EXPECT_FALSE(carrier(far));
  EXPECT_EQ(default_routes(ns("client")), 1u);  // its configuration stays
  auto [check, check_rc] = run("check " + lab_);
  EXPECT_NE(check_rc, 0) << check;
  auto [cut, cut_rc] = run("link " + lab_ + " --json");
  ASSERT_EQ(cut_rc, 0) << cut;
  for (const auto& row : nlohmann::json::parse(cut))
    EXPECT_EQ(row["state"], row["link"] == "client:eth0" ? "down" : "up") << row.dump();
  auto [status, status_rc] = run("status " + lab_);
  EXPECT_THAT(status, HasSubstr("link client:eth0 cut"));

  auto [up, up_rc] = run("link " + lab_ + " client:eth0 up");
  ASSERT_EQ(up_rc, 0) << up;
  EXPECT_TRUE(carrier(link_in(ns("client"), "eth0")));
  EXPECT_TRUE(carrier(link_in(ns("s1"), p)));
  auto [again, again_rc] = check_until_passes(lab_);
  EXPECT_EQ(again_rc, 0) << again;
  auto [status2, status2_rc] = run("status " + lab_);
  EXPECT_THAT(status2, ::testing::Not(HasSubstr("client:eth0 cut")));

  auto [bad, bad_rc] = run("link " + lab_ + " client:eth7 down");
  EXPECT_EQ(bad_rc, 2) << bad;
  EXPECT_THAT(bad, HasSubstr("its interfaces: eth0"));
}

TEST_F(LiveEditHost, ImpairWithTbfIsReadBackAndCleared) {
  auto [imp, imp_rc] = run("link " + lab_ + " server:eth0 impair rate=10mbit");
  ASSERT_EQ(imp_rc, 0) << imp;
  QdiscInfo q = root_in(ns("server"), "eth0");
  EXPECT_EQ(q.kind, "tbf");
  ASSERT_TRUE(q.impairment);
  EXPECT_EQ(q.impairment->rate, 1250000u);
  auto [list, list_rc] = run("link " + lab_);
  EXPECT_THAT(list, HasSubstr("10mbit"));
  auto [status, status_rc] = run("status " + lab_ + " --json");
  ASSERT_EQ(status_rc, 0) << status;
  EXPECT_EQ(nlohmann::json::parse(status)["live_edits"]["impaired"][0]["link"], "server:eth0");

  auto [clear, clear_rc] = run("link " + lab_ + " server:eth0 clear");
  ASSERT_EQ(clear_rc, 0) << clear;
  EXPECT_FALSE(root_in(ns("server"), "eth0").impairment);

  auto [bad, bad_rc] = run("link " + lab_ + " server:eth0 impair delay=5parsec");
  EXPECT_EQ(bad_rc, 2) << bad;
  EXPECT_THAT(bad, HasSubstr("'delay'"));
  if (root_in(ns("server"), "eth0").kind != "netem") {
    auto [netem, netem_rc] = run("link " + lab_ + " server:eth0 impair delay=50ms");
    if (netem_rc != 0) {
      EXPECT_THAT(netem, HasSubstr("CONFIG_NET_SCH_NETEM"));
    }
  }
}

TEST_F(LiveEditHost, NodeCrashKillsItsAgentsAndStartBringsThemBack) {
  auto before = read_agent_state(lab_, "server", "web");
  ASSERT_TRUE(before);
  ASSERT_TRUE(test::alive(before->supervisor));
  auto [crash, crash_rc] = run("node " + lab_ + " server crash");
  ASSERT_EQ(crash_rc, 0) << crash;
  EXPECT_FALSE(test::alive(before->supervisor));
  EXPECT_FALSE(test::alive(before->pid));
  EXPECT_TRUE(pids_in_netns(netns_path(ns("server"))).empty());
  EXPECT_FALSE(link_in(ns("server"), "eth0").up);
  EXPECT_FALSE(carrier(link_in(ns("s2"), port("server", "s2"))));
  auto [status, status_rc] = run("status " + lab_);
  EXPECT_THAT(status, HasSubstr("node server crashed"));
  auto [check, check_rc] = run("check " + lab_);
  EXPECT_NE(check_rc, 0) << check;

  auto [start, start_rc] = run("node " + lab_ + " server start");
  ASSERT_EQ(start_rc, 0) << start;
  auto after = read_agent_state(lab_, "server", "web");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->state, "running");
  EXPECT_TRUE(test::alive(after->supervisor));
  EXPECT_TRUE(link_in(ns("server"), "eth0").up);
  EXPECT_EQ(default_routes(ns("server")), 1u);  // dropped with eth0, put back
  auto [again, again_rc] = check_until_passes(lab_);
  EXPECT_EQ(again_rc, 0) << again;
}

// stop-agent stops one agent through its supervisor (the node keeps its links), start-agent
// brings it back ready; a missing or unknown agent name is bad usage naming the agents.
TEST_F(LiveEditHost, NodeStopAgentAndStartAgent) {
  auto before = read_agent_state(lab_, "server", "web");
  ASSERT_TRUE(before);
  auto [stop, stop_rc] = run("node " + lab_ + " server stop-agent web");
  ASSERT_EQ(stop_rc, 0) << stop;
  EXPECT_THAT(stop, HasSubstr("server's agent web stopped"));
  EXPECT_FALSE(test::alive(before->supervisor));
  EXPECT_FALSE(test::alive(before->pid));
  EXPECT_TRUE(link_in(ns("server"), "eth0").up);
  auto [check, check_rc] = run("check " + lab_);
  EXPECT_NE(check_rc, 0) << check;
  auto [start, start_rc] = run("node " + lab_ + " server start-agent web");
  ASSERT_EQ(start_rc, 0) << start;
  auto after = read_agent_state(lab_, "server", "web");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->state, "running");
  EXPECT_TRUE(test::alive(after->supervisor));
  auto [again, again_rc] = check_until_passes(lab_);
  EXPECT_EQ(again_rc, 0) << again;

  auto [no_name, no_name_rc] = run("node " + lab_ + " server stop-agent");
  EXPECT_EQ(no_name_rc, 2) << no_name;
  EXPECT_THAT(no_name, HasSubstr("stop-agent needs the agent's name"));
  auto [unknown, unknown_rc] = run("node " + lab_ + " server stop-agent nope");
  EXPECT_EQ(unknown_rc, 2) << unknown;
  EXPECT_THAT(unknown, HasSubstr("node server has no agent nope"));
  EXPECT_THAT(unknown, HasSubstr("its agents: web"));
  auto [extra, extra_rc] = run("node " + lab_ + " server crash web");
  EXPECT_EQ(extra_rc, 2) << extra;
  EXPECT_THAT(extra, HasSubstr("crash takes no agent"));
}

TEST_F(LiveEditHost, DownAfterEveryKindOfEditLeavesNothing) {
  ASSERT_EQ(run("link " + lab_ + " router:eth1 down").second, 0);
  ASSERT_EQ(run("link " + lab_ + " client:eth0 impair rate=1mbit").second, 0);
  ASSERT_EQ(run("node " + lab_ + " server crash").second, 0);
  auto [down, down_rc] = run("down " + lab_);
  EXPECT_EQ(down_rc, 0) << down;
  EXPECT_TRUE(lab_namespaces(lab_).empty());
  EXPECT_FALSE(std::filesystem::exists(state_dir(lab_)));
  lab_.clear();  // nothing left for TearDown
}

// A direct veth between two nodes (no switch): cutting either end takes both ends'
// carrier, as pulling a crossover cable does, and `up` restores it; the edit is named by
// the end given.
TEST(LiveEditHostPeer, CuttingANodeToNodeLinkTakesBothEndsCarrier) {
  if (::geteuid() != 0) GTEST_SKIP() << "host tier needs root (CAP_NET_ADMIN, mounts)";
  const std::string lab = test::unique_name("peer");
  const std::string file = ::testing::TempDir() + "/" + lab + ".toml";
  std::ofstream(file) << "version = 1\nname = \"" << lab
                      << "\"\n[nodes.a]\ninterfaces.eth0 = { peer = \"b:eth0\", addresses = [\"10.75.0.1/30\"] }\n"
                         "[nodes.b]\ninterfaces.eth0 = { peer = \"a:eth0\", addresses = [\"10.75.0.2/30\"] }\n"
                         "[checks.ping]\nkind = \"reach\"\nfrom = \"a\"\nto = \"b\"\n";
  struct Cleanup {
    std::string lab, file;
    ~Cleanup() {
      (void)run("down " + lab);
      std::filesystem::remove(file);
    }
  } cleanup{lab, file};
  auto [up, up_rc] = run("up " + shell_quote(file));
  ASSERT_EQ(up_rc, 0) << up;
  EXPECT_TRUE(carrier(link_in(lab + "-a", "eth0")));
  auto [cut, cut_rc] = run("link " + lab + " b:eth0 down");
  ASSERT_EQ(cut_rc, 0) << cut;
  EXPECT_FALSE(carrier(link_in(lab + "-a", "eth0")));
  EXPECT_FALSE(carrier(link_in(lab + "-b", "eth0")));
  EXPECT_THAT(run("status " + lab).first, HasSubstr("link b:eth0 cut"));
  EXPECT_NE(run("check " + lab).second, 0);
  auto [back, back_rc] = run("link " + lab + " b:eth0 up");
  ASSERT_EQ(back_rc, 0) << back;
  EXPECT_TRUE(carrier(link_in(lab + "-a", "eth0")));
  EXPECT_TRUE(carrier(link_in(lab + "-b", "eth0")));
  auto [again, again_rc] = check_until_passes(lab);
  EXPECT_EQ(again_rc, 0) << again;
}

}  // namespace
}  // namespace labctl
