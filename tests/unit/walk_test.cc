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


// One TCP segment on a link: `ips` is "SRC DST", flags as in the header.
Bytes seg(const std::string& smac, const std::string& dmac, const std::string& src, const std::string& dst,
          uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq, uint32_t ack, size_t len = 0) {
  return test::eth(smac, dmac, 0x0800, test::ipv4(src, dst, IPPROTO_TCP, test::tcp(sport, dport, flags, seq, ack, len)));
}

const std::string kProxy = "02:00:00:00:00:22", kApp = "02:00:00:00:00:33";
constexpr uint8_t kF = 0x01, kS = 0x02, kP = 0x08, kA = 0x10;
constexpr uint16_t kUp = 50000;
constexpr uint32_t kProxyIsn = 5000, kAppIsn = 9000;

// client -> proxy:80 (nginx) -> app1:8080 on one switch, no IPVS: a plain --to trace.
Lab proxy_lab() {
  Lab l;
  l.s.lab = "tiers";
  l.s.vip = ip("10.81.0.2");
  l.s.port = 80;
  l.s.client = "client";
  l.s.ifaces = {{"client", "eth0", kClient}, {"proxy", "eth0", kProxy}, {"app1", "eth0", kApp}};
  l.s.addr_owner = {{ip("10.81.0.10"), "client"}, {ip("10.81.0.2"), "proxy"}, {ip("10.81.0.11"), "app1"}};
  const std::string c = "10.81.0.10", px = "10.81.0.2", app = "10.81.0.11";
  // Each segment seen leaving one node and reaching the other.
  auto c2p = [&](uint8_t f, uint32_t sq, uint32_t ak, size_t n = 0) {
    l.see("client", "eth0", Direction::Out, seg(kClient, kProxy, c, px, kPort, 80, f, sq, ak, n));
    l.see("proxy", "eth0", Direction::In, seg(kClient, kProxy, c, px, kPort, 80, f, sq, ak, n));
  };
  auto p2c = [&](uint8_t f, uint32_t sq, uint32_t ak, size_t n = 0) {
    l.see("proxy", "eth0", Direction::Out, seg(kProxy, kClient, px, c, 80, kPort, f, sq, ak, n));
    l.see("client", "eth0", Direction::In, seg(kProxy, kClient, px, c, 80, kPort, f, sq, ak, n));
  };
  auto p2a = [&](uint8_t f, uint32_t sq, uint32_t ak, size_t n = 0) {
    l.see("proxy", "eth0", Direction::Out, seg(kProxy, kApp, px, app, kUp, 8080, f, sq, ak, n));
    l.see("app1", "eth0", Direction::In, seg(kProxy, kApp, px, app, kUp, 8080, f, sq, ak, n));
  };
  auto a2p = [&](uint8_t f, uint32_t sq, uint32_t ak, size_t n = 0) {
    l.see("app1", "eth0", Direction::Out, seg(kApp, kProxy, app, px, 8080, kUp, f, sq, ak, n));
    l.see("proxy", "eth0", Direction::In, seg(kApp, kProxy, app, px, 8080, kUp, f, sq, ak, n));
  };
  c2p(kS, kIsn, 0);
  p2c(kS | kA, kRsIsn, kIsn + 1);
  c2p(kA, kIsn + 1, kRsIsn + 1);
  c2p(kP | kA, kIsn + 1, kRsIsn + 1, 78);
  // The proxy's own connection: a new source address and port.
  p2a(kS, kProxyIsn, 0);
  a2p(kS | kA, kAppIsn, kProxyIsn + 1);
  p2a(kA, kProxyIsn + 1, kAppIsn + 1);
  p2a(kP | kA, kProxyIsn + 1, kAppIsn + 1, 100);
  a2p(kF | kP | kA, kAppIsn + 1, kProxyIsn + 101, 120);  // the app answers and closes
  p2a(kA, kProxyIsn + 101, kAppIsn + 122);
  p2a(kF | kA, kProxyIsn + 101, kAppIsn + 122);
  a2p(kA, kAppIsn + 122, kProxyIsn + 102);
  // The proxy answers its client and closes too.
  p2c(kF | kP | kA, kRsIsn + 1, kIsn + 79, 130);
  c2p(kA, kIsn + 79, kRsIsn + 132);
  c2p(kF | kA, kIsn + 79, kRsIsn + 132);
  p2c(kA, kRsIsn + 132, kIsn + 80);
  return l;
}

TEST(Walk, AProxysOwnConnectionIsWalkedToo) {
  Lab l = proxy_lab();
  Walk w = build_walk(l.s, l.frames);
  EXPECT_TRUE(w.ok);
  EXPECT_EQ(w.real_server, "proxy");
  ASSERT_EQ(w.upstream.size(), 1u);
  const ProxyLeg& leg = w.upstream[0];
  EXPECT_EQ(leg.proxy, "proxy");
  EXPECT_EQ(leg.src, ip("10.81.0.2"));
  EXPECT_EQ(leg.sport, kUp);
  EXPECT_EQ(leg.dst, ip("10.81.0.11"));
  EXPECT_EQ(leg.dport, 8080);
  EXPECT_EQ(leg.server, "app1");
  EXPECT_TRUE(leg.answered);
  ASSERT_EQ(leg.request.size(), 2u);
  EXPECT_EQ(leg.request[0].node, "proxy");
  EXPECT_THAT(leg.request[0].why, HasSubstr("proxy opens a connection of its own to app1: a new source address and "
                                            "port (10.81.0.2:50000 -> 10.81.0.11:8080)"));
  ASSERT_EQ(leg.reply.size(), 2u);
  EXPECT_EQ(leg.reply[1].node, "proxy");
  ASSERT_TRUE(leg.server_answer);
  EXPECT_EQ(leg.server_answer->pkt.l4->payload_len, 120u);
  EXPECT_EQ(leg.server_answer->node, "proxy");
  ASSERT_TRUE(leg.proxy_answer);
  EXPECT_EQ(leg.proxy_answer->pkt.l4->payload_len, 130u);
  EXPECT_GT(leg.proxy_answer->t_ns, leg.server_answer->t_ns);
  EXPECT_THAT(w.findings, Contains(HasSubstr("a new source address and port 10.81.0.2:50000 (the client's was "
                                             "10.81.0.10:40000)")));
  EXPECT_FALSE(w.life);  // only with --all
  const std::string text = render_walk(w);
  EXPECT_THAT(text, HasSubstr("proxy's own connection onward (TCP SYN 10.81.0.2:50000 -> 10.81.0.11:8080"));
  EXPECT_THAT(text, HasSubstr("app1 answered proxy at +"));
  EXPECT_THAT(text, HasSubstr("proxy answered its own client at +"));
  auto j = walk_json(w);
  EXPECT_EQ(j["upstream"][0]["sport"], kUp);
  EXPECT_EQ(j["upstream"][0]["server"], "app1");
  EXPECT_EQ(j["upstream"][0]["server_answer"]["src"], "10.81.0.11");
  EXPECT_EQ(j["upstream"][0]["proxy_answer"]["dst"], "10.81.0.10");

  // Without the proxy's connection (a server that answers by itself) there is no leg.
  Lab plain = proxy_lab();
  std::erase_if(plain.frames, [](const TracedFrame& f) { return f.pkt.l4 && (f.pkt.l4->sport == kUp || f.pkt.l4->dport == kUp); });
  EXPECT_TRUE(build_walk(plain.s, plain.frames).upstream.empty());
}

TEST(Walk, AllFollowsBothConnectionsToTheirCloseAndNamesWhoHoldsTimeWait) {
  Lab l = proxy_lab();
  l.s.whole = true;
  Walk w = build_walk(l.s, l.frames);
  ASSERT_TRUE(w.life);
  const ConnectionLife& c = *w.life;
  EXPECT_EQ(c.seen_at, "client:eth0");
  EXPECT_EQ(c.server_node, "proxy");
  ASSERT_EQ(c.life.steps.size(), 8u);
  EXPECT_TRUE(c.life.established);
  EXPECT_EQ(c.life.request_bytes, 78u);
  EXPECT_EQ(c.life.reply_bytes, 130u);
  EXPECT_EQ(c.life.closed_first, Side::Server);
  EXPECT_TRUE(c.life.closed);
  EXPECT_EQ(c.life.time_wait(), Side::Server);
  ASSERT_EQ(w.upstream.size(), 1u);
  ASSERT_TRUE(w.upstream[0].life);
  const ConnectionLife& up = *w.upstream[0].life;
  EXPECT_EQ(up.seen_at, "proxy:eth0");
  EXPECT_EQ(up.client_node, "proxy");
  EXPECT_EQ(up.server_node, "app1");
  EXPECT_EQ(up.life.closed_first, Side::Server);
  EXPECT_EQ(up.life.time_wait(), Side::Server);
  // The socket tables are read by run_trace; the words take what it found.
  w.life->sockets = {{"client", Side::Client, "", ""}, {"proxy", Side::Server, "TIME_WAIT", ""}};
  const std::string text = render_walk(w);
  EXPECT_THAT(text, HasSubstr("the whole connection 10.81.0.10:40000 <-> 10.81.0.2:80 (client <-> proxy), as "
                              "client:eth0 saw it:"));
  EXPECT_THAT(text, HasSubstr("three-way handshake 3/3"));
  EXPECT_THAT(text, HasSubstr("four-way close 1/4: FIN: proxy says it wants to close"));
  EXPECT_THAT(text, HasSubstr("closed first: proxy (its FIN came first), so proxy holds TIME_WAIT"));
  EXPECT_THAT(text, HasSubstr("socket tables after the close: client: no socket of it left (CLOSED); proxy: "
                              "10.81.0.2:80 <-> 10.81.0.10:40000 TIME_WAIT"));
  EXPECT_THAT(text, HasSubstr("closed first: app1 (its FIN came first), so app1 holds TIME_WAIT"));
  auto j = walk_json(w);
  EXPECT_EQ(j["lifecycle"]["time_wait_node"], "proxy");
  EXPECT_EQ(j["lifecycle"]["steps"][0]["handshake"], 1);
  EXPECT_EQ(j["lifecycle"]["steps"].size(), 8u);
  EXPECT_EQ(j["lifecycle"]["sockets"][1]["state"], "TIME_WAIT");
  EXPECT_EQ(j["upstream"][0]["lifecycle"]["closed_first_node"], "app1");
  EXPECT_FALSE(j["lifecycle"].contains("director"));
}

// DR: the director receives only the client's half of the connection, its FIN too, never
// the real server's; its entry stays FIN_WAIT and counts as InActConn.
TEST(Walk, AllInDrSaysTheDirectorSeesOnlyTheClientsHalf) {
  Lab l = dr_lab();
  l.s.whole = true;
  const std::string c = "10.10.0.10", vip = "10.10.0.100";
  auto in = [&](uint8_t f, uint32_t sq, uint32_t ak, size_t n = 0) {
    l.see("client", "eth0", Direction::Out, seg(kClient, kDir0, c, vip, kPort, 80, f, sq, ak, n));
    l.see("director", "eth0", Direction::In, seg(kClient, kDir0, c, vip, kPort, 80, f, sq, ak, n));
    l.see("director", "eth0", Direction::Out, seg(kDir0, kRs1, c, vip, kPort, 80, f, sq, ak, n));
    l.see("rs1", "eth0", Direction::In, seg(kDir0, kRs1, c, vip, kPort, 80, f, sq, ak, n));
  };
  auto out = [&](uint8_t f, uint32_t sq, uint32_t ak, size_t n = 0) {
    l.see("rs1", "eth0", Direction::Out, seg(kRs1, kClient, vip, c, 80, kPort, f, sq, ak, n));
    l.see("client", "eth0", Direction::In, seg(kRs1, kClient, vip, c, 80, kPort, f, sq, ak, n));
  };
  in(kS, kIsn, 0);
  out(kS | kA, kRsIsn, kIsn + 1);
  in(kA, kIsn + 1, kRsIsn + 1);
  in(kP | kA, kIsn + 1, kRsIsn + 1, 78);
  out(kF | kP | kA, kRsIsn + 1, kIsn + 79, 130);
  in(kA, kIsn + 79, kRsIsn + 132);
  in(kF | kA, kIsn + 79, kRsIsn + 132);
  out(kA, kRsIsn + 132, kIsn + 80);
  Walk w = build_walk(l.s, l.frames);
  ASSERT_TRUE(w.life);
  EXPECT_EQ(w.life->director_from_client, 5);
  EXPECT_EQ(w.life->director_from_server, 0);
  EXPECT_TRUE(w.life->director_fin_from_client);
  EXPECT_FALSE(w.life->director_fin_from_server);
  EXPECT_EQ(w.life->server_node, "rs1");
  EXPECT_EQ(w.life->life.time_wait(), Side::Server);
  EXPECT_TRUE(w.upstream.empty());
  w.life->director_entry = DirectorEntryFact{true, "FIN_WAIT", 118, ""};
  const std::string text = render_walk(w);
  EXPECT_THAT(text, HasSubstr("director received 5 segments of it, all from the client (its FIN too), none from "
                              "rs1: the answers and rs1's FIN go straight to the client"));
  EXPECT_THAT(text, HasSubstr("director's IPVS connection entry: FIN_WAIT, expires in 118 s; `labctl ipvs` counts it "
                              "in InActConn until then (it stays there"));
  auto j = walk_json(w);
  EXPECT_EQ(j["lifecycle"]["director"]["from_server"], 0);
  EXPECT_EQ(j["lifecycle"]["director"]["entry"]["state"], "FIN_WAIT");
  EXPECT_EQ(j["lifecycle"]["director"]["entry"]["inactive"], true);
}

}  // namespace
}  // namespace labctl
