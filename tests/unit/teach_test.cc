// Unit tier: what labctl teaches is right (issue 26, "what a read found wrong"): roles, the
// whys of explain, the exercise node list and hints, validation messages, and the docs that
// go with them.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "labctl/base/file.h"
#include "labctl/model/builtins.h"
#include "labctl/model/check_spec.h"
#include "labctl/model/load.h"
#include "labctl/plan/exercise.h"
#include "labctl/plan/explain.h"
#include "labctl/plan/graph.h"
#include "labctl/plan/planner.h"
#include "labctl/plan/roles.h"
#include "labctl/plan/why.h"
#include "tests/unit/diagnostics_text.h"

namespace labctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

Topology load(const std::string& name) {
  auto r = load_topology(name);
  EXPECT_TRUE(r.ok()) << name;
  return r.ok() ? *r.topology : Topology{};
}

std::string why_of(const Plan& p, const std::string& description) {
  for (const auto& s : p.steps)
    if (describe(s.step) == description) return s.why;
  ADD_FAILURE() << "no step: " << description;
  return "";
}

using test::diagnostics_text;

std::string doc(const std::string& name) {
  auto d = read_regular_file(std::string(LABCTL_SOURCE_DIR) + "/docs/" + name, 1 << 20);
  EXPECT_TRUE(d) << name;
  return d ? *d : "";
}

// ---- roles: a keepalived BACKUP director is a director, not a client ----

// A lab without IPVS services has hosts, not clients of a VIP nobody offers.
TEST(TeachRoles, InALabWithoutServicesAPlainNodeIsAHost) {
  Topology t = load("net-basics");
  Roles r(t);
  EXPECT_FALSE(r.lab_has_services());
  EXPECT_EQ(r.role_name(*t.node("host2")), "host");
  std::string e = render_explain(t, make_plan(t));
  EXPECT_THAT(e, HasSubstr("host2: host  [namespace"));
  EXPECT_THAT(e, Not(HasSubstr("VIPs"))) << e;
  EXPECT_TRUE(Roles(load("dr-demo")).lab_has_services());
}

TEST(TeachRoles, HaDemoBackupDirectorIsADirectorInExplainGraphAndExercise) {
  Topology t = load("ha-demo");
  Roles r(t);
  EXPECT_EQ(r.role_name(*t.node("dir1")), "director (DR), keepalived MASTER");
  EXPECT_EQ(r.role_name(*t.node("dir2")), "director (DR), keepalived BACKUP");
  EXPECT_EQ(r.role_name(*t.node("client")), "client");
  EXPECT_TRUE(r.directs(*t.node("dir2")));
  EXPECT_FALSE(r.is_router(*t.node("dir2")));

  std::string e = render_explain(t, make_plan(t));
  auto dir2 = e.find("dir2: director (DR), keepalived BACKUP");
  ASSERT_NE(dir2, std::string::npos) << e;
  std::string section = e.substr(dir2, e.find("\nrs1:") - dir2);
  EXPECT_THAT(section, HasSubstr("BACKUP director of a keepalived (VRRP) pair"));
  EXPECT_THAT(section, HasSubstr("web (10.10.0.100:80)"));
  EXPECT_THAT(section, Not(HasSubstr("like any host outside")));

  std::string dot = render_dot(t);
  EXPECT_THAT(dot, HasSubstr("dir2\\ndirector (DR), keepalived BACKUP"));
  // Directors share one fill colour.
  std::smatch m1, m2;
  ASSERT_TRUE(std::regex_search(dot, m1, std::regex("\"node:dir1\" \\[[^\\]]*fillcolor=\"(#[0-9a-f]+)\"")));
  ASSERT_TRUE(std::regex_search(dot, m2, std::regex("\"node:dir2\" \\[[^\\]]*fillcolor=\"(#[0-9a-f]+)\"")));
  EXPECT_EQ(m1[1], m2[1]);

  Topology ex = load("ha-demo-splitbrain");
  EXPECT_THAT(render_exercise(ex), HasSubstr("dir2       director (DR), keepalived BACKUP"));
}

// ---- the whys ----

TEST(TeachWhy, TunRealServerRpFilterWhyBelongsToAllAndTunl0NotTheUnderlay) {
  Topology t = load("tun-demo");
  Plan p = make_plan(t);
  EXPECT_THAT(why_of(p, "set net.ipv4.conf.all.rp_filter=0 in tun-demo-rs1"),
              HasSubstr("max of conf.all and conf.tunl0") );
  // tun-demo no longer sets what the kernel does not use for the tunnel.
  for (const auto& n : t.nodes)
    for (const auto& s : n.sysctls) EXPECT_NE(s.key, "net.ipv4.conf.eth0.rp_filter") << n.name;
  // A lab that does set it on eth0 is told it is not needed for the tunnel.
  std::string text(find_builtin("tun-demo")->text);
  text.replace(text.find("net.ipv4.conf.tunl0.rp_filter = 0"), 0, "net.ipv4.conf.eth0.rp_filter = 0\n");
  auto r = parse_topology(text, "tun-eth0.toml");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  std::string eth0 = why_of(make_plan(*r.topology), "set net.ipv4.conf.eth0.rp_filter=0 in tun-demo-rs1");
  EXPECT_THAT(eth0, HasSubstr("not needed for the tunnel"));
  EXPECT_THAT(eth0, Not(HasSubstr("turn it off on eth0")));
}

TEST(TeachWhy, SchedulerTextsAgreeWithTheSchedulersPage) {
  EXPECT_THAT(why::scheduler("ovf"), HasSubstr("until its active connections exceed its weight"));
  EXPECT_THAT(doc("schedulers.md"), HasSubstr("until its active connections exceed its weight"));
  EXPECT_THAT(why::scheduler("ovf"), Not(HasSubstr("connection limit")));
  EXPECT_THAT(why::scheduler("lblc"), HasSubstr("one destination address keeps its real server"));
  EXPECT_THAT(why::scheduler("lblcr"), HasSubstr("set of real servers"));
}

TEST(TeachWhy, DrKeepsAddressesButNotTheTtlAndNatNamesItsCost) {
  Topology dr = load("dr-demo");
  std::string d = why_of(make_plan(dr), "add real server 10.10.0.11 (dr) to tcp 10.10.0.100:80 in dr-demo-director");
  EXPECT_THAT(d, HasSubstr("only the TTL drops by one"));
  EXPECT_THAT(d, Not(HasSubstr("as it is")));
  Topology nat = load("nat-demo");
  std::string n = why_of(make_plan(nat), "add real server 10.20.0.11 (nat) to tcp 192.168.10.100:80 in nat-demo-director");
  EXPECT_THAT(n, HasSubstr("every reply crosses the director"));
  EXPECT_THAT(n, HasSubstr("bottleneck"));
}

TEST(TeachWhy, AddressStepsTeachTheNetworkNumber) {
  Topology t = load("nat-demo");
  Plan p = make_plan(t);
  EXPECT_THAT(why_of(p, "add address 10.20.0.11/24 to eth0 in nat-demo-rs1"),
              HasSubstr("mask 255.255.255.0 AND address 10.20.0.11 = network number 10.20.0.0"));
  EXPECT_THAT(why_of(p, "add address 192.168.10.10/24 to eth0 in nat-demo-client"),
              HasSubstr("gateway 0.0.0.0 in `route -n`"));
  // The director's inner address keeps its role and gets the lesson too.
  std::string gw = why_of(p, "add address 10.20.0.1/24 to eth1 in nat-demo-director");
  EXPECT_THAT(gw, HasSubstr("their default gateway"));
  EXPECT_THAT(gw, HasSubstr("network number 10.20.0.0"));
  // A host address adds no network; the function is usable on its own.
  EXPECT_EQ(why::network_number(*IpPrefix::parse("10.0.0.1/32"), "lo"), "");
  EXPECT_THAT(why::network_number(*IpPrefix::parse("192.168.150.14/24"), "eth0"),
              HasSubstr("mask 255.255.255.0 AND address 192.168.150.14 = network number 192.168.150.0"));
  EXPECT_THAT(why::network_number(*IpPrefix::parse("10.1.2.3/20"), "eth0"),
              HasSubstr("mask 255.255.240.0 AND address 10.1.2.3 = network number 10.1.0.0"));
}

// ---- exercises: the node list, hints, leaving exercise mode ----

TEST(TeachExercise, NodeListShowsLoAndTunl0Addresses) {
  EXPECT_THAT(render_exercise(load("dr-demo-noarp")), HasSubstr("eth0 10.10.0.11/24, lo 10.10.0.100/32"));
  EXPECT_THAT(render_exercise(load("tun-demo-rpfilter")), HasSubstr("eth0 10.30.2.11/24, tunl0 10.30.1.100/32"));
}

TEST(TeachExercise, HintsKeyIsReadAndValidated) {
  std::string text(find_builtin("dr-demo-noarp")->text);
  EXPECT_TRUE(load("dr-demo-noarp").exercise->hints);
  std::string off = text;
  off.replace(off.find("[exercise]\n"), 11, "[exercise]\nhints = false\n");
  auto r = parse_topology(off, "off.toml");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_FALSE(r.topology->exercise->hints);
  std::string bad = text;
  bad.replace(bad.find("[exercise]\n"), 11, "[exercise]\nhints = \"no\"\n");
  auto b = parse_topology(bad, "bad.toml");
  EXPECT_FALSE(b.ok());
  EXPECT_THAT(diagnostics_text(b), HasSubstr("hints"));
}

TEST(TeachExercise, ARepairedExerciseSaysHowToLeaveExerciseMode) {
  Topology ex = load("dr-demo-noarp");
  EXPECT_EQ(exercise_repaired(ex, false), "");
  EXPECT_THAT(exercise_repaired(ex, true), HasSubstr("the exercise is repaired"));
  EXPECT_THAT(exercise_repaired(ex, true), HasSubstr("delete that table"));
  EXPECT_EQ(exercise_repaired(load("dr-demo"), true), "");
  EXPECT_THAT(exercise_banner(ex), HasSubstr("without its [exercise] table"));
  std::string page = doc("exercises.md");
  EXPECT_THAT(page, HasSubstr("hints = false"));
  EXPECT_THAT(page, HasSubstr("Leaving exercise mode"));
}

TEST(TeachExercise, SchedDemoNopersistIsAnExerciseWhoseExplainKeepsTheSecret) {
  Topology t = load("sched-demo-nopersist");
  ASSERT_TRUE(t.exercise);
  std::string text = render_exercise(t);
  EXPECT_THAT(text, HasSubstr("carts-stay"));
  EXPECT_THAT(text, Not(HasSubstr("persisten")));
  EXPECT_THAT(exercise_json(t).dump(), Not(HasSubstr("persisten")));
  // The repaired service: persistence on top of rr.
  std::string fixed(find_builtin("sched-demo-nopersist")->text);
  fixed.replace(fixed.find("scheduler = \"rr\"\n"), 17, "scheduler = \"rr\"\npersistence = 300\n");
  auto r = parse_topology(fixed, "fixed.toml");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_EQ(r.topology->service("shop").service->persistence, 300u);
  EXPECT_THAT(doc("exercises.md"), HasSubstr("`sched-demo-nopersist`"));
}

// ---- validation messages ----

TEST(TeachValidate, NatDemoNogwPointsAtTheRealServersRoute) {
  std::string text(find_builtin("nat-demo-nogw")->text);
  auto r = parse_topology(text, "nogw.toml");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  // The line of rs1's (and rs2's) route, not the director's real_servers line.
  int rs1_route = 0, rs2_route = 0, line = 0, real_servers = 0;
  std::string node;
  for (std::size_t at = 0; at < text.size();) {
    std::size_t end = text.find('\n', at);
    std::string l = text.substr(at, end - at);
    ++line;
    if (l.rfind("[nodes.", 0) == 0) node = l;
    if (l.rfind("routes = ", 0) == 0 && node == "[nodes.rs1]") rs1_route = line;
    if (l.rfind("routes = ", 0) == 0 && node == "[nodes.rs2]") rs2_route = line;
    if (l.rfind("real_servers = ", 0) == 0) real_servers = line;
    at = end == std::string::npos ? text.size() : end + 1;
  }
  ASSERT_GT(rs1_route, 0);
  std::string d = diagnostics_text(r);
  EXPECT_THAT(d, HasSubstr(":" + std::to_string(rs1_route) + ":")) << d;
  EXPECT_THAT(d, HasSubstr(":" + std::to_string(rs2_route) + ":")) << d;
  EXPECT_THAT(d, HasSubstr("NAT real server rs1")) << d;
  EXPECT_THAT(d, Not(HasSubstr("nogw.toml:" + std::to_string(real_servers) + ":"))) << d;
}

TEST(TeachValidate, MethodsAreSpelledInCapitalsInEveryMessage) {
  std::string text(find_builtin("dr-demo")->text);
  // Without the ARP sysctls and the VIP on lo: the DR real server warnings.
  std::string bare = std::regex_replace(text, std::regex("net\\.ipv4\\.conf\\.[a-z0-9]+\\.arp_[a-z]+ = [0-9]\n"), "");
  bare = std::regex_replace(bare, std::regex("lo = \\[\"10\\.10\\.0\\.100/32\"\\]\n"), "");
  auto r = parse_topology(bare, "bare.toml");
  std::string d = diagnostics_text(r);
  EXPECT_THAT(d, HasSubstr("DR real server rs1")) << d;
  EXPECT_THAT(d, Not(HasSubstr("dr real server"))) << d;
  EXPECT_THAT(d, Not(HasSubstr("tun real server"))) << d;
}

TEST(TeachValidate, OneNetworkNatDirectorIsWarnedAboutIcmpRedirects) {
  const std::string lab = R"(version = 1
name = "onenet"
[switches.lan]
[nodes.client]
interfaces.eth0 = { switch = "lan", addresses = ["10.60.0.10/24"] }
[nodes.director]
interfaces.eth0 = { switch = "lan", addresses = ["10.60.0.2/24", "10.60.0.100/32"] }
sysctl."net.ipv4.ip_forward" = 1
[nodes.director.services.web]
vip = "10.60.0.100"
port = 80
method = "nat"
real_servers = [{ node = "rs1" }]
[nodes.rs1]
interfaces.eth0 = { switch = "lan", addresses = ["10.60.0.11/24"] }
routes = [{ to = "default", via = "10.60.0.2" }]
agents.web = { kind = "http", port = 80 }
)";
  auto r = parse_topology(lab, "onenet.toml");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_THAT(diagnostics_text(r), HasSubstr("warning: NAT director director has its clients and real servers on one network (eth0)"));
  EXPECT_THAT(diagnostics_text(r), HasSubstr("ICMP redirect"));
  EXPECT_THAT(diagnostics_text(r), HasSubstr("net.ipv4.conf.all.send_redirects = 0"));
  // Both off: no warning. One alone is not enough (the kernel ORs them).
  std::string fixed = lab;
  fixed.replace(fixed.find("sysctl.\"net.ipv4.ip_forward\" = 1\n"), 33,
                "sysctl.\"net.ipv4.ip_forward\" = 1\nsysctl.\"net.ipv4.conf.all.send_redirects\" = 0\n"
                "sysctl.\"net.ipv4.conf.eth0.send_redirects\" = 0\n");
  auto f = parse_topology(fixed, "fixed.toml");
  ASSERT_TRUE(f.ok()) << diagnostics_text(f);
  EXPECT_THAT(diagnostics_text(f), Not(HasSubstr("ICMP redirect")));
  std::string half = lab;
  half.replace(half.find("sysctl.\"net.ipv4.ip_forward\" = 1\n"), 33,
               "sysctl.\"net.ipv4.ip_forward\" = 1\nsysctl.\"net.ipv4.conf.all.send_redirects\" = 0\n");
  EXPECT_THAT(diagnostics_text(parse_topology(half, "half.toml")), HasSubstr("ICMP redirect"));
  // nat-demo's director has two networks: nothing to warn.
  EXPECT_THAT(diagnostics_text(load_topology("nat-demo")), Not(HasSubstr("ICMP redirect")));
}

// ---- HTTP by hand ----

TEST(TeachExplain, DrDemoGivesTheDevTcpRecipe) {
  Topology t = load("dr-demo");
  std::string e = render_explain(t, make_plan(t));
  EXPECT_THAT(e, HasSubstr("labctl exec dr-demo client -- bash -c 'exec 8<>/dev/tcp/10.10.0.100/80; "
                           "ls -l /proc/$$/fd; printf \"GET / HTTP/1.0\\r\\n\\r\\n\" >&8; cat <&8'"));
  EXPECT_THAT(doc("course-commands.md"), HasSubstr("exec 8<>/dev/tcp/10.10.0.100/80"));
}

// ---- docs ----

TEST(TeachDocs, DemosPageCountsTheLabsItLists) {
  std::string page = doc("demos.md");
  std::string intro = page.substr(0, page.find("\n\n", page.find("labctl ships")));
  const std::vector<std::string> words = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"};
  std::smatch m;
  ASSERT_TRUE(std::regex_search(intro, m, std::regex("ships ([a-z]+) LVS labs"))) << intro;
  std::size_t demos = 0;
  for (const auto& b : builtin_topologies()) {
    std::string name(b.name);
    // The LVS labs: the -demo ones and three-tier (LVS in front of nginx).
    if (name != "three-tier" && (name.size() < 5 || name.substr(name.size() - 5) != "-demo")) continue;
    ++demos;
    EXPECT_THAT(intro, HasSubstr("**" + name + "**"));
  }
  ASSERT_LT(demos, words.size());
  EXPECT_EQ(m[1].str(), words[demos]);
}

TEST(TeachDocs, ChecksKindsTableHasNoBlankLineInside) {
  std::string page = doc("checks.md");
  auto head = page.find("| kind | passes when | how it decides |");
  ASSERT_NE(head, std::string::npos);
  auto end = page.find("\n\n", head);
  std::string table = page.substr(head, end - head);
  for (const auto& spec : topo::check_kinds())
    EXPECT_THAT(table, HasSubstr("| `" + spec.name + "` |")) << "the row of " << spec.name
                                                              << " must be inside the Kinds table";
}

TEST(TeachDocs, CourseCommandsPageMapsTheCoursesCommands) {
  std::string page = doc("course-commands.md");
  for (const char* c : {"route -n", "arp -a", "netstat -natp", "ip netns exec", "ipvsadm -ln", "labctl exec",
                        "labctl ipvs"})
    EXPECT_THAT(page, HasSubstr(c));
  EXPECT_THAT(doc("../README.md"), HasSubstr("docs/course-commands.md"));
}

}  // namespace
}  // namespace labctl
