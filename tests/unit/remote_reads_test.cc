// How a check reads a node of another host (checks/check_kind.h): its links as iproute2
// prints them there (`ip -j -s -d link show`), read back as the kernel's own LinkInfo.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <net/if.h>

#include "labctl/checks/check_kind.h"

namespace labctl::check_kind {
namespace {

// What iproute2 6.1 prints for lo, a bridge port and the bridge (trimmed to the fields read).
constexpr const char* kIpJson = R"([
 {"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"link_type":"loopback",
  "address":"00:00:00:00:00:00","stats64":{"rx":{"packets":7},"tx":{"packets":7}}},
 {"ifindex":2,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1450,"master":"lan",
  "link_type":"ether","address":"02:1e:c8:40:2d:11","linkinfo":{"info_kind":"veth"},
  "stats64":{"rx":{"packets":120},"tx":{"packets":95}}},
 {"ifindex":3,"ifname":"lan","flags":["BROADCAST","MULTICAST"],"mtu":1450,"link_type":"ether",
  "address":"02:00:00:00:00:09","linkinfo":{"info_kind":"bridge"}},
 {"ifindex":4,"ifname":"tunl0","flags":["NOARP"],"mtu":1480,"link_type":"ipip","address":"0.0.0.0",
  "linkinfo":{"info_kind":"ipip"}}
])";

TEST(RemoteReads, LinksFromIproute2Json) {
  auto links = links_from_ip_json(kIpJson);
  ASSERT_TRUE(links) << links.error().str();
  ASSERT_EQ(links->size(), 4u);
  const LinkInfo& eth0 = (*links)[1];
  EXPECT_EQ(eth0.name, "eth0");
  EXPECT_EQ(eth0.index, 2);
  EXPECT_EQ(eth0.kind, "veth");
  EXPECT_TRUE(eth0.up);
  EXPECT_TRUE(eth0.flags & IFF_UP);
  EXPECT_EQ(eth0.mtu, 1450);
  EXPECT_EQ(eth0.mac, "02:1e:c8:40:2d:11");
  EXPECT_EQ(eth0.master, 3);  // "lan" by name, as its index
  EXPECT_EQ(eth0.rx_packets, 120u);
  EXPECT_EQ(eth0.tx_packets, 95u);
  EXPECT_FALSE((*links)[2].up);
  EXPECT_EQ((*links)[2].kind, "bridge");
  EXPECT_EQ((*links)[0].mac, "");  // loopback: no Ethernet address
  EXPECT_EQ((*links)[3].mac, "");  // ipip: none either
  EXPECT_EQ((*links)[3].kind, "ipip");

  EXPECT_FALSE(links_from_ip_json("Cannot open network namespace"));
  EXPECT_FALSE(links_from_ip_json(R"([{"ifname":"eth0"}])"));  // no ifindex
}

// Who holds the VIP on another host: the addresses `ip -j addr show` lists there.
TEST(RemoteReads, AddressesFromIproute2Json) {
  auto a = addresses_from_ip_json(R"([
 {"ifindex":1,"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8},
                                        {"family":"inet6","local":"::1","prefixlen":128}]},
 {"ifindex":2,"ifname":"eth0","addr_info":[{"family":"inet","local":"10.10.0.2","prefixlen":24},
                                          {"family":"inet","local":"10.10.0.100","prefixlen":32}]},
 {"ifindex":3,"ifname":"tunl0","addr_info":[]}])");
  ASSERT_TRUE(a) << a.error().str();
  ASSERT_EQ(a->size(), 4u);
  EXPECT_EQ((*a)[3], *IpAddr::parse("10.10.0.100"));
  EXPECT_EQ((*a)[1], *IpAddr::parse("::1"));
  EXPECT_FALSE(addresses_from_ip_json(R"([{"addr_info":[{"local":"not-an-address"}]}])"));
  EXPECT_FALSE(addresses_from_ip_json("Cannot find device"));
}

}  // namespace
}  // namespace labctl::check_kind
