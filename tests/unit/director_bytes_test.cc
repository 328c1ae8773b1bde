// Unit tier: the director-bytes check's model half: its bounds, their defaults from the
// service's method, the services it refuses (tests/data/bad holds its malformed keys).
#include <stdexcept>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "labctl/model/load.h"

namespace labctl {
namespace {

using ::testing::HasSubstr;

// A director with a NAT service (nat1) and a DR one (dr1) on one switch; `checks` appended.
std::string lab(const std::string& checks) {
  return R"(
version = 1
name = "db"
[switches.lan]
[switches.internal]
[nodes.client]
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.10/24"] }
[nodes.director]
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.2/24", "10.0.0.100/32", "10.0.0.200/32"] }
interfaces.eth1 = { switch = "internal", addresses = ["10.1.0.1/24"] }
sysctl.net.ipv4.ip_forward = 1
[nodes.director.services.nat]
vip = "10.0.0.100"
port = 80
method = "nat"
real_servers = [{ node = "nat1" }]
[nodes.director.services.dr]
vip = "10.0.0.200"
port = 80
method = "dr"
real_servers = [{ node = "dr1" }]
[nodes.nat1]
interfaces.eth0 = { switch = "internal", addresses = ["10.1.0.11/24"] }
routes = [{ to = "default", via = "10.1.0.1" }]
agents.web = { kind = "http", size = 1048576 }
[nodes.dr1]
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.21/24"] }
lo = ["10.0.0.200/32"]
sysctl = { "net.ipv4.conf.all.arp_ignore" = 1, "net.ipv4.conf.eth0.arp_ignore" = 1, "net.ipv4.conf.all.arp_announce" = 2, "net.ipv4.conf.eth0.arp_announce" = 2 }
agents.web = { kind = "http", size = 1048576 }
)" + checks;
}

const Check& named(const Topology& t, const std::string& name) {
  for (const auto& c : t.checks)
    if (c.name == name) return c;
  throw std::runtime_error("no check " + name);
}

std::string diags(const LoadResult& r) {
  std::string s;
  for (const auto& d : r.diagnostics) s += format_diagnostic(d) + "\n";
  return s;
}

TEST(DirectorBytes, EachBoundLeftOutComesFromTheServicesMethod) {
  auto r = parse_topology(lab(R"(
[checks.nat]
kind = "director-bytes"
from = "client"
service = "nat"
[checks.dr]
kind = "director-bytes"
from = "client"
service = "dr"
[checks.dr-given]
kind = "director-bytes"
from = "client"
service = "dr"
out = ">= 95%"
requests = 2
path = "/big"
)"),
                          "t.toml");
  ASSERT_TRUE(r.ok()) << diags(r);
  EXPECT_TRUE(r.diagnostics.empty()) << diags(r);
  const Check& nat = named(*r.topology, "nat");
  EXPECT_EQ(nat.params.text("out"), ">= 95%");
  EXPECT_FALSE(nat.params.has("in")) << "NAT's requests and ACKs are no lesson: no bound on them";
  EXPECT_EQ(nat.params.integer("requests"), 4);
  EXPECT_EQ(nat.params.text("path"), "/");
  EXPECT_EQ(nat.port, 80);
  EXPECT_EQ(nat.to_text, "10.0.0.100");
  const Check& dr = named(*r.topology, "dr");
  EXPECT_EQ(dr.params.text("out"), "<= 0%");
  EXPECT_EQ(dr.params.text("in"), "<= 5%");
  // What the file says wins; what it leaves out is still the method's.
  const Check& given = named(*r.topology, "dr-given");
  EXPECT_EQ(given.params.text("out"), ">= 95%");
  EXPECT_EQ(given.params.text("in"), "<= 5%");
  EXPECT_EQ(given.params.integer("requests"), 2);
  EXPECT_EQ(given.params.text("path"), "/big");
}

TEST(DirectorBytes, AServiceOfMixedMethodsNeedsABoundOfItsOwn) {
  std::string text = lab("");
  text.replace(text.find(R"(real_servers = [{ node = "dr1" }])"), 33,
               R"(real_servers = [{ node = "dr1" }, { node = "nat1", method = "nat" }])");
  const std::string check = "[checks.mixed]\nkind = \"director-bytes\"\nfrom = \"client\"\nservice = \"dr\"\n";
  auto bare = parse_topology(text + check, "t.toml");
  EXPECT_FALSE(bare.ok());
  EXPECT_THAT(diags(bare), HasSubstr("service dr mixes forwarding methods"));
  auto given = parse_topology(text + check + "out = \">= 40%\"\n", "t.toml");
  ASSERT_TRUE(given.ok()) << diags(given);
  EXPECT_EQ(named(*given.topology, "mixed").params.text("out"), ">= 40%");
  EXPECT_FALSE(named(*given.topology, "mixed").params.has("in"));
}

}  // namespace
}  // namespace labctl
