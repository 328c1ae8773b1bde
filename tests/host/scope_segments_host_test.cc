// Host tier for issue 14's schema items that need no IPVS: an address of scope host on lo
// (read back with `ip -d addr`, and arp_ignore = 3 keeping it, and only it, out of ARP),
// and one subnet reused on two separate switches (each side reaches its own gateway).
// Verified with ip, curl and the kernel's neighbour tables, never labctl's own records.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <sstream>

#include "labctl/kernel/netns.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/model/load.h"
#include "labctl/plan/planner.h"
#include "tests/host/host_test.h"
#include "tests/support/kill_sweep.h"

namespace labctl {
namespace {

// The fixture under a fresh lab name.
Topology host_lab(const std::string& fixture, const std::string& old_name, std::string& name) {
  std::ifstream in(std::string(LABCTL_TEST_DATA) + "/host/" + fixture);
  std::stringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  name = old_name.substr(0, 4) + std::to_string(std::random_device{}() % 100000);
  const std::string key = "name = \"" + old_name + "\"";
  s.replace(s.find(key), key.size(), "name = \"" + name + "\"");
  auto r = parse_topology(s, fixture);
  std::string diags;
  for (const auto& d : r.diagnostics) diags += format_diagnostic(d) + "\n";
  EXPECT_TRUE(r.ok()) << diags;
  EXPECT_TRUE(r.diagnostics.empty()) << diags;
  return r.topology ? *r.topology : Topology{};
}

bool nothing_left(const std::string& lab) {
  for (const auto& ns : list_netns())
    if (ns.rfind(lab + "-", 0) == 0) return false;
  return true;
}

std::string in_ns(const std::string& ns, const std::string& cmd) {
  return test::run_capture("ip netns exec " + ns + " " + cmd + " 2>&1");
}

// curl's body, or "" when it got no answer within 2 s.
std::string http_get(const std::string& ns, const std::string& addr) {
  return in_ns(ns, "curl -s --max-time 2 http://" + addr + "/");
}

TEST(HostScopeHost, LoAddressHasScopeHostAndArpIgnore3HidesOnlyIt) {
  LABCTL_REQUIRE_ROOT();
  std::string name;
  Topology t = host_lab("scope-host.toml", "scopehost", name);
  ASSERT_FALSE(t.nodes.empty());
  Status st = lab_up(t, make_plan(t), {});
  ASSERT_TRUE(st) << st.error().str();
  const std::string addrs = in_ns(name + "-b", "ip -d addr show dev lo");
  const std::string arp_ignore = in_ns(name + "-b", "sysctl -n net.ipv4.conf.all.arp_ignore");
  const std::string hidden = http_get(name + "-a", "10.60.0.100");
  const std::string neigh_hidden = in_ns(name + "-a", "ip neigh show 10.60.0.100");
  const std::string global = http_get(name + "-a", "10.60.0.101");
  const std::string routed = http_get(name + "-c", "10.60.0.100");
  EXPECT_TRUE(lab_down(name));
  EXPECT_TRUE(nothing_left(name));
  EXPECT_NE(addrs.find("inet 10.60.0.100/32 scope host lo"), std::string::npos) << addrs;
  EXPECT_NE(addrs.find("inet 10.60.0.101/32 scope global lo"), std::string::npos) << addrs;
  EXPECT_EQ(arp_ignore, "3\n");
  // On b's subnet a must ARP for both: b answers for the global one only.
  EXPECT_EQ(hidden, "") << "b answered ARP for a scope-host address under arp_ignore = 3";
  EXPECT_EQ(neigh_hidden.find("lladdr"), std::string::npos) << neigh_hidden;
  EXPECT_NE(global.find("b"), std::string::npos) << global;
  // Routed to b, the scope-host address takes packets from the wire.
  EXPECT_NE(routed.find("b"), std::string::npos) << routed;
}

TEST(HostSameSubnet, EachSegmentReachesItsOwnGateway) {
  LABCTL_REQUIRE_ROOT();
  std::string name;
  Topology t = host_lab("same-subnet.toml", "samesub", name);
  ASSERT_FALSE(t.nodes.empty());
  Status st = lab_up(t, make_plan(t), {});
  ASSERT_TRUE(st) << st.error().str();
  const std::string a = http_get(name + "-a1", "10.50.0.1");
  const std::string b = http_get(name + "-b1", "10.50.0.1");
  const std::string neigh_a = in_ns(name + "-a1", "ip neigh show 10.50.0.1");
  const std::string neigh_b = in_ns(name + "-b1", "ip neigh show 10.50.0.1");
  const std::string addr_a = in_ns(name + "-a1", "ip -br addr show dev eth0");
  const std::string addr_b = in_ns(name + "-b1", "ip -br addr show dev eth0");
  EXPECT_TRUE(lab_down(name));
  EXPECT_TRUE(nothing_left(name));
  EXPECT_NE(addr_a.find("10.50.0.2/24"), std::string::npos) << addr_a;
  EXPECT_NE(addr_b.find("10.50.0.2/24"), std::string::npos) << addr_b;
  EXPECT_NE(a.find("gwa"), std::string::npos) << a;
  EXPECT_EQ(a.find("gwb"), std::string::npos) << a;
  EXPECT_NE(b.find("gwb"), std::string::npos) << b;
  EXPECT_EQ(b.find("gwa"), std::string::npos) << b;
  EXPECT_NE(neigh_a.find("02:00:00:00:0a:01"), std::string::npos) << neigh_a;
  EXPECT_NE(neigh_b.find("02:00:00:00:0b:01"), std::string::npos) << neigh_b;
}

}  // namespace
}  // namespace labctl
