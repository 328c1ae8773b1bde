// Issue 14's schema and validator items, each on a fixture: scope host on lo with
// arp_ignore = 3, IPv6 TUN (ip6tnl0), one subnet on separate segments, a loopback real
// server, conf.default ARP sysctls, and the messages and hints that used to mislead.
// Bad fixtures live in tests/data/bad (topology_bad_test), warned ones in tests/data/warn
// (topology_warn_test); here the good ones and what the planner makes of them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

#include "labctl/model/load.h"
#include "labctl/plan/planner.h"

namespace labctl {
namespace {

using ::testing::HasSubstr;

std::string dump(const LoadResult& r) {
  std::string s;
  for (const auto& d : r.diagnostics) s += format_diagnostic(d) + "\n";
  return s;
}

LoadResult fixture(const std::string& name) {
  return load_topology(std::string(LABCTL_TEST_DATA) + "/" + name);
}

std::string text_of(const std::string& name) {
  std::ifstream in(std::string(LABCTL_TEST_DATA) + "/" + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  auto at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

std::vector<Diagnostic> of(const LoadResult& r, Diagnostic::Severity sev) {
  std::vector<Diagnostic> out;
  for (const auto& d : r.diagnostics)
    if (d.severity == sev) out.push_back(d);
  return out;
}

std::vector<std::string> commands(const Plan& p) {
  std::vector<std::string> out;
  for (const auto& s : p.steps) out.push_back(shell_command(s.step));
  return out;
}

bool has_command(const Plan& p, const std::string& want) {
  for (const auto& c : commands(p))
    if (c.find(want) != std::string::npos) return true;
  return false;
}

TEST(LoScopeHost, LoadsCleanAndIsAddedWithScopeHost) {
  LoadResult r = fixture("lo-scope-host.toml");
  ASSERT_TRUE(r.topology) << dump(r);
  EXPECT_TRUE(r.diagnostics.empty()) << dump(r);
  const Node* rs1 = r.topology->node("rs1");
  ASSERT_NE(rs1, nullptr);
  ASSERT_EQ(rs1->lo_addresses.size(), 1u);
  EXPECT_EQ(rs1->lo_addresses[0].str(), "10.40.0.100/32");
  EXPECT_TRUE(rs1->scope_host(*IpAddr::parse("10.40.0.100")));
  Plan p = make_plan(*r.topology);
  bool found = false;
  for (const auto& s : p.steps)
    if (const auto* a = std::get_if<step::AddAddress>(&s.step); a && a->dev == "lo") {
      EXPECT_EQ(a->scope, RT_SCOPE_HOST);
      found = true;
    } else if (a) {
      EXPECT_EQ(a->scope, RT_SCOPE_UNIVERSE) << a->dev << " in " << a->ns;
    }
  EXPECT_TRUE(found);
  EXPECT_TRUE(has_command(p, "ip -n scopehost-rs1 addr add 10.40.0.100/32 dev lo scope host"))
      << ::testing::PrintToString(commands(p));
}

TEST(LoScopeHost, StringsAndTablesMixInOneList) {
  std::string text = replace(
      text_of("lo-scope-host.toml"), R"(lo = [{ address = "10.40.0.100/32", scope = "host" }])",
      R"(lo = ["10.40.7.1/32", { address = "10.40.0.100/32", scope = "host" }, { address = "10.40.7.2/32", scope = "global" }])");
  LoadResult r = parse_topology(text, "mixed.toml");
  ASSERT_TRUE(r.topology) << dump(r);
  const Node* rs1 = r.topology->node("rs1");
  ASSERT_EQ(rs1->lo_addresses.size(), 3u);
  EXPECT_FALSE(rs1->scope_host(*IpAddr::parse("10.40.7.1")));
  EXPECT_TRUE(rs1->scope_host(*IpAddr::parse("10.40.0.100")));
  EXPECT_FALSE(rs1->scope_host(*IpAddr::parse("10.40.7.2")));
}

TEST(LoScopeHost, AnUnknownScopeOrKeyIsAnErrorAtItsPlace) {
  std::string text =
      replace(text_of("lo-scope-host.toml"), R"(scope = "host" }])", R"(scope = "link" }])");
  LoadResult r = parse_topology(text, "scope.toml");
  auto errors = of(r, Diagnostic::Severity::Error);
  ASSERT_EQ(errors.size(), 1u) << dump(r);
  EXPECT_THAT(
      errors[0].message,
      HasSubstr("scope 'link' in an address on lo of node rs1 is not \"host\" or \"global\""));
  EXPECT_EQ(errors[0].line, 24);  // rs1's lo, at the scope's value
  EXPECT_EQ(errors[0].col, 45);
  text = replace(text_of("lo-scope-host.toml"), R"(scope = "host" }])", R"(scop = "host" }])");
  r = parse_topology(text, "scope.toml");
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(dump(r), HasSubstr("scop"));
}

// The kernel's arp_ignore(): 1, 2 and 8 hide an address of another device; 3 hides only
// scope-host ones; 0 and the reserved 4-7 answer.
TEST(LoScopeHost, ArpIgnoreValuesAsTheKernelReadsThem) {
  const std::string base = text_of("lo-scope-host.toml");
  struct Case {
    const char* value;
    bool host_scope;
    bool warned;
  } cases[] = {{"1", false, false}, {"2", false, false}, {"3", true, false}, {"3", false, true},
               {"4", true, true},   {"8", false, false}, {"0", true, true}};
  for (const auto& c : cases) {
    std::string text = replace_all(base, "arp_ignore = 3", std::string("arp_ignore = ") + c.value);
    if (!c.host_scope)
      text = replace_all(text, R"(lo = [{ address = "10.40.0.100/32", scope = "host" }])",
                         R"(lo = ["10.40.0.100/32"])");
    LoadResult r = parse_topology(text, "arp.toml");
    ASSERT_TRUE(r.ok()) << dump(r);
    bool warned = dump(r).find("would answer ARP for the VIP") != std::string::npos;
    EXPECT_EQ(warned, c.warned) << "arp_ignore = " << c.value
                                << (c.host_scope ? " scope host" : " global") << "\n"
                                << dump(r);
  }
}

TEST(DefaultArpSysctls, ReachEveryInterfaceSoNoWarning) {
  LoadResult r = fixture("default-arp-sysctls.toml");
  ASSERT_TRUE(r.topology) << dump(r);
  EXPECT_TRUE(r.diagnostics.empty()) << dump(r);
  // What makes that true: the planner sets conf.default before it creates rs1's eth0.
  Plan p = make_plan(*r.topology);
  std::ptrdiff_t def = -1, veth = -1;
  for (std::size_t k = 0; k < p.steps.size(); ++k) {
    const auto& s = p.steps[k].step;
    if (const auto* x = std::get_if<step::SetSysctl>(&s);
        x && x->ns == "defarp-rs1" && x->key == "net.ipv4.conf.default.arp_ignore")
      def = static_cast<std::ptrdiff_t>(k);
    if (const auto* x = std::get_if<step::CreateVeth>(&s); x && x->ns == "defarp-rs1" && veth < 0)
      veth = static_cast<std::ptrdiff_t>(k);
  }
  ASSERT_GE(def, 0);
  ASSERT_GE(veth, 0);
  EXPECT_LT(def, veth);
  // An interface's own key still overrides conf.default.
  std::string text = text_of("default-arp-sysctls.toml") +
                     "[nodes.rs1.sysctl.net.ipv4.conf.eth0]\narp_ignore = 0\n";
  LoadResult w = parse_topology(text, "d.toml");
  EXPECT_THAT(dump(w), HasSubstr("real server rs1 would answer ARP for the VIP on eth0"));
}

TEST(SameSubnet, SeparateSegmentsMayReuseSubnetsAndAddresses) {
  for (const char* name : {"same-subnet-sites.toml", "host/same-subnet.toml"}) {
    LoadResult r = fixture(name);
    ASSERT_TRUE(r.topology) << name << "\n" << dump(r);
    EXPECT_TRUE(r.diagnostics.empty()) << name << "\n" << dump(r);
  }
  LoadResult r = fixture("same-subnet-sites.toml");
  const auto& rb = r.topology->node("db")->services[0].real_servers[0];
  EXPECT_EQ(rb.node, "rb");
  EXPECT_EQ(rb.addr.str(), "10.51.0.11");
  const auto& ra = r.topology->node("da")->services[0].real_servers[0];
  EXPECT_EQ(ra.node, "ra");
}

TEST(SameSubnet, OneSegmentStillRefusesARepeatedAddress) {
  std::string text =
      replace(text_of("same-subnet-sites.toml"),
              R"(interfaces.eth0 = { switch = "site-b", addresses = ["10.51.0.10/24"] })",
              R"(interfaces.eth0 = { switch = "site-a", addresses = ["10.51.0.10/24"] })");
  LoadResult r = parse_topology(text, "s.toml");
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(dump(r), HasSubstr("address 10.51.0.10 of cb:eth0 is already used by ca:eth0"));
}

TEST(LoopbackRealServer, IsTheDirectorServingLocally) {
  LoadResult r = fixture("rs-loopback.toml");
  ASSERT_TRUE(r.topology) << dump(r);
  EXPECT_TRUE(r.diagnostics.empty()) << dump(r);
  const auto& rs = r.topology->node("director")->services[0].real_servers[0];
  EXPECT_EQ(rs.addr.str(), "127.0.0.1");
  EXPECT_EQ(rs.node, "director");
  EXPECT_EQ(rs.method, FwdMethod::Local);
  std::string text = replace(text_of("rs-loopback.toml"), R"({ address = "127.0.0.1" })",
                             R"({ address = "127.0.0.1", port = 8080 })");
  LoadResult bad = parse_topology(text, "l.toml");
  EXPECT_THAT(dump(bad), HasSubstr("local delivery keeps the service's port 80"));
}

TEST(FwmarkHints, TheReachHintLoadsWhenFollowed) {
  LoadResult r = fixture("bad/check-reach-fwmark-service.toml");
  auto errors = of(r, Diagnostic::Severity::Error);
  ASSERT_EQ(errors.size(), 1u) << dump(r);
  EXPECT_THAT(errors[0].hint, HasSubstr("replace service = \"marked\" with the target itself"));
  // Doing what the hint says loads.
  std::string text = replace(text_of("bad/check-reach-fwmark-service.toml"), "service = \"marked\"",
                             "to = \"10.46.0.100\"");
  LoadResult fixed = parse_topology(text, "f.toml");
  EXPECT_TRUE(fixed.ok()) << dump(fixed);
}

TEST(FwmarkHints, TheServiceCheckHintLoadsWhenFollowed) {
  // balance on a fwmark service without to/port: the hint adds them, and they are taken.
  std::string text = text_of("fwmark-dr.toml");
  text = replace(text, "service = \"marked\"\nto = \"10.50.0.100\"\nport = 80\n[checks.fw-bypass]",
                 "service = \"marked\"\n[checks.fw-bypass]");
  LoadResult r = parse_topology(text, "f.toml");
  auto errors = of(r, Diagnostic::Severity::Error);
  ASSERT_EQ(errors.size(), 1u) << dump(r);
  EXPECT_THAT(errors[0].hint, HasSubstr("to = \"<address>\", port = <port>"));
  LoadResult fixed = parse_topology(
      replace(text, "service = \"marked\"\n[checks.fw-bypass]",
              "service = \"marked\"\nto = \"10.50.0.100\"\nport = 80\n[checks.fw-bypass]"),
      "f.toml");
  EXPECT_TRUE(fixed.ok()) << dump(fixed);
}

TEST(Tun6, LoadsCleanAndPlansIp6tnl0) {
  LoadResult r = fixture("tun6.toml");
  ASSERT_TRUE(r.topology) << dump(r);
  EXPECT_TRUE(r.diagnostics.empty()) << dump(r);
  Plan p = make_plan(*r.topology);
  bool enabled = false;
  for (const auto& s : p.steps)
    if (const auto* e = std::get_if<step::EnableIpip>(&s.step)) {
      EXPECT_EQ(e->ns, "tun6-rs1");
      EXPECT_EQ(e->family, AF_INET6);
      enabled = true;
    }
  EXPECT_TRUE(enabled);
  for (const char* want :
       {"modprobe ip6_tunnel && ip -n tun6-rs1 link show dev ip6tnl0",
        "ip -n tun6-rs1 link set dev ip6tnl0 up",
        "ip -n tun6-rs1 addr add fd00:61::100/128 dev ip6tnl0 nodad",
        // Never the outer source: rs1 holds it and ip6_tunnel drops that.
        "ip -n tun6-director addr add fd00:61::100/128 dev eth0 nodad preferred_lft 0"})
    EXPECT_TRUE(has_command(p, want)) << want << "\n" << ::testing::PrintToString(commands(p));
  auto all = commands(p);
  EXPECT_NE(std::find(all.begin(), all.end(),
                      "ip -n tun6-director addr add fd00:61::2/64 dev eth0 nodad"),
            all.end())
      << "the DIP stays a preferred source";
}

TEST(Tun6, WithoutAcceptIp6ip6ItIsAnErrorNamingTheKey) {
  std::string text =
      replace(text_of("tun6.toml"), "accept_ip6ip6 = true\nip6tnl0 = [\"fd00:61::100/128\"]\n",
              "lo = [\"fd00:61::100/128\"]\n");
  LoadResult r = parse_topology(text, "t.toml");
  auto errors = of(r, Diagnostic::Severity::Error);
  ASSERT_EQ(errors.size(), 1u) << dump(r);
  EXPECT_THAT(errors[0].message,
              HasSubstr("TUN real server rs1 does not accept IPv6-in-IPv6 (service web is IPv6)"));
  EXPECT_THAT(errors[0].hint, HasSubstr("accept_ip6ip6 = true"));
  EXPECT_EQ(errors[0].line, 29);
}

TEST(DrRpFilter, WarnsOnlyWhereTheKernelDrops) {
  const std::string base = text_of("warn/dr-rp-filter-strict.toml");
  // Loose mode: a route back exists, so nothing is dropped.
  LoadResult loose =
      parse_topology(replace(base, "conf.all.rp_filter = 1", "conf.all.rp_filter = 2"), "r.toml");
  EXPECT_THAT(dump(loose), ::testing::Not(HasSubstr("reverse-path")));
  // Strict, but the route back to the client leaves eth0: accepted.
  LoadResult back =
      parse_topology(replace(base, "routes = [{ to = \"default\", via = \"10.48.5.1\" }]",
                             "routes = [{ to = \"default\", via = \"10.48.0.1\" }]"),
                     "r.toml");
  EXPECT_THAT(dump(back), ::testing::Not(HasSubstr("reverse-path")));
  // Strict on eth0 through conf.default (eth0 is born with it).
  LoadResult def = parse_topology(
      replace(base, "conf.all.rp_filter = 1", "conf.default.rp_filter = 1"), "r.toml");
  EXPECT_THAT(dump(def),
              HasSubstr("drops requests from client (10.48.9.10) by reverse-path filtering"));
}

}  // namespace
}  // namespace labctl
