// The frame decoder on hand-built frames: every header the walk reads, encapsulation, and
// frames cut short at each layer.
#include "labctl/trace/packet.h"

#include <netinet/in.h>
#include <pcap/dlt.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/frames.h"

namespace labctl {
namespace {

using test::Bytes;
using ::testing::HasSubstr;

Packet decode_eth(const Bytes& b) {
  return decode_packet(LinkType::Ethernet, b.data(), b.size(), static_cast<uint32_t>(b.size()));
}

const std::string kClientMac = "02:00:00:00:00:0a", kDirMac = "02:00:00:00:00:02", kRsMac = "02:00:00:00:00:0b";

TEST(Packet, DecodesEthernetIpv4TcpSyn) {
  Bytes f = test::eth(kClientMac, kDirMac, 0x0800,
                      test::ipv4("10.10.0.10", "10.10.0.100", IPPROTO_TCP, test::tcp(40000, 80, 0x02, 1000, 0), 63, 77));
  Packet p = decode_eth(f);
  ASSERT_TRUE(p.eth);
  EXPECT_EQ(mac_text(p.eth->src), kClientMac);
  EXPECT_EQ(mac_text(p.eth->dst), kDirMac);
  EXPECT_EQ(p.eth->ethertype, 0x0800);
  ASSERT_EQ(p.ip.size(), 1u);
  EXPECT_EQ(p.ip[0].src.str(), "10.10.0.10");
  EXPECT_EQ(p.ip[0].dst.str(), "10.10.0.100");
  EXPECT_EQ(p.ip[0].ttl, 63);
  EXPECT_EQ(p.ip[0].id, 77);
  EXPECT_EQ(p.outer(), nullptr);
  ASSERT_TRUE(p.l4);
  EXPECT_EQ(p.l4->proto, IPPROTO_TCP);
  EXPECT_EQ(p.l4->sport, 40000);
  EXPECT_EQ(p.l4->dport, 80);
  EXPECT_EQ(p.l4->seq, 1000u);
  EXPECT_EQ(p.l4->tcp_flags, 0x02);
  EXPECT_EQ(p.l4->payload_len, 0u);
  EXPECT_TRUE(p.truncated.empty());
  EXPECT_EQ(packet_summary(p),
            "02:00:00:00:00:0a > 02:00:00:00:00:02, 10.10.0.10.40000 > 10.10.0.100.80: TCP [S] seq 1000, len 0 ttl 63");
}

TEST(Packet, DecodesIpipOuterAndInnerHeaders) {
  Bytes inner = test::ipv4("10.30.1.10", "10.30.1.100", IPPROTO_TCP, test::tcp(40000, 80, 0x02, 5, 0));
  Bytes f = test::eth(kDirMac, kRsMac, 0x0800, test::ipv4("10.30.1.2", "10.30.2.11", 4, inner, 64));
  Packet p = decode_eth(f);
  ASSERT_EQ(p.ip.size(), 2u);
  ASSERT_NE(p.outer(), nullptr);
  EXPECT_EQ(p.outer()->src.str(), "10.30.1.2");
  EXPECT_EQ(p.outer()->dst.str(), "10.30.2.11");
  EXPECT_EQ(p.outer()->proto, 4);
  EXPECT_EQ(p.inner()->src.str(), "10.30.1.10");
  EXPECT_EQ(p.inner()->dst.str(), "10.30.1.100");
  ASSERT_TRUE(p.l4);
  EXPECT_EQ(p.l4->dport, 80);
  EXPECT_THAT(packet_summary(p), HasSubstr("IPIP 10.30.1.2 > 10.30.2.11 ttl 64: 10.30.1.10.40000 > 10.30.1.100.80: TCP [S]"));
  auto j = packet_json(p);
  ASSERT_EQ(j["ip"].size(), 2u);
  EXPECT_EQ(j["ip"][0]["dst"], "10.30.2.11");
  EXPECT_EQ(j["ip"][1]["dst"], "10.30.1.100");
}

TEST(Packet, DecodesRawIpAsOnTunl0) {
  Bytes f = test::ipv4("10.30.1.10", "10.30.1.100", IPPROTO_TCP, test::tcp(1, 80, 0x12, 9, 6));
  Packet p = decode_packet(LinkType::Raw, f.data(), f.size(), static_cast<uint32_t>(f.size()));
  EXPECT_FALSE(p.eth);
  ASSERT_EQ(p.ip.size(), 1u);
  EXPECT_EQ(p.l4->tcp_flags, 0x12);
  EXPECT_EQ(p.l4->ack, 6u);
  EXPECT_EQ(tcp_flags_text(p.l4->tcp_flags), "S.");
  EXPECT_EQ(link_type_of_dlt(DLT_RAW), LinkType::Raw);
  EXPECT_EQ(link_type_of_dlt(DLT_EN10MB), LinkType::Ethernet);
  EXPECT_FALSE(link_type_of_dlt(DLT_IEEE802_11));
}

TEST(Packet, DecodesArpRequestAndReply) {
  Packet req = decode_eth(test::eth(kClientMac, "ff:ff:ff:ff:ff:ff", 0x0806,
                                    test::arp(1, kClientMac, "10.10.0.10", "00:00:00:00:00:00", "10.10.0.100")));
  ASSERT_TRUE(req.arp);
  EXPECT_EQ(req.arp->op, 1);
  EXPECT_EQ(req.arp->target_ip.str(), "10.10.0.100");
  EXPECT_THAT(packet_summary(req), HasSubstr("ARP who-has 10.10.0.100 tell 10.10.0.10"));
  Packet rep = decode_eth(test::eth(kDirMac, kClientMac, 0x0806,
                                    test::arp(2, kDirMac, "10.10.0.100", kClientMac, "10.10.0.10")));
  ASSERT_TRUE(rep.arp);
  EXPECT_EQ(mac_text(rep.arp->sender_mac), kDirMac);
  EXPECT_THAT(packet_summary(rep), HasSubstr("ARP reply 10.10.0.100 is-at 02:00:00:00:00:02"));
}

TEST(Packet, DecodesUdpOverIpv6AndVlanTags) {
  Bytes ip6 = test::ipv6("fd00::10", "fd00::100", IPPROTO_UDP, test::udp(5353, 53, 12));
  Bytes tagged;
  test::put_mac(tagged, kDirMac);
  test::put_mac(tagged, kClientMac);
  test::put16(tagged, 0x8100);
  test::put16(tagged, 42);
  test::put16(tagged, 0x86dd);
  tagged.insert(tagged.end(), ip6.begin(), ip6.end());
  Packet p = decode_eth(tagged);
  ASSERT_TRUE(p.eth && p.eth->vlan);
  EXPECT_EQ(*p.eth->vlan, 42);
  ASSERT_EQ(p.ip.size(), 1u);
  EXPECT_EQ(p.ip[0].dst.str(), "fd00::100");
  ASSERT_TRUE(p.l4);
  EXPECT_EQ(p.l4->proto, IPPROTO_UDP);
  EXPECT_EQ(p.l4->payload_len, 12u);
  EXPECT_THAT(packet_summary(p), HasSubstr("[fd00::10].5353 > [fd00::100].53: UDP, len 12"));
}

TEST(Packet, DecodesIcmpEcho) {
  Bytes icmp = {8, 0, 0, 0, 0, 1, 0, 1};
  Packet p = decode_eth(test::eth(kClientMac, kDirMac, 0x0800, test::ipv4("10.0.0.1", "10.0.0.2", IPPROTO_ICMP, icmp)));
  ASSERT_TRUE(p.l4);
  EXPECT_EQ(p.l4->icmp_type, 8);
  EXPECT_THAT(packet_summary(p), HasSubstr("ICMP echo request"));
}

// A frame cut at any byte decodes as far as it goes and says where it stopped, never
// reading past the end (ASan runs this tier too).
TEST(Packet, EveryTruncationStopsCleanly) {
  Bytes inner = test::ipv4("10.30.1.10", "10.30.1.100", IPPROTO_TCP, test::tcp(40000, 80, 0x02, 5, 0));
  Bytes f = test::eth(kDirMac, kRsMac, 0x0800, test::ipv4("10.30.1.2", "10.30.2.11", 4, inner));
  for (size_t n = 0; n < f.size(); ++n) {
    Bytes cut(f.begin(), f.begin() + static_cast<long>(n));
    Packet p = decode_packet(LinkType::Ethernet, cut.data(), cut.size(), static_cast<uint32_t>(f.size()));
    EXPECT_FALSE(p.truncated.empty()) << "cut at " << n;
    EXPECT_THAT(packet_summary(p), HasSubstr("cut short")) << "cut at " << n;
  }
  EXPECT_TRUE(decode_eth(f).truncated.empty());
  Packet short_eth = decode_eth(Bytes(10, 0));
  EXPECT_EQ(short_eth.truncated, "Ethernet header");
}

TEST(Packet, NestedEncapsulationIsBounded) {
  Bytes b = test::ipv4("10.0.0.1", "10.0.0.2", IPPROTO_TCP, test::tcp(1, 2, 0x02, 0, 0));
  for (int i = 0; i < 6; ++i) b = test::ipv4("10.0.0.1", "10.0.0.2", 4, b);
  Packet p = decode_packet(LinkType::Raw, b.data(), b.size(), static_cast<uint32_t>(b.size()));
  EXPECT_EQ(p.ip.size(), 4u);
  EXPECT_THAT(p.truncated, HasSubstr("nested"));
}

}  // namespace
}  // namespace labctl
