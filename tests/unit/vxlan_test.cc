// Unit tier: the create-vxlan step (issue 28) as a value: its shell, undo, description and
// fields; and the two requests it sends (the VXLAN device, an all-zero FDB entry per other
// host) as libnl builds them, taken apart attribute by attribute.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>

#include <cerrno>

#include <nlohmann/json.hpp>

#include "labctl/kernel/rtnl.h"
#include "labctl/plan/plan.h"
#include "tests/unit/nl_test_util.h"

namespace labctl {
namespace {

using test::Attrs;
using test::nested;
using test::payload;

IpAddr A(const char* text) { return *IpAddr::parse(text); }

std::vector<uint8_t> bytes_of(const IpAddr& a) { return {a.bytes.begin(), a.bytes.begin() + a.size()}; }

step::CreateVxlan two_remotes() {
  step::CreateVxlan s;
  s.ns = "lab-lan";
  s.name = "vx-lan";
  s.vni = 4242;
  s.local = A("192.168.77.1");
  s.remotes = {A("192.168.77.2"), A("192.168.77.3")};
  s.master = "lan";
  return s;
}

TEST(VxlanStep, ShellCreatesFromHereIntoTheSwitchNamespaceThenAttachesAndAppends) {
  step::CreateVxlan s = two_remotes();
  EXPECT_EQ(shell_command(s),
            "ip link add name vx-lan netns lab-lan type vxlan id 4242 local 192.168.77.1 dstport 4789; "
            "ip -n lab-lan link set dev vx-lan master lan; "
            "bridge -n lab-lan fdb append 00:00:00:00:00:00 dev vx-lan dst 192.168.77.2; "
            "bridge -n lab-lan fdb append 00:00:00:00:00:00 dev vx-lan dst 192.168.77.3");
  EXPECT_EQ(undo_command(s), "ip -n lab-lan link del dev vx-lan");
  EXPECT_EQ(describe(Step{s}),
            "stretch bridge lan in lab-lan over vxlan vx-lan (vni 4242, 192.168.77.1 to "
            "192.168.77.2, 192.168.77.3)");
  EXPECT_EQ(step_type(Step{s}), "create-vxlan");
  EXPECT_EQ(step_netns(Step{s}), "lab-lan");
  EXPECT_FALSE(is_rtnetlink_step(Step{s})) << "sent from the executor's own namespace, not lab-lan's";
}

TEST(VxlanStep, MtuMacAndPortGoBeforeTheKindAsIpWantsThem) {
  step::CreateVxlan s = two_remotes();
  s.remotes = {A("fd00::2")};
  s.local = A("fd00::1");
  s.port = 8472;
  s.mtu = 1450;
  s.mac = "02:00:00:00:00:aa";
  EXPECT_EQ(shell_command(s),
            "ip link add name vx-lan mtu 1450 address 02:00:00:00:00:aa netns lab-lan type vxlan id "
            "4242 local fd00::1 dstport 8472; ip -n lab-lan link set dev vx-lan master lan; "
            "bridge -n lab-lan fdb append 00:00:00:00:00:00 dev vx-lan dst fd00::2");
}

TEST(VxlanStep, FieldsAsJson) {
  step::CreateVxlan s = two_remotes();
  EXPECT_EQ(s.fields(), (nlohmann::json{{"name", "vx-lan"},
                                        {"vni", 4242},
                                        {"local", "192.168.77.1"},
                                        {"remotes", {"192.168.77.2", "192.168.77.3"}},
                                        {"port", 4789},
                                        {"mtu", 0},
                                        {"mac", ""},
                                        {"master", "lan"}}));
}

TEST(VxlanStep, DescribeWithoutRemotesSaysSo) {
  step::CreateVxlan s = two_remotes();
  s.remotes.clear();
  EXPECT_NE(describe(Step{s}).find("to no other host"), std::string::npos);
}

TEST(VxlanEncode, DeviceCarriesVniLocalPortInNetworkOrderAndTheSwitchNamespace) {
  VxlanLink v{"vx-lan", 4242, A("192.168.77.1"), 4789, 1450, "02:00:00:00:00:aa"};
  auto r = rtnl::vxlan_add(v, 42);
  ASSERT_TRUE(r) << r.error().str();
  const nlmsghdr* h = r->header();
  EXPECT_EQ(h->nlmsg_len, r->bytes.size());
  EXPECT_EQ(h->nlmsg_type, RTM_NEWLINK);
  EXPECT_EQ(h->nlmsg_flags & (NLM_F_CREATE | NLM_F_EXCL), NLM_F_CREATE | NLM_F_EXCL);
  Attrs a = test::attrs_of(h, sizeof(ifinfomsg));
  EXPECT_EQ(test::str(a.at(IFLA_IFNAME)), "vx-lan");
  ASSERT_TRUE(a.count(IFLA_NET_NS_FD)) << "born in the switch's namespace, never here";
  EXPECT_EQ(mnl_attr_get_u32(a[IFLA_NET_NS_FD]), 42u);
  EXPECT_EQ(mnl_attr_get_u32(a.at(IFLA_MTU)), 1450u);
  EXPECT_EQ(payload(a.at(IFLA_ADDRESS)), (std::vector<uint8_t>{2, 0, 0, 0, 0, 0xaa}));
  Attrs info = nested(a.at(IFLA_LINKINFO));
  EXPECT_EQ(test::str(info.at(IFLA_INFO_KIND)), "vxlan");
  Attrs data = nested(info.at(IFLA_INFO_DATA));
  EXPECT_EQ(mnl_attr_get_u32(data.at(IFLA_VXLAN_ID)), 4242u);
  EXPECT_EQ(payload(data.at(IFLA_VXLAN_LOCAL)), bytes_of(A("192.168.77.1")));
  EXPECT_FALSE(data.count(IFLA_VXLAN_LOCAL6));
  EXPECT_EQ(mnl_attr_get_u16(data.at(IFLA_VXLAN_PORT)), htons(4789)) << "network order";
  // No group, no remote: where to send is the FDB's (head-end replication); learning is
  // left to the kernel's default (on), as `ip link add ... type vxlan` leaves it.
  EXPECT_FALSE(data.count(IFLA_VXLAN_GROUP));
  EXPECT_FALSE(data.count(IFLA_VXLAN_LEARNING));
}

TEST(VxlanEncode, Ipv6LocalGoesIntoLocal6AndDefaultsStayTheKernels) {
  VxlanLink v{"vx6", 7, A("fd00::1"), 4789, 0, ""};
  auto r = rtnl::vxlan_add(v, -1);
  ASSERT_TRUE(r) << r.error().str();
  Attrs a = test::attrs_of(r->header(), sizeof(ifinfomsg));
  EXPECT_FALSE(a.count(IFLA_NET_NS_FD));
  EXPECT_FALSE(a.count(IFLA_MTU));
  EXPECT_FALSE(a.count(IFLA_ADDRESS));
  Attrs data = nested(nested(a.at(IFLA_LINKINFO)).at(IFLA_INFO_DATA));
  EXPECT_EQ(payload(data.at(IFLA_VXLAN_LOCAL6)), bytes_of(A("fd00::1")));
  EXPECT_FALSE(data.count(IFLA_VXLAN_LOCAL));
}

TEST(VxlanEncode, RefusesWhatTheKernelWouldRefuseLessClearly) {
  EXPECT_FALSE(rtnl::vxlan_add(VxlanLink{"vx", 0, A("10.0.0.1"), 4789, 0, ""}, -1));
  EXPECT_FALSE(rtnl::vxlan_add(VxlanLink{"vx", 1u << 24, A("10.0.0.1"), 4789, 0, ""}, -1));
  EXPECT_TRUE(rtnl::vxlan_add(VxlanLink{"vx", (1u << 24) - 1, A("10.0.0.1"), 4789, 0, ""}, -1));
  EXPECT_FALSE(rtnl::vxlan_add(VxlanLink{"vx", 5, IpAddr{}, 4789, 0, ""}, -1));
  EXPECT_FALSE(rtnl::vxlan_add(VxlanLink{"vx", 5, A("10.0.0.1"), 0, 0, ""}, -1));
  auto bad_mac = rtnl::vxlan_add(VxlanLink{"vx", 5, A("10.0.0.1"), 4789, 0, "nope"}, -1);
  ASSERT_FALSE(bad_mac);
  EXPECT_NE(bad_mac.error().message.find("nope"), std::string::npos);
}

TEST(VxlanEncode, FdbEntryIsAllZeroToTheRemoteSelfPermanentAppended) {
  auto r = rtnl::fdb_append(9, "vx-lan", A("192.168.77.2"));
  ASSERT_TRUE(r) << r.error().str();
  const nlmsghdr* h = r->header();
  EXPECT_EQ(h->nlmsg_type, RTM_NEWNEIGH);
  EXPECT_EQ(h->nlmsg_flags & (NLM_F_CREATE | NLM_F_APPEND | NLM_F_EXCL | NLM_F_REPLACE),
            NLM_F_CREATE | NLM_F_APPEND)
      << "appended: one entry per remote under the same all-zero MAC";
  const auto* nd = static_cast<const ndmsg*>(mnl_nlmsg_get_payload(h));
  EXPECT_EQ(nd->ndm_family, AF_BRIDGE);
  EXPECT_EQ(nd->ndm_ifindex, 9);
  EXPECT_EQ(nd->ndm_flags, NTF_SELF) << "the device's own table, not the bridge's";
  EXPECT_EQ(nd->ndm_state, NUD_PERMANENT | NUD_NOARP);
  Attrs a = test::attrs_of(h, sizeof(ndmsg));
  EXPECT_EQ(payload(a.at(NDA_LLADDR)), std::vector<uint8_t>(6, 0));
  EXPECT_EQ(payload(a.at(NDA_DST)), bytes_of(A("192.168.77.2")));
  EXPECT_FALSE(a.count(NDA_MASTER));

  auto r6 = rtnl::fdb_append(9, "vx-lan", A("fd00::2"));
  ASSERT_TRUE(r6) << r6.error().str();
  EXPECT_EQ(static_cast<const ndmsg*>(mnl_nlmsg_get_payload(r6->header()))->ndm_family, AF_BRIDGE);
  EXPECT_EQ(payload(test::attrs_of(r6->header(), sizeof(ndmsg)).at(NDA_DST)), bytes_of(A("fd00::2")));
}

TEST(VxlanHints, VniTakenPortTakenAndNoVxlanInTheKernel) {
  VxlanLink v{"vx-lan", 4242, A("192.168.77.1"), 4789, 0, ""};
  auto r = rtnl::vxlan_add(v, -1);
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->hint);
  std::string exists = r->hint(EEXIST, "");
  EXPECT_NE(exists.find("a VXLAN device with that VNI already exists on this host"), std::string::npos);
  EXPECT_NE(exists.find("uses VNI 4242"), std::string::npos) << exists;
  EXPECT_NE(exists.find("labctl down"), std::string::npos);
  EXPECT_NE(r->hint(EADDRINUSE, "").find("UDP port 4789"), std::string::npos);
  EXPECT_NE(r->hint(EOPNOTSUPP, "").find("this kernel lacks VXLAN (CONFIG_VXLAN"), std::string::npos);
  EXPECT_NE(r->hint(EAFNOSUPPORT, "").find("this kernel lacks VXLAN (CONFIG_VXLAN"), std::string::npos);
  EXPECT_NE(r->hint(ERANGE, "").find("at most 15"), std::string::npos) << "the name's hint stays";
  EXPECT_NE(rtnl::link_hint(EADDRINUSE, "").find("UDP port"), std::string::npos)
      << "bringing a VXLAN device up binds its port";
}

}  // namespace
}  // namespace labctl
