// Unit tier: the kernel tables the route, neigh, fdb and nat-map checks read, encoded and
// decoded without a kernel: `ip route get` (RTM_GETROUTE), `ip neigh del`, the bridge's
// forwarding database (RTM_GETNEIGH, AF_BRIDGE), the conntrack table (ctnetlink) and
// /proc/net/tcp and the Tcp: counters of /proc/net/snmp; and explain's network numbers.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/neighbour.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>

#include "labctl/kernel/conntrack.h"
#include "labctl/kernel/rtnl.h"
#include "labctl/kernel/tcp_counters.h"
#include "labctl/kernel/tcp_sockets.h"
#include "labctl/model/load.h"
#include "labctl/plan/network_number.h"
#include "tests/unit/nl_test_util.h"

namespace labctl {
namespace {

using test::attrs_of;
using test::MsgBuilder;
using test::payload;

IpAddr ip(const char* text) { return *IpAddr::parse(text); }

std::vector<uint8_t> bytes_of(const IpAddr& a) { return {a.bytes.begin(), a.bytes.begin() + static_cast<long>(a.size())}; }

const nlmsghdr& hdr(const std::vector<uint8_t>& b) { return *reinterpret_cast<const nlmsghdr*>(b.data()); }

TEST(RouteGet, AsksForOneHostAddressAndTheTableThatMatched) {
  Request r = rtnl::route_get(ip("192.168.88.88"));
  EXPECT_EQ(r.header()->nlmsg_type, RTM_GETROUTE);
  EXPECT_FALSE(r.header()->nlmsg_flags & NLM_F_DUMP);
  const auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(r.header()));
  EXPECT_EQ(rtm->rtm_family, AF_INET);
  EXPECT_EQ(rtm->rtm_dst_len, 32);
  EXPECT_EQ(rtm->rtm_flags, RTM_F_LOOKUP_TABLE);
  EXPECT_EQ(rtm->rtm_table, 0);
  auto a = attrs_of(r.header(), sizeof(rtmsg));
  ASSERT_TRUE(a.count(RTA_DST));
  EXPECT_EQ(payload(a[RTA_DST]), bytes_of(ip("192.168.88.88")));
  EXPECT_EQ(r.what, "ip route get 192.168.88.88");
  EXPECT_NE(r.hint(ENETUNREACH, "lab-host3").find("no route in lab-host3 matches 192.168.88.88"), std::string::npos);
  // IPv6: no LOOKUP_TABLE (ip does not set it), a /128.
  Request r6 = rtnl::route_get(ip("fd00::1"));
  const auto* rtm6 = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(r6.header()));
  EXPECT_EQ(rtm6->rtm_dst_len, 128);
  EXPECT_EQ(rtm6->rtm_flags, 0u);
}

std::vector<uint8_t> route_answer(uint8_t type, uint32_t table, const char* gw, const char* src) {
  MsgBuilder b(RTM_NEWROUTE);
  auto* rtm = b.extra<rtmsg>();
  rtm->rtm_family = AF_INET;
  rtm->rtm_dst_len = 32;
  rtm->rtm_type = type;
  rtm->rtm_table = static_cast<uint8_t>(table);
  mnl_attr_put_u32(b.nlh(), RTA_TABLE, table);
  auto d = bytes_of(ip("192.168.88.88"));
  mnl_attr_put(b.nlh(), RTA_DST, 4, d.data());
  mnl_attr_put_u32(b.nlh(), RTA_OIF, 2);
  if (gw) {
    auto g = bytes_of(ip(gw));
    mnl_attr_put(b.nlh(), RTA_GATEWAY, 4, g.data());
  }
  if (src) {
    auto s = bytes_of(ip(src));
    mnl_attr_put(b.nlh(), RTA_PREFSRC, 4, s.data());
  }
  return b.bytes();
}

TEST(RouteGet, AnswerNamesNextHopSourceAndTable) {
  auto via = route_answer(RTN_UNICAST, RT_TABLE_MAIN, "192.168.1.120", "192.168.1.30");
  auto r = rtnl::parse_route_get(hdr(via));
  ASSERT_TRUE(r) << r.error().str();
  EXPECT_EQ(r->via, ip("192.168.1.120"));
  EXPECT_EQ(r->src, ip("192.168.1.30"));
  EXPECT_EQ(r->oif, 2);
  r->dev = "eth0";
  EXPECT_EQ(r->str(), "192.168.88.88 via 192.168.1.120 dev eth0 src 192.168.1.30");

  auto onlink = route_answer(RTN_UNICAST, RT_TABLE_MAIN, nullptr, "192.168.1.30");
  auto o = rtnl::parse_route_get(hdr(onlink));
  ASSERT_TRUE(o);
  EXPECT_FALSE(o->via.has_value());

  auto local = route_answer(RTN_LOCAL, RT_TABLE_LOCAL, nullptr, nullptr);
  auto l = rtnl::parse_route_get(hdr(local));
  ASSERT_TRUE(l);
  l->dev = "lo";
  EXPECT_EQ(l->str(), "local 192.168.88.88 dev lo table local");

  MsgBuilder wrong(RTM_NEWLINK);
  wrong.extra<rtmsg>();
  EXPECT_FALSE(rtnl::parse_route_get(hdr(wrong.bytes())));
}

TEST(NeighDel, NamesTheEntryAndGoneCountsAsDone) {
  Request r = rtnl::neigh_del(3, ip("192.168.1.120"));
  EXPECT_EQ(r.header()->nlmsg_type, RTM_DELNEIGH);
  const auto* nd = static_cast<const ndmsg*>(mnl_nlmsg_get_payload(r.header()));
  EXPECT_EQ(nd->ndm_family, AF_INET);
  EXPECT_EQ(nd->ndm_ifindex, 3);
  auto a = attrs_of(r.header(), sizeof(ndmsg));
  EXPECT_EQ(payload(a[NDA_DST]), bytes_of(ip("192.168.1.120")));
  EXPECT_EQ(r.ok_errno, ENOENT);
}

std::vector<uint8_t> fdb_row(uint8_t family, int port, int master, uint16_t state, const uint8_t* mac) {
  MsgBuilder b(RTM_NEWNEIGH);
  auto* nd = b.extra<ndmsg>();
  nd->ndm_family = family;
  nd->ndm_ifindex = port;
  nd->ndm_state = state;
  if (mac) mnl_attr_put(b.nlh(), NDA_LLADDR, 6, mac);
  if (master) mnl_attr_put_u32(b.nlh(), NDA_MASTER, static_cast<uint32_t>(master));
  mnl_attr_put_u16(b.nlh(), NDA_VLAN, 1);
  return b.bytes();
}

TEST(Fdb, LearnedEntriesAreTheBridgesReachableOrStaleOnes) {
  const uint8_t mac[6] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
  auto req = rtnl::fdb_dump();
  EXPECT_EQ(req.header()->nlmsg_type, RTM_GETNEIGH);
  EXPECT_TRUE(req.header()->nlmsg_flags & NLM_F_DUMP);
  EXPECT_EQ(static_cast<const ndmsg*>(mnl_nlmsg_get_payload(req.header()))->ndm_family, AF_BRIDGE);

  auto learned = rtnl::parse_fdb(hdr(fdb_row(AF_BRIDGE, 4, 2, NUD_REACHABLE, mac)));
  ASSERT_TRUE(learned && learned->has_value());
  EXPECT_EQ((*learned)->mac, "02:11:22:33:44:55");
  EXPECT_EQ((*learned)->index, 4);
  EXPECT_EQ((*learned)->master, 2);
  EXPECT_EQ((*learned)->vlan, 1);
  EXPECT_TRUE((*learned)->learned());
  auto stale = rtnl::parse_fdb(hdr(fdb_row(AF_BRIDGE, 4, 2, NUD_STALE, mac)));
  EXPECT_TRUE((*stale)->learned());
  // The bridge's own address, a static entry, a port's multicast list: not learned.
  EXPECT_FALSE((*rtnl::parse_fdb(hdr(fdb_row(AF_BRIDGE, 4, 2, NUD_PERMANENT, mac))))->learned());
  EXPECT_FALSE((*rtnl::parse_fdb(hdr(fdb_row(AF_BRIDGE, 4, 2, NUD_NOARP, mac))))->learned());
  EXPECT_FALSE((*rtnl::parse_fdb(hdr(fdb_row(AF_BRIDGE, 4, 0, NUD_PERMANENT, mac))))->learned());
  // Other families and rows without a MAC are no FDB entries.
  EXPECT_FALSE(*rtnl::parse_fdb(hdr(fdb_row(AF_INET, 4, 2, NUD_REACHABLE, mac))));
  EXPECT_FALSE(*rtnl::parse_fdb(hdr(fdb_row(AF_BRIDGE, 4, 2, NUD_REACHABLE, nullptr))));
  EXPECT_EQ(rtnl::nud_state_name(NUD_REACHABLE), "reachable");
  EXPECT_EQ(rtnl::nud_state_name(NUD_FAILED), "failed");
  EXPECT_EQ(rtnl::nud_state_name(0), "none");
}

// fdb's flooding lesson first makes the bridge forget a MAC, as `bridge fdb del MAC dev
// PORT master` does: AF_BRIDGE, the port, NTF_MASTER, the MAC; an entry already gone is done.
TEST(Fdb, ForgettingAnEntryIsADeleteOnTheBridgeOfThatPort) {
  auto r = rtnl::fdb_del(4, "02:11:22:33:44:55");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->header()->nlmsg_type, RTM_DELNEIGH);
  const auto* nd = static_cast<const ndmsg*>(mnl_nlmsg_get_payload(r->header()));
  EXPECT_EQ(nd->ndm_family, AF_BRIDGE);
  EXPECT_EQ(nd->ndm_ifindex, 4);
  EXPECT_EQ(nd->ndm_flags, NTF_MASTER);
  auto a = attrs_of(r->header(), sizeof(ndmsg));
  EXPECT_EQ(payload(a[NDA_LLADDR]), (std::vector<uint8_t>{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}));
  EXPECT_EQ(r->ok_errno, ENOENT);
  EXPECT_NE(r->what.find("bridge fdb del 02:11:22:33:44:55"), std::string::npos) << r->what;
  EXPECT_FALSE(rtnl::fdb_del(4, "02:11:22:33:44"));
  EXPECT_FALSE(rtnl::fdb_del(4, "02:11:22:33:44:55:66"));
}

TEST(Conntrack, DumpRequestIsOneFamilyOfCtnetlink) {
  Request r = conntrack::dump_request(AF_INET);
  EXPECT_EQ(r.header()->nlmsg_type, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET);
  EXPECT_TRUE(r.header()->nlmsg_flags & NLM_F_DUMP);
  const auto* nfg = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(r.header()));
  EXPECT_EQ(nfg->nfgen_family, AF_INET);
  EXPECT_EQ(nfg->version, NFNETLINK_V0);
  EXPECT_EQ(r.header()->nlmsg_len, NLMSG_LENGTH(sizeof(nfgenmsg)));
}

void put_tuple(nlmsghdr* nlh, uint16_t type, const char* src, uint16_t sport, const char* dst, uint16_t dport) {
  nlattr* t = mnl_attr_nest_start(nlh, type);
  nlattr* ipn = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
  mnl_attr_put_u32(nlh, CTA_IP_V4_SRC, ip(src).v4_be());
  mnl_attr_put_u32(nlh, CTA_IP_V4_DST, ip(dst).v4_be());
  mnl_attr_nest_end(nlh, ipn);
  nlattr* p = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
  mnl_attr_put_u8(nlh, CTA_PROTO_NUM, IPPROTO_TCP);
  mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(sport));
  mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(dport));
  mnl_attr_nest_end(nlh, p);
  mnl_attr_nest_end(nlh, t);
}

TEST(Conntrack, EntryShowsTheMasqueradedReply) {
  MsgBuilder b((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW, NLM_F_MULTI);
  auto* nfg = b.extra<nfgenmsg>();
  nfg->nfgen_family = AF_INET;
  put_tuple(b.nlh(), CTA_TUPLE_ORIG, "192.168.1.8", 12121, "8.8.8.8", 80);
  put_tuple(b.nlh(), CTA_TUPLE_REPLY, "8.8.8.8", 80, "6.6.6.6", 12121);
  mnl_attr_put_u32(b.nlh(), CTA_STATUS, htonl(IPS_SRC_NAT | IPS_CONFIRMED | IPS_SEEN_REPLY));
  mnl_attr_put_u32(b.nlh(), CTA_TIMEOUT, htonl(431999));
  nlattr* pi = mnl_attr_nest_start(b.nlh(), CTA_PROTOINFO);
  nlattr* tcp = mnl_attr_nest_start(b.nlh(), CTA_PROTOINFO_TCP);
  mnl_attr_put_u8(b.nlh(), CTA_PROTOINFO_TCP_STATE, TCP_CONNTRACK_ESTABLISHED);
  mnl_attr_nest_end(b.nlh(), tcp);
  mnl_attr_nest_end(b.nlh(), pi);
  auto e = conntrack::parse_entry(hdr(b.bytes()));
  ASSERT_TRUE(e) << e.error().str();
  ASSERT_TRUE(e->has_value());
  const CtEntry& c = **e;
  EXPECT_EQ(c.orig.src, ip("192.168.1.8"));
  EXPECT_EQ(c.orig.sport, 12121);
  EXPECT_EQ(c.reply.dst, ip("6.6.6.6"));
  EXPECT_EQ(c.reply.dport, 12121);
  EXPECT_TRUE(c.src_nat());
  EXPECT_FALSE(c.dst_nat());
  EXPECT_EQ(c.timeout, 431999u);
  EXPECT_EQ(c.str(), "tcp 192.168.1.8:12121 -> 8.8.8.8:80, reply 8.8.8.8:80 -> 6.6.6.6:12121 (ESTABLISHED, source NAT)");
}

TEST(Conntrack, DeleteNamesTheOriginalTupleAndGoneCountsAsDone) {
  CtTuple t{ip("192.168.1.8"), ip("8.8.8.8"), IPPROTO_TCP, 12121, 80};
  Request r = conntrack::delete_request(t);
  EXPECT_EQ(r.header()->nlmsg_type, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE);
  EXPECT_EQ(r.ok_errno, ENOENT);
  EXPECT_EQ(r.what, "conntrack -D 192.168.1.8:12121 -> 8.8.8.8:80");
  // The encoded tuple reads back as what it was built from.
  std::vector<uint8_t> as_entry(r.bytes);
  reinterpret_cast<nlmsghdr*>(as_entry.data())->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
  auto a = attrs_of(r.header(), sizeof(nfgenmsg));
  ASSERT_TRUE(a.count(CTA_TUPLE_ORIG));
  EXPECT_FALSE(a.count(CTA_TUPLE_REPLY));
  EXPECT_FALSE(conntrack::parse_entry(hdr(as_entry))) << "an entry needs both tuples";
  auto ipt = test::nested(test::nested(a[CTA_TUPLE_ORIG])[CTA_TUPLE_IP]);
  EXPECT_EQ(payload(ipt[CTA_IP_V4_SRC]), bytes_of(ip("192.168.1.8")));
  auto pt = test::nested(test::nested(a[CTA_TUPLE_ORIG])[CTA_TUPLE_PROTO]);
  EXPECT_EQ(ntohs(mnl_attr_get_u16(pt[CTA_PROTO_SRC_PORT])), 12121);
  EXPECT_EQ(ntohs(mnl_attr_get_u16(pt[CTA_PROTO_DST_PORT])), 80);
}

TEST(Conntrack, AnEntryWithoutTuplesIsMalformed) {
  MsgBuilder b((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW);
  b.extra<nfgenmsg>()->nfgen_family = AF_INET;
  EXPECT_FALSE(conntrack::parse_entry(hdr(b.bytes())));
  MsgBuilder v6((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW);
  v6.extra<nfgenmsg>()->nfgen_family = AF_BRIDGE;
  auto other = conntrack::parse_entry(hdr(v6.bytes()));
  ASSERT_TRUE(other);
  EXPECT_FALSE(other->has_value());
}

TEST(ProcNetTcp, RowsGiveEndpointsAndStateWithMappedAddressesAsIpv4) {
  // As the kernel prints them: each 32-bit word of the address in host order (x86: little-endian).
  const std::string v4 =
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
      "   0: 0808080A:0050 06060606:2F59 06 00000000:00000000 03:00001770 00000000     0        0 0 3 0000000000000000\n";
  auto s = parse_proc_net_tcp(v4, AF_INET);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].local, ip("10.8.8.8"));
  EXPECT_EQ(s[0].local_port, 80);
  EXPECT_EQ(s[0].remote, ip("6.6.6.6"));
  EXPECT_EQ(s[0].remote_port, 12121);
  EXPECT_EQ(tcp_state_name(s[0].state), "TIME_WAIT");
  const std::string v6 =
      "  sl  local_address                         remote_address                        st tx_queue\n"
      "   0: 0000000000000000FFFF00000808080A:0050 0000000000000000FFFF000006060606:2F59 01 00000000:00000000\n"
      "   1: garbage\n";
  auto m = parse_proc_net_tcp(v6, AF_INET6);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].local, ip("10.8.8.8"));
  EXPECT_EQ(m[0].remote, ip("6.6.6.6"));
  EXPECT_EQ(tcp_state_name(m[0].state), "ESTABLISHED");
}

TEST(SnmpTcp, CountersAreReadByNameAndSubtracted) {
  // A 6.1 kernel's lines (the columns are found by name, not by position).
  const std::string snmp =
      "Ip: Forwarding DefaultTTL\n"
      "Ip: 1 64\n"
      "Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets "
      "CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors\n"
      "Tcp: 1 200 120000 -1 12 40 2 1 3 900 880 0 0 5 0\n"
      "Udp: InDatagrams\n"
      "Udp: 7\n";
  auto c = parse_snmp_tcp(snmp);
  ASSERT_TRUE(c) << c.error().str();
  EXPECT_EQ(c->active_opens, 12u);
  EXPECT_EQ(c->passive_opens, 40u);
  EXPECT_EQ(c->attempt_fails, 2u);
  EXPECT_EQ(c->estab_resets, 1u);
  EXPECT_EQ(c->curr_estab, 3u);
  EXPECT_EQ(c->out_rsts, 5u);
  TcpCounters before = *c;
  before.passive_opens = 30, before.active_opens = 12, before.curr_estab = 9;
  const TcpCounters d = *c - before;
  EXPECT_EQ(d.passive_opens, 10u);
  EXPECT_EQ(d.active_opens, 0u);
  EXPECT_EQ(d.curr_estab, 3u);  // a gauge: the value after

  auto missing = parse_snmp_tcp("Ip: 1\nIp: 2\n");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().str().find("no Tcp: lines"), std::string::npos);
  auto short_line = parse_snmp_tcp("Tcp: ActiveOpens PassiveOpens\nTcp: 1\n");
  ASSERT_FALSE(short_line);
  EXPECT_NE(short_line.error().str().find("disagree"), std::string::npos);
  auto no_counter = parse_snmp_tcp("Tcp: ActiveOpens\nTcp: 1\n");
  ASSERT_FALSE(no_counter);
  EXPECT_NE(no_counter.error().str().find("PassiveOpens"), std::string::npos);
  auto not_number = parse_snmp_tcp(
      "Tcp: ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab OutRsts\nTcp: 1 x 0 0 0 0\n");
  ASSERT_FALSE(not_number);
  EXPECT_NE(not_number.error().str().find("'x'"), std::string::npos);
}

TEST(SnmpTcp, CensusCountsSocketsByStateListenersApart) {
  std::vector<TcpSocket> s(5);
  s[0].state = 10, s[1].state = 1, s[2].state = 6, s[3].state = 6, s[4].state = 8;
  const TcpCensus c = census(s);
  EXPECT_EQ(c.listening, 1);
  EXPECT_EQ(c.connected, 4);
  EXPECT_EQ(c.in("TIME_WAIT"), 2);
  EXPECT_EQ(c.in("ESTABLISHED"), 1);
  EXPECT_EQ(c.in("CLOSE_WAIT"), 1);
  EXPECT_EQ(c.in("SYN_SENT"), 0);
}

TEST(NetworkNumber, EachRouteNamesItsNextHopAndWhomArpAsks) {
  EXPECT_EQ(ipv4_mask(24), "255.255.255.0");
  EXPECT_EQ(ipv4_mask(32), "255.255.255.255");
  EXPECT_EQ(ipv4_mask(0), "0.0.0.0");
  EXPECT_EQ(ipv4_mask(20), "255.255.240.0");
  auto r = load_topology("net-basics");
  ASSERT_TRUE(r.ok());
  const Topology& t = *r.topology;
  EXPECT_TRUE(next_hop_lessons(t, *t.node("host1")).empty()) << "no routes: its address steps teach the rest";
  auto h3 = next_hop_lessons(t, *t.node("host3"));
  ASSERT_EQ(h3.size(), 1u);
  EXPECT_NE(h3[0].find("route 192.168.88.88/32 via 192.168.1.120: a host route (mask 255.255.255.255, route -n "
                       "flags UGH)"),
            std::string::npos)
      << h3[0];
  EXPECT_NE(h3[0].find("next hop 192.168.1.120 (host1)"), std::string::npos) << h3[0];
  EXPECT_NE(h3[0].find("ARP asks for 192.168.1.120, never for 192.168.88.88"), std::string::npos) << h3[0];
}

// The keys of the new kinds arrive typed, with their defaults.
TEST(CheckKindsBasics, KeysArriveTyped) {
  auto loaded = load_topology("home-nat");
  ASSERT_TRUE(loaded.ok());
  const Topology& t = *loaded.topology;
  auto find = [&](const std::string& name) -> const Check& {
    for (const auto& c : t.checks)
      if (c.name == name) return c;
    throw std::runtime_error(name);
  };
  const Check& gw = find("pc-gateway");
  EXPECT_EQ(gw.params.addresses("via"), std::vector<IpAddr>{ip("192.168.1.1")});
  EXPECT_EQ(gw.params.text("dev"), "eth0");
  EXPECT_EQ(gw.params.addresses("src"), std::vector<IpAddr>{ip("192.168.1.8")});
  const Check& nat = find("nat-mapping");
  EXPECT_EQ(nat.params.integer("sport"), 12121);
  EXPECT_EQ(nat.params.text("router"), "router");
  EXPECT_EQ(nat.params.addresses("translated"), std::vector<IpAddr>{ip("6.6.6.6")});
  EXPECT_EQ(nat.port, 80);
  const Check& arp = find("arp-for-gateway");
  EXPECT_EQ(arp.params.addresses("neighbour"), std::vector<IpAddr>{ip("192.168.1.1")});
  EXPECT_EQ(arp.params.text("entry"), "present");

  auto basics = load_topology("net-basics");
  ASSERT_TRUE(basics.ok());
  for (const auto& c : basics.topology->checks) {
    if (c.name == "on-link") {
      EXPECT_TRUE(c.params.has("via"));
      EXPECT_TRUE(c.params.addresses("via").empty()) << "on-link: no next hop";
    }
    if (c.name == "arp-never-far-address") {
      EXPECT_EQ(c.params.text("entry"), "absent");
      EXPECT_EQ(c.params.addresses("neighbour"), std::vector<IpAddr>{ip("192.168.88.88")}) << "the target by default";
    }
    if (c.name == "switch-learned") {  // every node on the switch, at its address there
      EXPECT_EQ(c.params.addresses("targets"),
                (std::vector<IpAddr>{ip("192.168.1.120"), ip("192.168.1.20"), ip("192.168.1.30")}));
    }
  }
}

}  // namespace
}  // namespace labctl
