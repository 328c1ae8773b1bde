// Labs across hosts (model/hosts.h, plan/part.h, lab/multihost.h, lab/remote.h): placement,
// the rules of [hosts], each host's part of the plan, the records and the ssh command line.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <thread>
#include <variant>

#include "labctl/base/file.h"
#include "labctl/kernel/process.h"
#include "labctl/lab/multihost.h"
#include "labctl/lab/remote.h"
#include "labctl/model/hosts.h"
#include "labctl/model/load.h"
#include "labctl/plan/explain.h"
#include "labctl/plan/graph.h"
#include "labctl/plan/part.h"
#include "labctl/plan/planner.h"
#include "tests/unit/diagnostics_text.h"

namespace labctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using test::diagnostics_text;

// c1 on h1, s1 on h2, both on switch lan (stretched); r on h1 alone behind switch back.
const char* kTwoHosts = R"(
version = 1
name = "mh"

[hosts.h1]
ssh = "root@h1"
underlay = "192.168.77.1"

[hosts.h2]
ssh = "h2"
underlay = "192.168.77.2"
labctl = "/opt/labctl/bin/labctl"

[switches.lan]
mtu = 1450

[switches.back]

[nodes.c1]
host = "h1"
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.1/24"] }

[nodes.r]
host = "h1"
interfaces.eth0 = { switch = "back", addresses = ["10.1.0.1/24"] }

[nodes.s1]
host = "h2"
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.2/24"] }
)";

Topology load_ok(const std::string& text) {
  auto r = parse_topology(text, "mh.toml");
  EXPECT_TRUE(r.ok()) << diagnostics_text(r);
  return r.ok() ? *r.topology : Topology{};
}

TEST(MultiHost, PlacementAndStretchedSegments) {
  Topology t = load_ok(kTwoHosts);
  ASSERT_TRUE(multi_host(t));
  EXPECT_EQ(local_host(t), "local");
  EXPECT_THAT(lab_hosts(t), ElementsAre("h1", "h2"));
  EXPECT_THAT(switch_hosts(t, *t.find_switch("lan")), ElementsAre("h1", "h2"));
  EXPECT_THAT(switch_hosts(t, *t.find_switch("back")), ElementsAre("h1"));
  auto segs = stretched_segments(t);
  ASSERT_EQ(segs.size(), 1u);
  EXPECT_EQ(segs[0].sw->name, "lan");
  EXPECT_GE(segs[0].vni, 4096u);
  EXPECT_LE(segs[0].vni, (1u << 24) - 1);
  // Every host derives the same VNI from the names alone.
  EXPECT_EQ(segs[0].vni, segment_vni(load_ok(kTwoHosts), *t.find_switch("lan")));
}

TEST(MultiHost, WithoutHostsNothingChanges) {
  Topology t = load_ok(R"(
version = 1
name = "one"
[switches.lan]
[nodes.a]
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.1/24"] }
)");
  EXPECT_FALSE(multi_host(t));
  Plan whole = make_plan(t);
  EXPECT_EQ(plan_part(t, whole, "anything").steps.size(), whole.steps.size());
  EXPECT_TRUE(stretched_segments(t).empty());
}

// Which steps go where: each node's steps on its host, the switch's copy on every host of
// it, each port with its node, one VXLAN device per stretched switch per host, up before
// its bridge.
TEST(MultiHost, EachHostGetsItsPartAndTheVxlan) {
  Topology t = load_ok(kTwoHosts);
  Plan whole = make_plan(t);
  Plan p1 = plan_part(t, whole, "h1"), p2 = plan_part(t, whole, "h2");
  auto netns = [](const Plan& p) {
    std::set<std::string> out;
    for (const auto& ps : p.steps)
      if (auto* c = std::get_if<step::CreateNetns>(&ps.step)) out.insert(c->ns);
    return out;
  };
  EXPECT_EQ(netns(p1), (std::set<std::string>{"mh-c1", "mh-r", "mh-lan", "mh-back"}));
  EXPECT_EQ(netns(p2), (std::set<std::string>{"mh-s1", "mh-lan"}));
  for (const auto& ps : p2.steps) {
    if (auto* m = std::get_if<step::SetMaster>(&ps.step)) {
      EXPECT_EQ(m->dev, "s1-eth0") << describe(ps.step);
    }
  }

  auto vxlan_of = [](const Plan& p) -> std::pair<const step::CreateVxlan*, size_t> {
    for (size_t i = 0; i < p.steps.size(); ++i)
      if (auto* v = std::get_if<step::CreateVxlan>(&p.steps[i].step)) return {v, i};
    return {nullptr, 0};
  };
  auto [v1, i1] = vxlan_of(p1);
  auto [v2, i2] = vxlan_of(p2);
  ASSERT_TRUE(v1 && v2);
  EXPECT_EQ(v1->ns, "mh-lan");
  EXPECT_EQ(v1->master, "lan");
  EXPECT_EQ(v1->vni, v2->vni);
  EXPECT_EQ(v1->local.str(), "192.168.77.1");
  ASSERT_EQ(v1->remotes.size(), 1u);
  EXPECT_EQ(v1->remotes[0].str(), "192.168.77.2");
  EXPECT_EQ(v2->remotes[0].str(), "192.168.77.1");
  EXPECT_EQ(v1->port, 4789);
  EXPECT_EQ(v1->mtu, 1450);
  // MACs planned once for all hosts: locally administered, the same from every plan, and
  // each VXLAN device its own.
  EXPECT_THAT(v1->mac, ::testing::MatchesRegex("02(:[0-9a-f]{2}){5}"));
  EXPECT_NE(v1->mac, v2->mac);
  auto macs = [](const Plan& p) {
    std::set<std::string> out;
    for (const auto& ps : p.steps)
      if (auto* v = std::get_if<step::CreateVeth>(&ps.step)) {
        out.insert(v->mac);
        out.insert(v->peer_mac);
      }
    return out;
  };
  EXPECT_EQ(macs(p1), macs(plan_part(t, make_plan(load_ok(kTwoHosts)), "h1")));
  EXPECT_EQ(macs(p1).size(), 4u);  // c1's and r's veths, both ends
  EXPECT_FALSE(macs(p1).contains(""));
  // Then the device comes up, then the bridge.
  auto* up = std::get_if<step::LinkUp>(&p1.steps[i1 + 1].step);
  ASSERT_TRUE(up);
  EXPECT_EQ(up->dev, "vxlan0");
  auto* bridge_up = std::get_if<step::LinkUp>(&p1.steps[i1 + 2].step);
  ASSERT_TRUE(bridge_up);
  EXPECT_EQ(bridge_up->dev, "lan");
  // Every step of the whole plan is carried out somewhere (the shared switch's on both).
  size_t in_both = 0;
  for (const auto& ps : whole.steps) in_both += ps.node == "lan" && describe(ps.step).find("eth0") == std::string::npos;
  EXPECT_EQ(p1.steps.size() + p2.steps.size(), whole.steps.size() + 4 + in_both);
}

std::string diags(const std::string& text) { return diagnostics_text(parse_topology(text, "mh.toml")); }

TEST(MultiHost, RulesOfHosts) {
  // A host no [hosts] names.
  EXPECT_THAT(diags(R"(
version = 1
name = "mh"
[hosts.h1]
ssh = "h1"
[nodes.a]
host = "h2"
interfaces.eth0 = { switch = "lan" }
[switches.lan]
)"),
              HasSubstr("mh.toml:7:8: error: node a is placed on host h2, which [hosts] does not name"));
  // host without [hosts].
  EXPECT_THAT(diags(R"(
version = 1
name = "mh"
[nodes.a]
host = "h2"
interfaces.eth0 = { switch = "lan" }
[switches.lan]
)"),
              HasSubstr("node a is placed on host h2, but the topology has no [hosts]"));
  // A veth cannot leave its machine.
  EXPECT_THAT(diags(R"(
version = 1
name = "mh"
[hosts.h1]
ssh = "h1"
underlay = "192.168.77.1"
[hosts.h2]
ssh = "h2"
underlay = "192.168.77.2"
[nodes.a]
host = "h1"
interfaces.eth0 = { peer = "b:eth0", addresses = ["10.0.0.1/30"] }
[nodes.b]
host = "h2"
interfaces.eth0 = { peer = "a:eth0", addresses = ["10.0.0.2/30"] }
)"),
              HasSubstr("joins host h1 to host h2: a veth pair cannot leave its machine"));
  // A stretched switch needs every host's underlay; the implicit local host has none.
  const std::string no_underlay = diags(R"(
version = 1
name = "mh"
[hosts.h2]
ssh = "h2"
[switches.lan]
[nodes.a]
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.1/24"] }
[nodes.b]
host = "h2"
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.2/24"] }
)");
  EXPECT_THAT(no_underlay, HasSubstr("switch lan spans hosts h2, local: host h2 needs an 'underlay' address"));
  EXPECT_THAT(no_underlay, HasSubstr("host local needs an 'underlay' address"));
  // Two machines that say they are this one; a destination ssh would read as an option.
  const std::string two_local = diags(R"(
version = 1
name = "mh"
[hosts.a]
[hosts.b]
[hosts.c]
ssh = "-oProxyCommand=touch /tmp/x"
[nodes.n]
interfaces.eth0 = { switch = "lan" }
[switches.lan]
)");
  EXPECT_THAT(two_local, HasSubstr("hosts a and b both have no 'ssh'"));
  EXPECT_THAT(two_local, HasSubstr("begins with '-' (ssh would read it as an option)"));
  EXPECT_THAT(diags(R"(
version = 1
name = "mh"
[hosts.a]
labctl = "bin/labctl"
[nodes.n]
interfaces.eth0 = { switch = "lan" }
[switches.lan]
)"),
              HasSubstr("is a relative path"));
}

TEST(MultiHost, WarnsWhenAFrameDoesNotFitTheUnderlay) {
  std::string text = kTwoHosts;
  text.replace(text.find("mtu = 1450"), 10, "mtu = 1500");
  auto r = parse_topology(text, "mh.toml");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_THAT(diagnostics_text(r),
              HasSubstr("warning: switch lan spans hosts h1, h2 over VXLAN: a 1500-byte frame becomes a 1550-byte "
                        "packet on an underlay of MTU 1500"));
  EXPECT_THAT(diagnostics_text(r), HasSubstr("set mtu = 1450 on the switch"));
  EXPECT_THAT(diagnostics_text(parse_topology(kTwoHosts, "mh.toml")), Not(HasSubstr("warning")));
}

// place = "auto": veth-joined nodes together, at most ceil(nodes / hosts) a host, the
// fewest switches stretched; the same answer every time.
std::string two_hosts_auto(const std::string& nodes) {
  return R"(
version = 1
name = "pa"
place = "auto"
[hosts.h1]
ssh = "h1"
underlay = "192.168.77.1"
[hosts.h2]
ssh = "h2"
underlay = "192.168.77.2"
[switches.front]
mtu = 1450
[switches.back]
mtu = 1450
)" + nodes;
}

// place = "auto": at most ceil(nodes / hosts) a host, the fewest switches stretched, nodes
// joined by a veth together; the same answer every time.
TEST(MultiHost, AutoPlacementSpreadsWithFewestStretchedSwitches) {
  const std::string text = two_hosts_auto(R"(
[nodes.c1]
interfaces.eth0 = { switch = "front", addresses = ["10.0.0.1/24"] }
[nodes.c2]
interfaces.eth0 = { switch = "front", addresses = ["10.0.0.2/24"] }
[nodes.c3]
interfaces.eth0 = { switch = "front", addresses = ["10.0.0.3/24"] }
[nodes.r]
interfaces.eth0 = { switch = "front", addresses = ["10.0.0.254/24"] }
interfaces.eth1 = { switch = "back", addresses = ["10.1.0.254/24"] }
[nodes.s1]
interfaces.eth0 = { switch = "back", addresses = ["10.1.0.1/24"] }
[nodes.s2]
interfaces.eth0 = { switch = "back", addresses = ["10.1.0.2/24"] }
[nodes.s3]
interfaces.eth0 = { switch = "back", addresses = ["10.1.0.3/24"] }
)");
  Topology t = load_ok(text);
  std::map<std::string, std::string> where;
  std::map<std::string, int> load;
  for (const auto& n : t.nodes) {
    where[n.name] = n.host;
    ++load[n.host];
  }
  EXPECT_EQ(load["h1"], 4);
  EXPECT_EQ(load["h2"], 3);
  EXPECT_EQ(where["c1"], where["c2"]);
  EXPECT_EQ(where["c1"], where["r"]);
  EXPECT_EQ(where["s1"], where["s2"]);
  ASSERT_EQ(stretched_segments(t).size(), 1u) << "one switch stretched, not both";
  EXPECT_EQ(stretched_segments(t)[0].sw->name, "back");
  // Deterministic: another load places alike.
  for (const auto& n : load_ok(text).nodes) EXPECT_EQ(n.host, where[n.name]) << n.name;

  // Nodes joined by a veth stay together.
  Topology peers = load_ok(two_hosts_auto(R"(
[nodes.a]
interfaces.eth0 = { switch = "front", addresses = ["10.0.0.1/24"] }
[nodes.r]
interfaces.eth0 = { switch = "front", addresses = ["10.0.0.254/24"] }
interfaces.eth1 = { peer = "fw:eth0", addresses = ["10.9.0.1/30"] }
[nodes.fw]
interfaces.eth0 = { peer = "r:eth1", addresses = ["10.9.0.2/30"] }
[nodes.b]
interfaces.eth0 = { switch = "back", addresses = ["10.1.0.1/24"] }
)"));
  EXPECT_EQ(peers.node("r")->host, peers.node("fw")->host);
  EXPECT_FALSE(peers.node("a")->host.empty());

  // Without [hosts] it is an error; so is a placement labctl does not know.
  EXPECT_THAT(diags("version = 1\nname = \"x\"\nplace = \"auto\"\n[nodes.a]\n"),
              HasSubstr("mh.toml:3:9: error: place = \"auto\" spreads nodes over the hosts, but the topology has no [hosts]"));
  EXPECT_THAT(diags("version = 1\nname = \"x\"\nplace = \"random\"\n[nodes.a]\n"),
              HasSubstr("mh.toml:3:9: error: place 'random' is not a placement labctl knows"));
}

// graph: a box per host around its nodes (and the switches it alone has); a stretched
// switch between the boxes, with its VNI and hosts.
TEST(MultiHost, GraphDrawsABoxPerHost) {
  Topology t = load_ok(kTwoHosts);
  const std::string dot = render_dot(t);
  EXPECT_THAT(dot, HasSubstr("subgraph \"cluster_host:h1\" {\n    label=\"host h1 (ssh root@h1)\";"));
  EXPECT_THAT(dot, HasSubstr("subgraph \"cluster_host:h2\""));
  const std::string vni = std::to_string(segment_vni(t, *t.find_switch("lan")));
  EXPECT_THAT(dot, HasSubstr("label=\"switch lan\\nVXLAN " + vni + ": h1, h2\"]"));
  // back is h1's alone: inside h1's box.
  auto h1 = dot.find("cluster_host:h1"), h2 = dot.find("cluster_host:h2"), back = dot.find("\"switch:back\" [");
  EXPECT_TRUE(h1 < back && back < h2) << dot;
  const std::string mermaid = render_mermaid(t);
  EXPECT_THAT(mermaid, HasSubstr("  subgraph h_h2[\"host h2 (ssh h2)\"]\n    n_s1["));
  EXPECT_THAT(mermaid, HasSubstr("s_lan((\"switch lan<br/>VXLAN " + vni + ": h1, h2\"))"));
}

// explain tells why a stretched switch is one segment, with each host's VXLAN command.
TEST(MultiHost, ExplainShowsEachHostsVxlanDevice) {
  Topology t = load_ok(kTwoHosts);
  const std::string text = render_explain(t, make_plan(t));
  EXPECT_THAT(text, HasSubstr("Its members run on hosts h1, h2: each host has a copy of this bridge"));
  EXPECT_THAT(text, HasSubstr("on h1: ip link add name vxlan0"));
  EXPECT_THAT(text, HasSubstr("on h2: ip link add name vxlan0"));
  EXPECT_THAT(text, HasSubstr("local 192.168.77.2 dstport 4789"));
  // back is on h1 alone: no VXLAN paragraph of its own.
  const auto back = text.find("switch back  [");
  ASSERT_NE(back, std::string::npos);
  EXPECT_EQ(text.find("Its members run on hosts", back), std::string::npos);
}

// `up --dry-run --place auto FILE`: the flag places the unplaced nodes as the file's key would,
// and each host's part is printed as its own script (no root, nothing made).
TEST(MultiHost, DryRunPrintsEachHostsPartAndPlaceAutoPlaces) {
  const std::string bin = std::string(LABCTL_BINARY_DIR) + "/labctl/labctl";
  if (!std::filesystem::exists(bin)) GTEST_SKIP() << "labctl binary not built";
  std::string text = kTwoHosts;
  const std::string placed_r = "[nodes.r]\nhost = \"h1\"\n";
  text.replace(text.find(placed_r), placed_r.size(), "[nodes.r]\n");  // r unplaced
  char dir[] = "/tmp/labctl-mh-XXXXXX";
  ASSERT_TRUE(::mkdtemp(dir));
  const std::string file = std::string(dir) + "/mh.toml";
  ASSERT_TRUE(write_text(file, text));
  auto run = [&](const std::vector<std::string>& args) {
    std::vector<std::string> argv = {bin};
    argv.insert(argv.end(), args.begin(), args.end());
    auto c = run_captured(argv, std::chrono::steady_clock::now() + std::chrono::seconds(30));
    EXPECT_TRUE(c) << c.error().str();
    return c ? *c : Captured{};
  };
  // Without --place, r runs on the local host, which has no part of a stretched switch here.
  auto plain = run({"up", "--dry-run", file});
  EXPECT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_THAT(plain.out, HasSubstr("# ---- host local (this machine) ----"));
  auto placed = run({"up", "--dry-run", "--place", "auto", file});
  EXPECT_EQ(placed.exit_code, 0) << placed.err;
  EXPECT_THAT(placed.out, Not(HasSubstr("host local")));
  const auto h1 = placed.out.find("# ---- host h1 (ssh root@h1) ----");
  const auto h2 = placed.out.find("# ---- host h2 (ssh h2) ----");
  ASSERT_NE(h1, std::string::npos) << placed.out;
  ASSERT_NE(h2, std::string::npos) << placed.out;
  // r went somewhere, with its own namespace in that host's script only.
  const auto r_at = placed.out.find("ip netns add mh-r;");
  ASSERT_NE(r_at, std::string::npos);
  EXPECT_EQ(placed.out.find("ip netns add mh-r;", r_at + 1), std::string::npos);
  EXPECT_THAT(placed.out, HasSubstr("type vxlan id "));
  std::filesystem::remove_all(dir);
}

TEST(MultiHost, RecordsRoundTrip) {
  Topology t = load_ok(kTwoHosts);
  HostsRecord r = hosts_record(t, "h2");
  EXPECT_EQ(r.self, "h2");
  EXPECT_FALSE(r.local_part);
  ASSERT_EQ(r.remotes.size(), 2u);
  EXPECT_EQ(r.remotes[1].labctl, "/opt/labctl/bin/labctl");
  auto back = hosts_record_from_json(to_json(r));
  ASSERT_TRUE(back) << back.error().str();
  EXPECT_EQ(back->lab, "mh");
  EXPECT_EQ(back->self, "h2");
  EXPECT_EQ(back->remotes[0].destination, "root@h1");
  EXPECT_FALSE(hosts_record_from_json(R"({"lab": "../x"})"));
  EXPECT_FALSE(hosts_record_from_json(R"({"lab": "mh", "remotes": [{"name": "h", "ssh": "-oX"}]})"));
}

// The remote shell gets one string: every word quoted, so no name is shell syntax there.
TEST(MultiHost, SshCommandQuotesEveryWord) {
  RemoteHost h{"h2", "root@h2", "/opt/x y/labctl"};
  auto argv = ssh_command(h, "/tmp/c/control", {h.labctl, "down", "--here", "lab;rm -rf /"});
  ASSERT_GE(argv.size(), 4u);
  EXPECT_EQ(argv[argv.size() - 3], "--");
  EXPECT_EQ(argv[argv.size() - 2], "root@h2");
  EXPECT_EQ(argv.back(), "'/opt/x y/labctl' down --here 'lab;rm -rf /'");
  EXPECT_THAT(argv, ::testing::Contains("ControlPath=/tmp/c/control"));
  EXPECT_THAT(argv, ::testing::Contains("BatchMode=yes"));
}


// A trace holds another host's stdin open (over ssh) until its own capture is done: the
// child sees end-of-file only then, and not before.
TEST(MultiHost, RunCapturedHoldsStdinOpenUntilEndInput) {
  std::atomic<bool> end{false};
  CaptureIo io;
  io.end_input = &end;
  const auto t0 = std::chrono::steady_clock::now();
  std::thread closer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    end = true;
  });
  auto c = run_captured({"/bin/sh", "-c", "cat; echo eof"}, t0 + std::chrono::seconds(20), nullptr,
                        std::chrono::seconds(1), io);
  closer.join();
  ASSERT_TRUE(c) << c.error().str();
  EXPECT_EQ(c->exit_code, 0);
  EXPECT_EQ(c->out, "eof\n");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(300));
  CaptureIo both = io;
  both.input = "x";
  EXPECT_FALSE(run_captured({"/bin/cat"}, t0 + std::chrono::seconds(20), nullptr, std::chrono::seconds(1), both));
}

}  // namespace
}  // namespace labctl
