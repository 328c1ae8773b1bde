// Unit tier: rtnetlink request encoders (built by libnl) taken apart byte by byte, and the
// dump decoders fed canned replies.
#include "labctl/kernel/rtnl.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/if_tunnel.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

#include <cerrno>

#include "tests/unit/nl_test_util.h"

namespace labctl {
namespace {

using test::Attrs;
using test::MsgBuilder;
using test::nested;
using test::payload;

const ifinfomsg& ifi_of(const Request& r) {
  return *static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(r.header()));
}

Attrs link_attrs(const Request& r) { return test::attrs_of(r.header(), sizeof(ifinfomsg)); }

std::vector<uint8_t> v4(const char* text) {
  auto a = IpAddr::parse(text);
  return {a->bytes.begin(), a->bytes.begin() + 4};
}

void expect_create(const Request& r) {
  ASSERT_GE(r.bytes.size(), sizeof(nlmsghdr));
  EXPECT_EQ(r.header()->nlmsg_len, r.bytes.size());
  EXPECT_EQ(r.header()->nlmsg_type, RTM_NEWLINK);
  EXPECT_EQ(r.header()->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL), NLM_F_CREATE | NLM_F_EXCL);
  EXPECT_TRUE(r.header()->nlmsg_flags & NLM_F_ECHO) << "the new link comes back with its ifindex";
}

std::string kind_of(Attrs& a) {
  if (!a.count(IFLA_LINKINFO)) return "";
  auto info = nested(a[IFLA_LINKINFO]);
  return info.count(IFLA_INFO_KIND) ? test::str(info[IFLA_INFO_KIND]) : "";
}

TEST(RtnlEncode, BridgeHasNameMtuKindAndNoMulticastSnooping) {
  auto r = rtnl::bridge_add("br0", 1400);
  ASSERT_TRUE(r) << r.error().str();
  expect_create(*r);
  auto a = link_attrs(*r);
  EXPECT_EQ(test::str(a[IFLA_IFNAME]), "br0");
  EXPECT_EQ(mnl_attr_get_u32(a[IFLA_MTU]), 1400u);
  EXPECT_EQ(kind_of(a), "bridge");
  auto info = nested(a[IFLA_LINKINFO]);
  ASSERT_TRUE(info.count(IFLA_INFO_DATA));
  auto data = nested(info[IFLA_INFO_DATA]);
  ASSERT_TRUE(data.count(IFLA_BR_MCAST_SNOOPING));
  EXPECT_EQ(mnl_attr_get_u8(data[IFLA_BR_MCAST_SNOOPING]), 0);
  EXPECT_EQ(r->what, "create bridge br0");
}

TEST(RtnlEncode, BridgeWithoutMtuLeavesItToTheKernel) {
  auto r = rtnl::bridge_add("br0", 0);
  ASSERT_TRUE(r) << r.error().str();
  auto a = link_attrs(*r);
  EXPECT_FALSE(a.count(IFLA_MTU));
}

TEST(RtnlEncode, VethPeerGoesIntoItsNamespaceWithItsOwnNameAndMac) {
  auto r = rtnl::veth_add("eth0", "p-eth0", 42, 1500, "02:00:00:00:00:01", "02:00:00:00:00:02");
  ASSERT_TRUE(r) << r.error().str();
  expect_create(*r);
  auto a = link_attrs(*r);
  EXPECT_EQ(test::str(a[IFLA_IFNAME]), "eth0");
  EXPECT_EQ(mnl_attr_get_u32(a[IFLA_MTU]), 1500u);
  EXPECT_EQ(payload(a[IFLA_ADDRESS]), (std::vector<uint8_t>{2, 0, 0, 0, 0, 1}));
  EXPECT_FALSE(a.count(IFLA_NET_NS_FD)) << "the first end stays here";
  auto info = nested(a[IFLA_LINKINFO]);
  EXPECT_EQ(test::str(info[IFLA_INFO_KIND]), "veth");
  ASSERT_TRUE(info.count(IFLA_INFO_DATA));
  auto data = nested(info[IFLA_INFO_DATA]);
  ASSERT_TRUE(data.count(VETH_INFO_PEER));
  // VETH_INFO_PEER holds an ifinfomsg followed by the peer's own link attributes.
  const nlattr* peer = data[VETH_INFO_PEER];
  ASSERT_GE(mnl_attr_get_payload_len(peer), sizeof(ifinfomsg));
  Attrs p;
  const auto* base = static_cast<const uint8_t*>(mnl_attr_get_payload(peer));
  mnl_attr_parse_payload(base + NLMSG_ALIGN(sizeof(ifinfomsg)),
                         mnl_attr_get_payload_len(peer) - NLMSG_ALIGN(sizeof(ifinfomsg)),
                         test::collect_attr, &p);
  EXPECT_EQ(test::str(p[IFLA_IFNAME]), "p-eth0");
  ASSERT_TRUE(p.count(IFLA_NET_NS_FD));
  EXPECT_EQ(mnl_attr_get_u32(p[IFLA_NET_NS_FD]), 42u);
  EXPECT_EQ(mnl_attr_get_u32(p[IFLA_MTU]), 1500u);
  EXPECT_EQ(payload(p[IFLA_ADDRESS]), (std::vector<uint8_t>{2, 0, 0, 0, 0, 2}));
  // One queue each way on both ends: the kernel would otherwise make one per possible CPU
  // and trim them, waiting out an RCU grace period under the RTNL lock.
  for (auto* attrs : {&a, &p}) {
    ASSERT_TRUE(attrs->count(IFLA_NUM_TX_QUEUES) && attrs->count(IFLA_NUM_RX_QUEUES));
    EXPECT_EQ(mnl_attr_get_u32((*attrs)[IFLA_NUM_TX_QUEUES]), 1u);
    EXPECT_EQ(mnl_attr_get_u32((*attrs)[IFLA_NUM_RX_QUEUES]), 1u);
  }
}

TEST(RtnlEncode, VethRejectsABadMac) {
  auto r = rtnl::veth_add("eth0", "p", -1, 0, "not-a-mac", "");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("not-a-mac"), std::string::npos);
}

TEST(RtnlEncode, LinkUpFindsTheLinkByNameAndChangesOnlyIffUp) {
  auto r = rtnl::link_set_up("eth0");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header()->nlmsg_type, RTM_NEWLINK);
  EXPECT_EQ(r->header()->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL), 0);
  EXPECT_EQ(ifi_of(*r).ifi_index, 0);
  EXPECT_EQ(ifi_of(*r).ifi_flags & IFF_UP, static_cast<unsigned>(IFF_UP));
  EXPECT_EQ(ifi_of(*r).ifi_change, static_cast<unsigned>(IFF_UP));
  auto a = link_attrs(*r);
  EXPECT_EQ(test::str(a[IFLA_IFNAME]), "eth0");
}

TEST(RtnlEncode, SetMasterAndAlias) {
  auto m = rtnl::link_set_master("p-eth0", 7, "br0");
  ASSERT_TRUE(m);
  auto a = link_attrs(*m);
  EXPECT_EQ(test::str(a[IFLA_IFNAME]), "p-eth0");
  EXPECT_EQ(mnl_attr_get_u32(a[IFLA_MASTER]), 7u);
  EXPECT_EQ(ifi_of(*m).ifi_change, 0u) << "flags untouched";
  EXPECT_EQ(m->what, "attach p-eth0 to br0");

  auto al = rtnl::link_set_alias("eth0", "lab dr-demo");
  ASSERT_TRUE(al);
  auto b = link_attrs(*al);
  EXPECT_EQ(test::str(b[IFLA_IFALIAS]), "lab dr-demo");
}

TEST(RtnlEncode, DeleteLinkByName) {
  auto r = rtnl::link_del("eth0");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header()->nlmsg_type, RTM_DELLINK);
  EXPECT_EQ(ifi_of(*r).ifi_index, 0);
  auto a = link_attrs(*r);
  EXPECT_EQ(test::str(a[IFLA_IFNAME]), "eth0");
}

TEST(RtnlEncode, Ipv4AddressKeepsHostBitsAndPrefix) {
  auto r = rtnl::addr_add(5, "eth0", *IpPrefix::parse("10.0.0.7/24"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header()->nlmsg_type, RTM_NEWADDR);
  EXPECT_EQ(r->header()->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL), NLM_F_CREATE | NLM_F_EXCL);
  const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(r->header()));
  EXPECT_EQ(ifa->ifa_family, AF_INET);
  EXPECT_EQ(ifa->ifa_prefixlen, 24);
  EXPECT_EQ(ifa->ifa_index, 5u);
  auto a = test::attrs_of(r->header(), sizeof(ifaddrmsg));
  EXPECT_EQ(payload(a[IFA_LOCAL]), v4("10.0.0.7"));
  EXPECT_EQ(r->what, "add address 10.0.0.7/24 to eth0");
}

TEST(RtnlEncode, Ipv6AddressSkipsDad) {
  auto r = rtnl::addr_add(3, "eth0", *IpPrefix::parse("fd00::7/64"));
  ASSERT_TRUE(r);
  const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(r->header()));
  EXPECT_EQ(ifa->ifa_family, AF_INET6);
  EXPECT_EQ(ifa->ifa_prefixlen, 64);
  auto a = test::attrs_of(r->header(), sizeof(ifaddrmsg));
  auto addr = IpAddr::parse("fd00::7");
  EXPECT_EQ(payload(a[IFA_LOCAL]), std::vector<uint8_t>(addr->bytes.begin(), addr->bytes.end()));
  uint32_t flags = ifa->ifa_flags;
  if (a.count(IFA_FLAGS)) flags |= mnl_attr_get_u32(a[IFA_FLAGS]);
  EXPECT_TRUE(flags & IFA_F_NODAD);
}

TEST(RtnlEncode, DefaultRouteViaGateway) {
  Route route;
  route.family = AF_INET;
  route.via = IpAddr::parse("10.0.0.1");
  auto r = rtnl::route_add(route, 4);
  ASSERT_TRUE(r) << r.error().str();
  EXPECT_EQ(r->header()->nlmsg_type, RTM_NEWROUTE);
  const auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(r->header()));
  EXPECT_EQ(rtm->rtm_family, AF_INET);
  EXPECT_EQ(rtm->rtm_dst_len, 0);
  EXPECT_EQ(rtm->rtm_table, RT_TABLE_MAIN);
  EXPECT_EQ(rtm->rtm_protocol, RTPROT_BOOT);
  EXPECT_EQ(rtm->rtm_scope, RT_SCOPE_UNIVERSE);
  EXPECT_EQ(rtm->rtm_type, RTN_UNICAST);
  auto a = test::attrs_of(r->header(), sizeof(rtmsg));
  EXPECT_EQ(payload(a[RTA_GATEWAY]), v4("10.0.0.1"));
  EXPECT_EQ(mnl_attr_get_u32(a[RTA_OIF]), 4u);
  EXPECT_FALSE(a.count(RTA_MULTIPATH));
  EXPECT_EQ(r->what, "add route default via 10.0.0.1");
}

TEST(RtnlEncode, PrefixRouteClearsHostBitsAndHasNoOifWithoutDev) {
  Route route;
  route.to = IpPrefix::parse("192.168.7.9/24");
  route.family = AF_INET;
  route.via = IpAddr::parse("10.0.0.1");
  auto r = rtnl::route_add(route, 0);
  ASSERT_TRUE(r);
  const auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(r->header()));
  EXPECT_EQ(rtm->rtm_dst_len, 24);
  auto a = test::attrs_of(r->header(), sizeof(rtmsg));
  EXPECT_EQ(payload(a[RTA_DST]), v4("192.168.7.0"));
  EXPECT_FALSE(a.count(RTA_OIF));
}

TEST(RtnlEncode, OnLinkRouteHasLinkScope) {
  Route route;
  route.to = IpPrefix::parse("fd01::/64");
  route.dev = "eth1";
  auto r = rtnl::route_add(route, 9);
  ASSERT_TRUE(r);
  const auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(r->header()));
  EXPECT_EQ(rtm->rtm_family, AF_INET6);
  EXPECT_EQ(rtm->rtm_scope, RT_SCOPE_LINK);
  auto a = test::attrs_of(r->header(), sizeof(rtmsg));
  EXPECT_FALSE(a.count(RTA_GATEWAY));
  EXPECT_EQ(mnl_attr_get_u32(a[RTA_OIF]), 9u);
}

TEST(RtnlEncode, RouteFamilyMismatchIsRefused) {
  Route route;
  route.to = IpPrefix::parse("10.1.0.0/16");
  route.via = IpAddr::parse("fd00::1");
  EXPECT_FALSE(rtnl::route_add(route, 0));
  Route nofamily;
  EXPECT_FALSE(rtnl::route_add(nofamily, 0));
}

TEST(RtnlEncode, IpipTunnelParametersInNetworkOrderWithoutFlags) {
  Tunnel t;
  t.name = "tun1";
  t.local = *IpAddr::parse("10.0.0.1");
  t.remote = *IpAddr::parse("10.0.0.2");
  t.ttl = 32;
  auto r = rtnl::ipip_add(t, 6);
  ASSERT_TRUE(r) << r.error().str();
  expect_create(*r);
  auto a = link_attrs(*r);
  EXPECT_EQ(test::str(a[IFLA_IFNAME]), "tun1");
  auto info = nested(a[IFLA_LINKINFO]);
  EXPECT_EQ(test::str(info[IFLA_INFO_KIND]), "ipip");
  auto data = nested(info[IFLA_INFO_DATA]);
  EXPECT_EQ(payload(data[IFLA_IPTUN_LOCAL]), v4("10.0.0.1"));
  EXPECT_EQ(payload(data[IFLA_IPTUN_REMOTE]), v4("10.0.0.2"));
  EXPECT_EQ(mnl_attr_get_u8(data[IFLA_IPTUN_TTL]), 32);
  EXPECT_EQ(mnl_attr_get_u32(data[IFLA_IPTUN_LINK]), 6u);
  EXPECT_FALSE(data.count(IFLA_IPTUN_FLAGS));
  EXPECT_EQ(r->hint(EOPNOTSUPP, "").find("CONFIG_NET_IPIP") != std::string::npos, true);
}

TEST(RtnlEncode, IpipRejectsIpv6Endpoints) {
  Tunnel t;
  t.name = "tun1";
  t.local = *IpAddr::parse("fd00::1");
  t.remote = *IpAddr::parse("fd00::2");
  auto r = rtnl::ipip_add(t, 0);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("IPv4 only"), std::string::npos);
}

TEST(RtnlEncode, EnsureIpipAsksForTunl0AndAcceptsEexist) {
  auto r = rtnl::ipip_ensure();
  ASSERT_TRUE(r);
  expect_create(*r);
  EXPECT_EQ(r->ok_errno, EEXIST);
  auto a = link_attrs(*r);
  EXPECT_EQ(test::str(a[IFLA_IFNAME]), "tunl0");
  EXPECT_EQ(kind_of(a), "ipip");
  if (auto info = nested(a[IFLA_LINKINFO]); info.count(IFLA_INFO_DATA)) {
    auto data = nested(info[IFLA_INFO_DATA]);
    EXPECT_FALSE(data.count(IFLA_IPTUN_LOCAL));
    EXPECT_FALSE(data.count(IFLA_IPTUN_REMOTE));
  }
}

TEST(RtnlEncode, DumpRequestsAskForADumpOfOneFamily) {
  Request l = rtnl::link_dump();
  EXPECT_EQ(l.header()->nlmsg_type, RTM_GETLINK);
  EXPECT_EQ(l.header()->nlmsg_flags & NLM_F_DUMP, NLM_F_DUMP);
  EXPECT_EQ(l.bytes.size(), NLMSG_LENGTH(sizeof(ifinfomsg)));
  Request r = rtnl::route_dump(AF_INET6);
  EXPECT_EQ(r.header()->nlmsg_type, RTM_GETROUTE);
  EXPECT_EQ(static_cast<const rtmsg*>(mnl_nlmsg_get_payload(r.header()))->rtm_family, AF_INET6);
}

TEST(RtnlDecode, LinkWithKindMasterAliasAndPeer) {
  MsgBuilder b(RTM_NEWLINK, NLM_F_MULTI);
  auto* ifi = b.extra<ifinfomsg>();
  ifi->ifi_index = 12;
  ifi->ifi_flags = IFF_UP | IFF_BROADCAST;
  mnl_attr_put_strz(b.nlh(), IFLA_IFNAME, "eth0");
  mnl_attr_put_u32(b.nlh(), IFLA_MTU, 1480);
  uint8_t mac[6] = {0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x0e};
  mnl_attr_put(b.nlh(), IFLA_ADDRESS, sizeof mac, mac);
  mnl_attr_put_u32(b.nlh(), IFLA_MASTER, 3);
  mnl_attr_put_strz(b.nlh(), IFLA_IFALIAS, "front");
  mnl_attr_put_u32(b.nlh(), IFLA_LINK, 2);
  mnl_attr_put_u32(b.nlh(), IFLA_LINK_NETNSID, 0);
  nlattr* li = mnl_attr_nest_start(b.nlh(), IFLA_LINKINFO);
  mnl_attr_put_str(b.nlh(), IFLA_INFO_KIND, "veth");  // the kernel sends it without NUL
  mnl_attr_nest_end(b.nlh(), li);
  auto buf = b.bytes();
  auto l = rtnl::parse_link(*reinterpret_cast<const nlmsghdr*>(buf.data()));
  ASSERT_TRUE(l) << l.error().str();
  EXPECT_EQ(l->name, "eth0");
  EXPECT_EQ(l->index, 12);
  EXPECT_TRUE(l->up);
  EXPECT_EQ(l->mtu, 1480);
  EXPECT_EQ(l->mac, "02:aa:bb:cc:dd:0e");
  EXPECT_EQ(l->master, 3);
  EXPECT_EQ(l->alias, "front");
  EXPECT_EQ(l->link, 2);
  EXPECT_EQ(l->link_netnsid, 0);
  EXPECT_EQ(l->kind, "veth");
}

TEST(RtnlDecode, LoopbackHasNoKindAndIsDown) {
  MsgBuilder b(RTM_NEWLINK);
  b.extra<ifinfomsg>()->ifi_index = 1;
  mnl_attr_put_strz(b.nlh(), IFLA_IFNAME, "lo");
  auto buf = b.bytes();
  auto l = rtnl::parse_link(*reinterpret_cast<const nlmsghdr*>(buf.data()));
  ASSERT_TRUE(l);
  EXPECT_EQ(l->kind, "");
  EXPECT_FALSE(l->up);
  EXPECT_EQ(l->master, 0);
  EXPECT_EQ(l->link_netnsid, -1);
}

TEST(RtnlDecode, AddressPrefersIfaLocal) {
  MsgBuilder b(RTM_NEWADDR);
  auto* ifa = b.extra<ifaddrmsg>();
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = 24;
  ifa->ifa_index = 4;
  auto peer = v4("10.9.9.9");
  auto local = v4("10.0.0.5");
  mnl_attr_put(b.nlh(), IFA_ADDRESS, 4, peer.data());
  mnl_attr_put(b.nlh(), IFA_LOCAL, 4, local.data());
  auto buf = b.bytes();
  auto a = rtnl::parse_addr(*reinterpret_cast<const nlmsghdr*>(buf.data()));
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->has_value());
  EXPECT_EQ((*a)->prefix.str(), "10.0.0.5/24");
  EXPECT_EQ((*a)->index, 4);
}

TEST(RtnlDecode, NeighbourWithLinkLayerAddress) {
  MsgBuilder b(RTM_NEWNEIGH);
  auto* nd = b.extra<ndmsg>();
  nd->ndm_family = AF_INET;
  nd->ndm_ifindex = 3;
  nd->ndm_state = NUD_REACHABLE;
  auto dst = v4("10.10.0.100");
  const uint8_t mac[6] = {0x02, 0x00, 0x0a, 0x0b, 0x0c, 0x0d};
  mnl_attr_put(b.nlh(), NDA_DST, 4, dst.data());
  mnl_attr_put(b.nlh(), NDA_LLADDR, 6, mac);
  auto buf = b.bytes();
  auto n = rtnl::parse_neigh(*reinterpret_cast<const nlmsghdr*>(buf.data()));
  ASSERT_TRUE(n);
  ASSERT_TRUE(n->has_value());
  EXPECT_EQ((*n)->dst.str(), "10.10.0.100");
  EXPECT_EQ((*n)->lladdr, "02:00:0a:0b:0c:0d");
  EXPECT_EQ((*n)->index, 3);
  EXPECT_EQ((*n)->state, NUD_REACHABLE);
}

TEST(RtnlDecode, NeighbourDumpRequestAsksForOneFamily) {
  auto req = rtnl::neigh_dump(AF_INET);
  const auto* nlh = req.header();
  EXPECT_EQ(nlh->nlmsg_type, RTM_GETNEIGH);
  EXPECT_TRUE(nlh->nlmsg_flags & NLM_F_DUMP);
  EXPECT_EQ(static_cast<const ndmsg*>(mnl_nlmsg_get_payload(nlh))->ndm_family, AF_INET);
}

TEST(RtnlDecode, RoutesOfTheMainTableOnly) {
  auto build = [](uint8_t table, uint8_t type, uint8_t dst_len) {
    MsgBuilder b(RTM_NEWROUTE);
    auto* rtm = b.extra<rtmsg>();
    rtm->rtm_family = AF_INET;
    rtm->rtm_table = table;
    rtm->rtm_type = type;
    rtm->rtm_dst_len = dst_len;
    rtm->rtm_protocol = RTPROT_BOOT;
    mnl_attr_put_u32(b.nlh(), RTA_TABLE, table);
    if (dst_len) {
      auto d = v4("10.1.0.0");
      mnl_attr_put(b.nlh(), RTA_DST, 4, d.data());
    }
    auto gw = v4("10.0.0.1");
    mnl_attr_put(b.nlh(), RTA_GATEWAY, 4, gw.data());
    mnl_attr_put_u32(b.nlh(), RTA_OIF, 2);
    return b.bytes();
  };
  auto def = build(RT_TABLE_MAIN, RTN_UNICAST, 0);
  auto r = rtnl::parse_route(*reinterpret_cast<const nlmsghdr*>(def.data()));
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->has_value());
  EXPECT_FALSE((*r)->dst.has_value()) << "default route";
  EXPECT_EQ((*r)->via->str(), "10.0.0.1");
  EXPECT_EQ((*r)->oif, 2);
  EXPECT_EQ((*r)->protocol, RTPROT_BOOT);

  auto pfx = build(RT_TABLE_MAIN, RTN_UNICAST, 16);
  auto p = rtnl::parse_route(*reinterpret_cast<const nlmsghdr*>(pfx.data()));
  ASSERT_TRUE(p && p->has_value());
  EXPECT_EQ((*p)->dst->str(), "10.1.0.0/16");

  auto local = build(RT_TABLE_LOCAL, RTN_LOCAL, 32);
  auto l = rtnl::parse_route(*reinterpret_cast<const nlmsghdr*>(local.data()));
  ASSERT_TRUE(l);
  EXPECT_FALSE(l->has_value());
}

// ERANGE is what RTM_NEWLINK answers for an IFLA_IFNAME over 15 bytes: the hint names it.
TEST(RtnlHints, ErangeNamesTheNameThatIsTooLong) {
  auto br = rtnl::bridge_add("sixteen-bytes-sw", 0);
  ASSERT_TRUE(br);
  const std::string h = br->hint(ERANGE, "lab-sw");
  EXPECT_NE(h.find("'sixteen-bytes-sw' is 16 bytes"), std::string::npos) << h;
  EXPECT_NE(h.find("at most 15"), std::string::npos) << h;
  EXPECT_EQ(h.find("MTU"), std::string::npos) << "not about the MTU: " << h;
  auto veth = rtnl::veth_add("eth0", "lab-peer-too-long", -1, 0, "", "");
  ASSERT_TRUE(veth);
  EXPECT_NE(veth->hint(ERANGE, "").find("'lab-peer-too-long' is 17 bytes"), std::string::npos);
  // Other errors keep their own hints.
  EXPECT_NE(br->hint(EEXIST, "lab-sw").find("exists already"), std::string::npos);
}

// The kernel refuses an IPv6 address on a device with an MTU below 1280 with EINVAL.
TEST(RtnlHints, EinvalForAnIpv6AddressNamesTheIpv6MinimumMtu) {
  auto v6 = rtnl::addr_add(5, "eth0", *IpPrefix::parse("fd00::1/64"));
  ASSERT_TRUE(v6);
  EXPECT_NE(v6->hint(EINVAL, "").find("at least 1280"), std::string::npos) << v6->hint(EINVAL, "");
  auto v4 = rtnl::addr_add(5, "eth0", *IpPrefix::parse("10.0.0.1/24"));
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->hint(EINVAL, "").find("1280"), std::string::npos);
  EXPECT_NE(rtnl::link_hint(EINVAL, "").find("at least 1280 where the interface carries IPv6"),
            std::string::npos);
}

TEST(RtnlHints, ChosenPerErrno) {
  EXPECT_NE(rtnl::link_hint(EEXIST, "lab-rs1").find("exists already in lab-rs1"),
            std::string::npos);
  EXPECT_NE(rtnl::link_hint(EPERM, "").find("CAP_NET_ADMIN"), std::string::npos);
  EXPECT_NE(rtnl::link_hint(ENODEV, "ns").find("no interface"), std::string::npos);
  EXPECT_NE(rtnl::route_hint(ENETUNREACH, "ns").find("gateway"), std::string::npos);
  EXPECT_NE(rtnl::addr_hint(EEXIST, "").find("already"), std::string::npos);
  const std::string ipip = rtnl::ipip_hint(EOPNOTSUPP, "");
  EXPECT_NE(ipip.find("CONFIG_NET_IPIP"), std::string::npos);
  EXPECT_NE(ipip.find("labctl vm exec -- labctl up"), std::string::npos);
  EXPECT_EQ(rtnl::link_hint(0, ""), "");
}

}  // namespace
}  // namespace labctl
