// The resolved topology's queries (topology.h): who holds an address, which service has a
// name. The one place these loops live; the planner, the LVS rules and `labctl ipvs` ask it.
#include <gtest/gtest.h>

#include "labctl/model/load.h"

namespace labctl {
namespace {

const char* kLab = R"(version = 1
name = "q"
[switches.s]
[nodes.a.interfaces.eth0]
switch = "s"
addresses = ["10.0.0.1/24"]
[nodes.a.tunnels.t1]
local = "10.0.0.1"
remote = "10.0.0.2"
addresses = ["192.168.9.1/30"]
[nodes.b]
lo = ["10.0.0.100/32"]
[nodes.b.interfaces.eth0]
switch = "s"
addresses = ["10.0.0.2/24"]
[nodes.b.services.web]
vip = "10.0.0.100"
port = 80
real_servers = [{ address = "10.0.0.1", method = "dr" }]
)";

Topology lab() {
  LoadResult r = parse_topology(kLab, "q.toml");
  EXPECT_TRUE(r.topology) << (r.diagnostics.empty() ? "" : r.diagnostics[0].message);
  return r.topology ? *r.topology : Topology{};
}

TEST(TopologyQueries, OwnerOfAnInterfaceAddress) {
  Topology t = lab();
  ASSERT_NE(t.owner_of(IpAddr::parse("10.0.0.2").value()), nullptr);
  EXPECT_EQ(t.owner_of(IpAddr::parse("10.0.0.2").value())->name, "b");
  EXPECT_EQ(t.owners_of(IpAddr::parse("10.0.0.1").value()).size(), 1u);
}

TEST(TopologyQueries, LoAddressesOwnNothingAndTunnelsOnlyWhenAsked) {
  Topology t = lab();
  EXPECT_EQ(t.owner_of(IpAddr::parse("10.0.0.100").value()), nullptr) << "a VIP on lo is shared";
  const IpAddr tun = IpAddr::parse("192.168.9.1").value();
  EXPECT_EQ(t.owner_of(tun), nullptr);
  ASSERT_NE(t.owner_of(tun, Held::OnInterfacesOrTunnels), nullptr);
  EXPECT_EQ(t.owner_of(tun, Held::OnInterfacesOrTunnels)->name, "a");
}

TEST(TopologyQueries, ServiceByNameWithItsDirector) {
  Topology t = lab();
  ServiceRef web = t.service("web");
  ASSERT_TRUE(web);
  EXPECT_EQ(web.director->name, "b");
  EXPECT_EQ(web.service->port, 80);
  EXPECT_FALSE(t.service("nope"));
}

}  // namespace
}  // namespace labctl
