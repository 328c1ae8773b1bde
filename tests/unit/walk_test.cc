// The walk from hand-built frames of each LVS method: hops in time order, the changes the
// director made, the reasons given, the reply's path, and broken labs (where the packet was
// last seen).
#include "labctl/trace/walk.h"

#include <netinet/in.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/frames.h"

namespace labctl {
namespace {

using test::Bytes;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::HasSubstr;

const std::string kClient = "02:00:00:00:00:0a", kDir0 = "02:00:00:00:00:02", kDir1 = "02:00:00:00:01:02",
                  kRs1 = "02:00:00:00:00:0b", kRt0 = "02:00:00:00:00:01", kRt1 = "02:00:00:00:01:01";
constexpr uint32_t kIsn = 1000, kRsIsn = 7000;
constexpr uint16_t kPort = 40000;

IpAddr ip(const std::string& s) { return *IpAddr::parse(s); }

// A hop's changes in the words `labctl trace` prints.
std::vector<std::string> words(const std::vector<PacketChange>& changes) {
  std::vector<std::string> out;
  for (const auto& c : changes) out.push_back(to_string(c));
  return out;
}

struct Lab {
  TraceSetup s;
  std::vector<TracedFrame> frames;
  int64_t t = 1'000'000'000;
  size_t iface(const std::string& node, const std::string& name) {
    for (size_t i = 0; i < s.ifaces.size(); ++i)
      if (s.ifaces[i].node == node && s.ifaces[i].iface == name) return i;
    ADD_FAILURE() << "no iface " << node << ":" << name;
    return 0;
  }
  void see(const std::string& node, const std::string& name, Direction d, const Bytes& b, bool raw = false) {
    t += 10'000;
    frames.push_back({iface(node, name), d, t,
                      decode_packet(raw ? LinkType::Raw : LinkType::Ethernet, b.data(), b.size(),
                                    static_cast<uint32_t>(b.size()))});
  }
};

Bytes syn(const std::string& smac, const std::string& dmac, const std::string& src, const std::string& dst,
          uint16_t dport = 80, uint8_t ttl = 64) {
  return test::eth(smac, dmac, 0x0800, test::ipv4(src, dst, IPPROTO_TCP, test::tcp(kPort, dport, 0x02, kIsn, 0), ttl));
}
Bytes synack(const std::string& smac, const std::string& dmac, const std::string& src, const std::string& dst,
             uint16_t sport = 80, uint8_t ttl = 64) {
  return test::eth(smac, dmac, 0x0800,
                   test::ipv4(src, dst, IPPROTO_TCP, test::tcp(sport, kPort, 0x12, kRsIsn, kIsn + 1), ttl));
}

Lab dr_lab() {
  Lab l;
  l.s.lab = "dr-demo";
  l.s.service = "web";
  l.s.method = FwdMethod::Dr;
  l.s.vip = ip("10.10.0.100");
  l.s.port = 80;
  l.s.client = "client";
  l.s.director = "director";
  l.s.ifaces = {{"client", "eth0", kClient}, {"director", "eth0", kDir0}, {"rs1", "eth0", kRs1}};
  l.s.addr_owner = {{ip("10.10.0.10"), "client"}, {ip("10.10.0.2"), "director"}, {ip("10.10.0.11"), "rs1"}};
  return l;
}

TEST(Walk, DrRewritesOnlyTheDestinationMacAndTheReplyBypassesTheDirector) {
  Lab l = dr_lab();
  // Some noise first: another connection and ARP, which the walk must ignore.
  l.see("client", "eth0", Direction::Out,
        test::eth(kClient, "ff:ff:ff:ff:ff:ff", 0x0806,
                  test::arp(1, kClient, "10.10.0.10", "00:00:00:00:00:00", "10.10.0.100")));
  l.see("client", "eth0", Direction::Out, syn(kClient, kDir0, "10.10.0.10", "10.10.0.100"));
  l.see("director", "eth0", Direction::In, syn(kClient, kDir0, "10.10.0.10", "10.10.0.100"));
  l.see("director", "eth0", Direction::Out, syn(kDir0, kRs1, "10.10.0.10", "10.10.0.100"));
  l.see("rs1", "eth0", Direction::In, syn(kDir0, kRs1, "10.10.0.10", "10.10.0.100"));
  l.see("rs1", "eth0", Direction::Out, synack(kRs1, kClient, "10.10.0.100", "10.10.0.10"));
  l.see("client", "eth0", Direction::In, synack(kRs1, kClient, "10.10.0.100", "10.10.0.10"));
  // Frames arrive per handle, not in time order: the walk sorts them.
  std::reverse(l.frames.begin(), l.frames.end());
  Walk w = build_walk(l.s, l.frames);
  ASSERT_EQ(w.request.size(), 4u);
  EXPECT_EQ(w.request[0].node, "client");
  EXPECT_EQ(w.request[2].node, "director");
  EXPECT_EQ(w.request[2].dir, Direction::Out);
  EXPECT_THAT(w.request[1].changes, testing::IsEmpty());
  EXPECT_THAT(words(w.request[2].changes),
              Contains(HasSubstr(
                  "dst MAC 02:00:00:00:00:02 (director:eth0) -> 02:00:00:00:00:0b (rs1:eth0)")));
  for (const auto& c : words(w.request[2].changes)) EXPECT_THAT(c, HasSubstr("MAC"));
  EXPECT_THAT(w.request[2].why, AllOf(HasSubstr("DR: the director rewrote only the destination MAC, to rs1's"),
                                      HasSubstr("the IP addresses and ports are unchanged (10.10.0.10 -> 10.10.0.100)")));
  ASSERT_EQ(w.reply.size(), 2u);
  EXPECT_EQ(w.reply[0].node, "rs1");
  EXPECT_TRUE(w.answered);
  EXPECT_FALSE(w.reply_via_director);
  EXPECT_TRUE(w.request_via_director);
  EXPECT_EQ(w.real_server, "rs1");
  EXPECT_TRUE(w.ok);
  EXPECT_EQ(*w.client_port, kPort);
  EXPECT_THAT(w.findings, Contains(HasSubstr("did not pass the director (as DR promises)")));
  auto j = walk_json(w);
  EXPECT_EQ(j["request"][2]["dst_mac"], kRs1);
  EXPECT_EQ(j["request"][2]["dst"], "10.10.0.100");
  EXPECT_EQ(j["reply_via_director"], false);
  const std::string text = render_walk(w);
  EXPECT_THAT(text, HasSubstr("director:eth0  out"));
  EXPECT_THAT(text, HasSubstr("the walk is what DR promises"));
}

TEST(Walk, NatRewritesTheDestinationAndTheReplysSource) {
  Lab l;
  l.s.lab = "nat-demo";
  l.s.service = "web";
  l.s.method = FwdMethod::Nat;
  l.s.vip = ip("192.168.10.100");
  l.s.port = 80;
  l.s.client = "client";
  l.s.director = "director";
  l.s.ifaces = {{"client", "eth0", kClient}, {"director", "eth0", kDir0}, {"director", "eth1", kDir1}, {"rs1", "eth0", kRs1}};
  l.s.addr_owner = {{ip("10.20.0.11"), "rs1"}};
  const std::string cip = "192.168.10.10", vip = "192.168.10.100", rip = "10.20.0.11";
  l.see("client", "eth0", Direction::Out, syn(kClient, kDir0, cip, vip));
  l.see("director", "eth0", Direction::In, syn(kClient, kDir0, cip, vip));
  l.see("director", "eth1", Direction::Out, syn(kDir1, kRs1, cip, rip, 80, 63));
  l.see("rs1", "eth0", Direction::In, syn(kDir1, kRs1, cip, rip, 80, 63));
  l.see("rs1", "eth0", Direction::Out, synack(kRs1, kDir1, rip, cip));
  l.see("director", "eth1", Direction::In, synack(kRs1, kDir1, rip, cip));
  l.see("director", "eth0", Direction::Out, synack(kDir0, kClient, vip, cip, 80, 63));
  l.see("client", "eth0", Direction::In, synack(kDir0, kClient, vip, cip, 80, 63));
  Walk w = build_walk(l.s, l.frames);
  ASSERT_EQ(w.request.size(), 4u);
  EXPECT_THAT(words(w.request[2].changes),
              Contains(HasSubstr("dst IP 192.168.10.100 (VIP) -> 10.20.0.11 (rs1)")));
  EXPECT_THAT(w.request[2].why, HasSubstr("NAT: the director rewrote the destination VIP -> RIP (10.20.0.11, rs1)"));
  ASSERT_EQ(w.reply.size(), 4u);
  EXPECT_THAT(words(w.reply[2].changes),
              Contains(HasSubstr("src IP 10.20.0.11 (rs1) -> 192.168.10.100 (VIP)")));
  EXPECT_THAT(w.reply[2].why, HasSubstr("NAT: the director rewrote the reply's source RIP -> VIP"));
  EXPECT_TRUE(w.reply_via_director);
  EXPECT_TRUE(w.ok);
  EXPECT_THAT(w.findings, Contains(HasSubstr("passed the director (as NAT promises)")));
}

TEST(Walk, TunWrapsInAnOuterHeaderAndTheRealServerUnwrapsIt) {
  Lab l;
  l.s.lab = "tun-demo";
  l.s.service = "web";
  l.s.method = FwdMethod::Tun;
  l.s.vip = ip("10.30.1.100");
  l.s.port = 80;
  l.s.client = "client";
  l.s.director = "director";
  l.s.ifaces = {{"client", "eth0", kClient}, {"director", "eth0", kDir0}, {"router", "eth0", kRt0},
                {"router", "eth1", kRt1},    {"rs1", "eth0", kRs1},      {"rs1", "tunl0", ""}};
  l.s.addr_owner = {{ip("10.30.1.2"), "director"}, {ip("10.30.2.11"), "rs1"}};
  const std::string cip = "10.30.1.10", vip = "10.30.1.100", dip = "10.30.1.2", rip = "10.30.2.11";
  const Bytes inner = test::ipv4(cip, vip, IPPROTO_TCP, test::tcp(kPort, 80, 0x02, kIsn, 0));
  l.see("client", "eth0", Direction::Out, syn(kClient, kDir0, cip, vip));
  l.see("director", "eth0", Direction::In, syn(kClient, kDir0, cip, vip));
  l.see("director", "eth0", Direction::Out, test::eth(kDir0, kRt0, 0x0800, test::ipv4(dip, rip, 4, inner, 64)));
  l.see("router", "eth0", Direction::In, test::eth(kDir0, kRt0, 0x0800, test::ipv4(dip, rip, 4, inner, 64)));
  l.see("router", "eth1", Direction::Out, test::eth(kRt1, kRs1, 0x0800, test::ipv4(dip, rip, 4, inner, 63)));
  l.see("rs1", "eth0", Direction::In, test::eth(kRt1, kRs1, 0x0800, test::ipv4(dip, rip, 4, inner, 63)));
  l.see("rs1", "tunl0", Direction::In, inner, true);
  l.frames.back().t_ns = l.frames[l.frames.size() - 2].t_ns;  // tunl0 keeps the skb's timestamp
  std::swap(l.frames.back(), l.frames[l.frames.size() - 2]);
  l.see("rs1", "eth0", Direction::Out, synack(kRs1, kRt1, vip, cip));
  l.see("router", "eth1", Direction::In, synack(kRs1, kRt1, vip, cip));
  l.see("router", "eth0", Direction::Out, synack(kRt0, kClient, vip, cip, 80, 63));
  l.see("client", "eth0", Direction::In, synack(kRt0, kClient, vip, cip, 80, 63));
  Walk w = build_walk(l.s, l.frames);
  ASSERT_EQ(w.request.size(), 7u);
  EXPECT_THAT(words(w.request[2].changes),
              Contains(HasSubstr(
                  "wrapped in an outer IP header 10.30.1.2 (director) -> 10.30.2.11 (rs1)")));
  EXPECT_THAT(w.request[2].why, HasSubstr("TUN: the director wrapped the packet, unchanged inside (10.30.1.10 -> 10.30.1.100)"));
  EXPECT_THAT(w.request[4].why, HasSubstr("router routed it"));
  EXPECT_THAT(
      words(w.request[6].changes),
      Contains(HasSubstr("outer IP header 10.30.1.2 (director) -> 10.30.2.11 (rs1) removed")));
  EXPECT_THAT(w.request[6].why, HasSubstr("rs1 took the outer header off (tunl0)"));
  EXPECT_EQ(w.real_server, "rs1");
  EXPECT_FALSE(w.reply_via_director);
  EXPECT_TRUE(w.ok);
  auto j = walk_json(w);
  EXPECT_EQ(j["request"][2]["outer"]["src"], dip);
  EXPECT_EQ(j["request"][2]["outer"]["dst"], rip);
  EXPECT_EQ(j["request"][2]["src"], cip);
  EXPECT_EQ(j["request"][2]["dst"], vip);
  EXPECT_TRUE(j["request"][6]["outer"].is_null());
}

TEST(Walk, NoAnswerSaysWhereThePacketWasLastSeen) {
  Lab l = dr_lab();
  l.see("client", "eth0", Direction::Out, syn(kClient, kDir0, "10.10.0.10", "10.10.0.100"));
  l.see("director", "eth0", Direction::In, syn(kClient, kDir0, "10.10.0.10", "10.10.0.100"));
  l.see("client", "eth0", Direction::Out, syn(kClient, kDir0, "10.10.0.10", "10.10.0.100"));  // retransmitted
  Walk w = build_walk(l.s, l.frames);
  EXPECT_FALSE(w.answered);
  EXPECT_FALSE(w.ok);
  EXPECT_EQ(w.retransmissions, 1);
  EXPECT_THAT(w.findings, Contains(HasSubstr("last seen on director:eth0 (in)")));
  EXPECT_THAT(w.findings, Contains(HasSubstr("the director received it but did not forward it")));
  EXPECT_THAT(render_walk(w), HasSubstr("NOT what DR promises"));
}

TEST(Walk, ARealServerAnsweringArpForTheVipIsCaught) {
  Lab l = dr_lab();
  l.see("client", "eth0", Direction::Out, syn(kClient, kRs1, "10.10.0.10", "10.10.0.100"));
  l.see("rs1", "eth0", Direction::In, syn(kClient, kRs1, "10.10.0.10", "10.10.0.100"));
  l.see("rs1", "eth0", Direction::Out, synack(kRs1, kClient, "10.10.0.100", "10.10.0.10"));
  l.see("client", "eth0", Direction::In, synack(kRs1, kClient, "10.10.0.100", "10.10.0.10"));
  Walk w = build_walk(l.s, l.frames);
  EXPECT_TRUE(w.answered);
  EXPECT_FALSE(w.request_via_director);
  EXPECT_FALSE(w.ok);
  EXPECT_THAT(w.findings, Contains(HasSubstr("never reached the director: the client sent it to 02:00:00:00:00:0b (rs1:eth0)")));
}

TEST(Walk, AResetInsteadOfAnAnswerIsNamed) {
  Lab l = dr_lab();
  l.see("client", "eth0", Direction::Out, syn(kClient, kDir0, "10.10.0.10", "10.10.0.100"));
  l.see("director", "eth0", Direction::In, syn(kClient, kDir0, "10.10.0.10", "10.10.0.100"));
  l.see("director", "eth0", Direction::Out, syn(kDir0, kRs1, "10.10.0.10", "10.10.0.100"));
  l.see("rs1", "eth0", Direction::In, syn(kDir0, kRs1, "10.10.0.10", "10.10.0.100"));
  l.see("rs1", "eth0", Direction::Out,
        test::eth(kRs1, kClient, 0x0800,
                  test::ipv4("10.10.0.100", "10.10.0.10", IPPROTO_TCP, test::tcp(80, kPort, 0x14, 0, kIsn + 1))));
  Walk w = build_walk(l.s, l.frames);
  EXPECT_FALSE(w.answered);
  EXPECT_THAT(w.findings, Contains(HasSubstr("last seen on rs1:eth0 (in)")));
  EXPECT_THAT(w.findings, Contains(HasSubstr("rs1 answered with a TCP reset from 10.10.0.100:80")));
}

TEST(Walk, ATunRealServerThatUnwrapsButDoesNotAnswerPointsAtRpFilter) {
  Lab l;
  l.s.lab = "tun-demo-rpfilter";
  l.s.method = FwdMethod::Tun;
  l.s.vip = ip("10.30.1.100");
  l.s.port = 80;
  l.s.client = "client";
  l.s.director = "director";
  l.s.ifaces = {{"client", "eth0", kClient}, {"director", "eth0", kDir0}, {"rs1", "eth0", kRs1}, {"rs1", "tunl0", ""}};
  const Bytes inner = test::ipv4("10.30.1.10", "10.30.1.100", IPPROTO_TCP, test::tcp(kPort, 80, 0x02, kIsn, 0));
  l.see("client", "eth0", Direction::Out, syn(kClient, kDir0, "10.30.1.10", "10.30.1.100"));
  l.see("director", "eth0", Direction::In, syn(kClient, kDir0, "10.30.1.10", "10.30.1.100"));
  l.see("director", "eth0", Direction::Out, test::eth(kDir0, kRs1, 0x0800, test::ipv4("10.30.1.2", "10.30.2.11", 4, inner)));
  l.see("rs1", "eth0", Direction::In, test::eth(kDir0, kRs1, 0x0800, test::ipv4("10.30.1.2", "10.30.2.11", 4, inner)));
  l.see("rs1", "tunl0", Direction::In, inner, true);
  Walk w = build_walk(l.s, l.frames);
  EXPECT_FALSE(w.ok);
  EXPECT_THAT(w.findings, Contains(HasSubstr("last seen on rs1:tunl0 (in)")));
  EXPECT_THAT(w.findings, Contains(HasSubstr("rp_filter must be 0 on tunl0 and all")));
}

TEST(Walk, NoRequestNamesTheUnansweredArp) {
  Lab l = dr_lab();
  for (int i = 0; i < 3; ++i)
    l.see("client", "eth0", Direction::Out,
          test::eth(kClient, "ff:ff:ff:ff:ff:ff", 0x0806,
                    test::arp(1, kClient, "10.10.0.10", "00:00:00:00:00:00", "10.10.0.100")));
  Walk w = build_walk(l.s, l.frames);
  EXPECT_FALSE(w.client_port);
  EXPECT_FALSE(w.ok);
  ASSERT_EQ(w.findings.size(), 1u);
  EXPECT_THAT(w.findings[0], HasSubstr("sent no TCP SYN to 10.10.0.100:80"));
  EXPECT_THAT(w.findings[0], HasSubstr("who-has 10.10.0.100 (VIP) 3 times and nobody answered"));
}

TEST(Walk, NatReplyFromTheRipIsCalledOut) {
  Lab l;
  l.s.lab = "nat-demo-nogw";
  l.s.method = FwdMethod::Nat;
  l.s.vip = ip("192.168.10.100");
  l.s.port = 80;
  l.s.client = "client";
  l.s.director = "director";
  l.s.ifaces = {{"client", "eth0", kClient}, {"director", "eth0", kDir0}, {"director", "eth1", kDir1}, {"rs1", "eth0", kRs1}};
  const std::string cip = "192.168.10.10", vip = "192.168.10.100", rip = "10.20.0.11";
  l.see("client", "eth0", Direction::Out, syn(kClient, kDir0, cip, vip));
  l.see("director", "eth0", Direction::In, syn(kClient, kDir0, cip, vip));
  l.see("director", "eth1", Direction::Out, syn(kDir1, kRs1, cip, rip));
  l.see("rs1", "eth0", Direction::In, syn(kDir1, kRs1, cip, rip));
  l.see("rs1", "eth0", Direction::Out, synack(kRs1, "02:00:00:00:00:99", rip, cip));
  Walk w = build_walk(l.s, l.frames);
  EXPECT_FALSE(w.answered);
  EXPECT_THAT(w.findings, Contains(HasSubstr("the reply was last seen on rs1:eth0 (out)")));
  EXPECT_THAT(w.findings, Contains(HasSubstr("NAT replies must go back through the director")));
}

}  // namespace
}  // namespace labctl
