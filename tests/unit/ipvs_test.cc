// Unit tier: IPVS generic netlink requests and reply decoding, without a kernel.
#include "labctl/kernel/ipvs.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/genetlink.h>
#include <linux/ip_vs.h>
#include <netinet/in.h>

#include <cerrno>

#include "tests/unit/nl_test_util.h"

namespace labctl {
namespace {

using test::Attrs;
using test::MsgBuilder;
using test::nested;
using test::payload;

constexpr uint16_t kFamily = 0x2a;

VirtualService web() {
  VirtualService s;
  s.proto = Proto::Tcp;
  s.vip = *IpAddr::parse("10.0.0.100");
  s.port = 8080;  // 0x1f90: the two bytes differ, so byte order shows
  s.scheduler = "wrr";
  return s;
}

RealServer rs(const char* addr, FwdMethod m, uint16_t port = 0) {
  RealServer d;
  d.addr = *IpAddr::parse(addr);
  d.method = m;
  d.port = port;
  d.weight = 3;
  d.u_thresh = 100;
  d.l_thresh = 10;
  return d;
}

uint8_t cmd_of(const Request& r) {
  return static_cast<const genlmsghdr*>(mnl_nlmsg_get_payload(r.header()))->cmd;
}

Attrs top(const Request& r) { return test::attrs_of(r.header(), sizeof(genlmsghdr)); }

std::vector<uint8_t> addr16(const char* text) {
  auto a = IpAddr::parse(text);
  std::vector<uint8_t> out(16, 0);
  std::copy(a->bytes.begin(), a->bytes.begin() + a->size(), out.begin());
  return out;
}

TEST(IpvsEncode, NewServiceCarriesEveryRequiredAttribute) {
  auto r = ipvs::new_service(kFamily, web());
  ASSERT_TRUE(r) << r.error().str();
  EXPECT_EQ(r->header()->nlmsg_len, r->bytes.size());
  EXPECT_EQ(r->header()->nlmsg_type, kFamily);
  EXPECT_EQ(r->header()->nlmsg_flags & NLM_F_DUMP, 0);
  EXPECT_EQ(cmd_of(*r), IPVS_CMD_NEW_SERVICE);
  EXPECT_EQ(static_cast<const genlmsghdr*>(mnl_nlmsg_get_payload(r->header()))->version, 1);
  auto t = top(*r);
  ASSERT_TRUE(t.count(IPVS_CMD_ATTR_SERVICE));
  EXPECT_FALSE(t.count(IPVS_CMD_ATTR_DEST));
  auto s = nested(t[IPVS_CMD_ATTR_SERVICE]);
  EXPECT_EQ(mnl_attr_get_u16(s[IPVS_SVC_ATTR_AF]), AF_INET);
  EXPECT_EQ(mnl_attr_get_u16(s[IPVS_SVC_ATTR_PROTOCOL]), IPPROTO_TCP);
  EXPECT_EQ(payload(s[IPVS_SVC_ATTR_ADDR]), addr16("10.0.0.100"));
  EXPECT_EQ(payload(s[IPVS_SVC_ATTR_PORT]), (std::vector<uint8_t>{0x1f, 0x90})) << "network order";
  EXPECT_EQ(payload(s[IPVS_SVC_ATTR_SCHED_NAME]), (std::vector<uint8_t>{'w', 'r', 'r', 0}));
  ASSERT_EQ(mnl_attr_get_payload_len(s[IPVS_SVC_ATTR_FLAGS]), sizeof(ip_vs_flags));
  ip_vs_flags flags{};
  std::memcpy(&flags, mnl_attr_get_payload(s[IPVS_SVC_ATTR_FLAGS]), sizeof flags);
  EXPECT_EQ(flags.flags, 0u);
  EXPECT_EQ(flags.mask, 0xffffffffu);
  EXPECT_EQ(mnl_attr_get_u32(s[IPVS_SVC_ATTR_TIMEOUT]), 0u);
  EXPECT_EQ(mnl_attr_get_u32(s[IPVS_SVC_ATTR_NETMASK]), 0xffffffffu);
  EXPECT_FALSE(s.count(IPVS_SVC_ATTR_FWMARK));
  EXPECT_EQ(r->what, "add virtual service tcp 10.0.0.100:8080 (scheduler wrr)");
}

TEST(IpvsEncode, PersistentIpv6UdpService) {
  VirtualService v;
  v.proto = Proto::Udp;
  v.vip = *IpAddr::parse("fd00::100");
  v.port = 53;
  v.persistence = 300;
  auto r = ipvs::new_service(kFamily, v);
  ASSERT_TRUE(r);
  auto s = nested(top(*r)[IPVS_CMD_ATTR_SERVICE]);
  EXPECT_EQ(mnl_attr_get_u16(s[IPVS_SVC_ATTR_AF]), AF_INET6);
  EXPECT_EQ(mnl_attr_get_u16(s[IPVS_SVC_ATTR_PROTOCOL]), IPPROTO_UDP);
  EXPECT_EQ(payload(s[IPVS_SVC_ATTR_ADDR]), addr16("fd00::100"));
  ip_vs_flags flags{};
  std::memcpy(&flags, mnl_attr_get_payload(s[IPVS_SVC_ATTR_FLAGS]), sizeof flags);
  EXPECT_EQ(flags.flags, static_cast<uint32_t>(IP_VS_SVC_F_PERSISTENT));
  EXPECT_EQ(mnl_attr_get_u32(s[IPVS_SVC_ATTR_TIMEOUT]), 300u);
  EXPECT_EQ(mnl_attr_get_u32(s[IPVS_SVC_ATTR_NETMASK]), 128u) << "IPv6: a prefix length";
}

TEST(IpvsEncode, FwmarkServiceIsIdentifiedByMarkOnly) {
  VirtualService v = web();
  v.fwmark = 7;
  auto r = ipvs::del_service(kFamily, v);
  ASSERT_TRUE(r);
  EXPECT_EQ(cmd_of(*r), IPVS_CMD_DEL_SERVICE);
  auto s = nested(top(*r)[IPVS_CMD_ATTR_SERVICE]);
  EXPECT_EQ(mnl_attr_get_u32(s[IPVS_SVC_ATTR_FWMARK]), 7u);
  EXPECT_EQ(mnl_attr_get_u16(s[IPVS_SVC_ATTR_AF]), AF_INET);
  EXPECT_FALSE(s.count(IPVS_SVC_ATTR_PROTOCOL));
  EXPECT_FALSE(s.count(IPVS_SVC_ATTR_ADDR));
  EXPECT_FALSE(s.count(IPVS_SVC_ATTR_PORT));
  EXPECT_FALSE(s.count(IPVS_SVC_ATTR_SCHED_NAME)) << "delete needs only the identity";
}

TEST(IpvsEncode, NewDestDrInheritsTheServicePort) {
  auto r = ipvs::new_dest(kFamily, web(), rs("10.0.0.11", FwdMethod::Dr));
  ASSERT_TRUE(r) << r.error().str();
  EXPECT_EQ(cmd_of(*r), IPVS_CMD_NEW_DEST);
  auto t = top(*r);
  auto s = nested(t[IPVS_CMD_ATTR_SERVICE]);
  EXPECT_EQ(payload(s[IPVS_SVC_ATTR_PORT]), (std::vector<uint8_t>{0x1f, 0x90}));
  EXPECT_FALSE(s.count(IPVS_SVC_ATTR_SCHED_NAME));
  auto d = nested(t[IPVS_CMD_ATTR_DEST]);
  EXPECT_EQ(payload(d[IPVS_DEST_ATTR_ADDR]), addr16("10.0.0.11"));
  EXPECT_EQ(payload(d[IPVS_DEST_ATTR_PORT]), (std::vector<uint8_t>{0x1f, 0x90}));
  EXPECT_EQ(mnl_attr_get_u32(d[IPVS_DEST_ATTR_FWD_METHOD]),
            static_cast<uint32_t>(IP_VS_CONN_F_DROUTE));
  EXPECT_EQ(mnl_attr_get_u32(d[IPVS_DEST_ATTR_WEIGHT]), 3u);
  EXPECT_EQ(mnl_attr_get_u32(d[IPVS_DEST_ATTR_U_THRESH]), 100u);
  EXPECT_EQ(mnl_attr_get_u32(d[IPVS_DEST_ATTR_L_THRESH]), 10u);
  EXPECT_EQ(mnl_attr_get_u16(d[IPVS_DEST_ATTR_ADDR_FAMILY]), AF_INET);
  EXPECT_EQ(r->what, "add real server 10.0.0.11:8080 (dr, weight 3) to tcp 10.0.0.100:8080");
}

TEST(IpvsEncode, NewDestTunAndNatWithOwnPort) {
  auto tun = ipvs::new_dest(kFamily, web(), rs("10.0.0.12", FwdMethod::Tun, 80));
  ASSERT_TRUE(tun);
  auto d = nested(top(*tun)[IPVS_CMD_ATTR_DEST]);
  EXPECT_EQ(mnl_attr_get_u32(d[IPVS_DEST_ATTR_FWD_METHOD]),
            static_cast<uint32_t>(IP_VS_CONN_F_TUNNEL));
  EXPECT_EQ(payload(d[IPVS_DEST_ATTR_PORT]), (std::vector<uint8_t>{0x00, 0x50}));
  auto nat = ipvs::new_dest(kFamily, web(), rs("10.0.0.13", FwdMethod::Nat));
  ASSERT_TRUE(nat);
  auto n = nested(top(*nat)[IPVS_CMD_ATTR_DEST]);
  EXPECT_EQ(mnl_attr_get_u32(n[IPVS_DEST_ATTR_FWD_METHOD]),
            static_cast<uint32_t>(IP_VS_CONN_F_MASQ));
}

TEST(IpvsEncode, DelDestCarriesOnlyTheIdentity) {
  auto r = ipvs::del_dest(kFamily, web(), rs("10.0.0.11", FwdMethod::Dr));
  ASSERT_TRUE(r);
  EXPECT_EQ(cmd_of(*r), IPVS_CMD_DEL_DEST);
  auto d = nested(top(*r)[IPVS_CMD_ATTR_DEST]);
  EXPECT_TRUE(d.count(IPVS_DEST_ATTR_ADDR));
  EXPECT_TRUE(d.count(IPVS_DEST_ATTR_PORT));
  EXPECT_FALSE(d.count(IPVS_DEST_ATTR_FWD_METHOD));
  EXPECT_FALSE(d.count(IPVS_DEST_ATTR_WEIGHT));
}

TEST(IpvsEncode, DumpsAndFlush) {
  Request all = ipvs::get_services(kFamily);
  EXPECT_EQ(cmd_of(all), IPVS_CMD_GET_SERVICE);
  EXPECT_EQ(all.header()->nlmsg_flags & NLM_F_DUMP, NLM_F_DUMP);
  EXPECT_TRUE(top(all).empty());
  auto dests = ipvs::get_dests(kFamily, web());
  ASSERT_TRUE(dests);
  EXPECT_EQ(cmd_of(*dests), IPVS_CMD_GET_DEST);
  EXPECT_EQ(dests->header()->nlmsg_flags & NLM_F_DUMP, NLM_F_DUMP);
  EXPECT_TRUE(top(*dests).count(IPVS_CMD_ATTR_SERVICE));
  Request f = ipvs::flush(kFamily);
  EXPECT_EQ(cmd_of(f), IPVS_CMD_FLUSH);
  EXPECT_EQ(f.header()->nlmsg_flags & NLM_F_DUMP, 0);
  EXPECT_EQ(cmd_of(ipvs::get_info(kFamily)), IPVS_CMD_GET_INFO);
}

TEST(IpvsEncode, InvalidInputIsRefusedBeforeTheKernel) {
  VirtualService v = web();
  v.scheduler = "averyveryverylongname";
  EXPECT_FALSE(ipvs::new_service(kFamily, v));
  EXPECT_FALSE(ipvs::new_dest(kFamily, web(), rs("fd00::1", FwdMethod::Dr)))
      << "mixed families need TUN";
  EXPECT_TRUE(ipvs::new_dest(kFamily, web(), rs("fd00::1", FwdMethod::Tun)));
  RealServer neg = rs("10.0.0.1", FwdMethod::Dr);
  neg.weight = -1;
  EXPECT_FALSE(ipvs::new_dest(kFamily, web(), neg));
  RealServer thr = rs("10.0.0.1", FwdMethod::Dr);
  thr.l_thresh = 200;
  EXPECT_FALSE(ipvs::new_dest(kFamily, web(), thr));
  EXPECT_FALSE(ipvs::new_service(kFamily, VirtualService{}));
}

// A GET_SERVICE reply as ip_vs_genl_fill_service writes it.
std::vector<uint8_t> service_reply(bool with_stats64) {
  MsgBuilder b(kFamily, NLM_F_MULTI);
  auto* g = b.extra<genlmsghdr>();
  g->cmd = IPVS_CMD_NEW_SERVICE;
  g->version = 1;
  nlattr* svc = mnl_attr_nest_start(b.nlh(), IPVS_CMD_ATTR_SERVICE);
  mnl_attr_put_u16(b.nlh(), IPVS_SVC_ATTR_AF, AF_INET);
  mnl_attr_put_u16(b.nlh(), IPVS_SVC_ATTR_PROTOCOL, IPPROTO_TCP);
  auto a = addr16("10.0.0.100");
  mnl_attr_put(b.nlh(), IPVS_SVC_ATTR_ADDR, a.size(), a.data());
  mnl_attr_put_u16(b.nlh(), IPVS_SVC_ATTR_PORT, htons(8080));
  mnl_attr_put_strz(b.nlh(), IPVS_SVC_ATTR_SCHED_NAME, "rr");
  ip_vs_flags f{IP_VS_SVC_F_PERSISTENT | 0x10000, ~0U};  // plus a kernel-internal flag
  mnl_attr_put(b.nlh(), IPVS_SVC_ATTR_FLAGS, sizeof f, &f);
  mnl_attr_put_u32(b.nlh(), IPVS_SVC_ATTR_TIMEOUT, 360);
  mnl_attr_put_u32(b.nlh(), IPVS_SVC_ATTR_NETMASK, 0xffffffff);
  nlattr* st = mnl_attr_nest_start(b.nlh(), IPVS_SVC_ATTR_STATS);
  mnl_attr_put_u32(b.nlh(), IPVS_STATS_ATTR_CONNS, 1);
  mnl_attr_put_u64(b.nlh(), IPVS_STATS_ATTR_INBYTES, 1);
  mnl_attr_nest_end(b.nlh(), st);
  if (with_stats64) {
    nlattr* st64 = mnl_attr_nest_start(b.nlh(), IPVS_SVC_ATTR_STATS64);
    mnl_attr_put_u64(b.nlh(), IPVS_STATS_ATTR_CONNS, 5000000000ULL);
    mnl_attr_put_u64(b.nlh(), IPVS_STATS_ATTR_INPKTS, 11);
    mnl_attr_put_u64(b.nlh(), IPVS_STATS_ATTR_OUTPKTS, 0);
    mnl_attr_put_u64(b.nlh(), IPVS_STATS_ATTR_INBYTES, 1234);
    mnl_attr_put_u64(b.nlh(), IPVS_STATS_ATTR_OUTBYTES, 0);
    mnl_attr_put_u64(b.nlh(), IPVS_STATS_ATTR_CPS, 2);
    mnl_attr_put_u64(b.nlh(), IPVS_STATS_ATTR_INPPS, 3);
    mnl_attr_put_u64(b.nlh(), IPVS_STATS_ATTR_OUTPPS, 4);
    mnl_attr_put_u64(b.nlh(), IPVS_STATS_ATTR_INBPS, 5);
    mnl_attr_put_u64(b.nlh(), IPVS_STATS_ATTR_OUTBPS, 6);
    mnl_attr_put_u64(b.nlh(), IPVS_STATS_ATTR_PAD, 0);
    mnl_attr_nest_end(b.nlh(), st64);
  }
  mnl_attr_nest_end(b.nlh(), svc);
  return b.bytes();
}

TEST(IpvsDecode, ServiceWithStats64) {
  auto buf = service_reply(true);
  auto s = ipvs::parse_service(*reinterpret_cast<const nlmsghdr*>(buf.data()));
  ASSERT_TRUE(s) << s.error().str();
  EXPECT_EQ(s->family, AF_INET);
  EXPECT_EQ(s->protocol, IPPROTO_TCP);
  EXPECT_EQ(s->addr.str(), "10.0.0.100");
  EXPECT_EQ(s->port, 8080);
  EXPECT_EQ(s->scheduler, "rr");
  EXPECT_TRUE(s->flags & IP_VS_SVC_F_PERSISTENT);
  EXPECT_EQ(s->timeout, 360u);
  EXPECT_EQ(s->netmask, 0xffffffffu);
  EXPECT_EQ(s->stats.conns, 5000000000ULL) << "STATS64 wins over STATS";
  EXPECT_EQ(s->stats.inpkts, 11u);
  EXPECT_EQ(s->stats.inbytes, 1234u);
  EXPECT_EQ(s->stats.cps, 2u);
  EXPECT_EQ(s->stats.inpps, 3u);
  EXPECT_EQ(s->stats.outpps, 4u);
  EXPECT_EQ(s->stats.inbps, 5u);
  EXPECT_EQ(s->stats.outbps, 6u);
}

TEST(IpvsDecode, ServiceWithOnlyStats32) {
  auto buf = service_reply(false);
  auto s = ipvs::parse_service(*reinterpret_cast<const nlmsghdr*>(buf.data()));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->stats.conns, 1u);
  EXPECT_EQ(s->stats.inbytes, 1u);
}

TEST(IpvsDecode, DestWithCountersAndMethod) {
  MsgBuilder b(kFamily, NLM_F_MULTI);
  b.extra<genlmsghdr>()->cmd = IPVS_CMD_NEW_DEST;
  nlattr* d = mnl_attr_nest_start(b.nlh(), IPVS_CMD_ATTR_DEST);
  auto a = addr16("10.0.0.12");
  mnl_attr_put(b.nlh(), IPVS_DEST_ATTR_ADDR, a.size(), a.data());
  mnl_attr_put_u16(b.nlh(), IPVS_DEST_ATTR_PORT, htons(8080));
  mnl_attr_put_u32(b.nlh(), IPVS_DEST_ATTR_FWD_METHOD, IP_VS_CONN_F_TUNNEL);
  mnl_attr_put_u32(b.nlh(), IPVS_DEST_ATTR_WEIGHT, 5);
  mnl_attr_put_u8(b.nlh(), IPVS_DEST_ATTR_TUN_TYPE, IP_VS_CONN_F_TUNNEL_TYPE_IPIP);
  mnl_attr_put_u32(b.nlh(), IPVS_DEST_ATTR_U_THRESH, 50);
  mnl_attr_put_u32(b.nlh(), IPVS_DEST_ATTR_L_THRESH, 5);
  mnl_attr_put_u32(b.nlh(), IPVS_DEST_ATTR_ACTIVE_CONNS, 7);
  mnl_attr_put_u32(b.nlh(), IPVS_DEST_ATTR_INACT_CONNS, 8);
  mnl_attr_put_u32(b.nlh(), IPVS_DEST_ATTR_PERSIST_CONNS, 9);
  mnl_attr_put_u16(b.nlh(), IPVS_DEST_ATTR_ADDR_FAMILY, AF_INET);
  nlattr* st = mnl_attr_nest_start(b.nlh(), IPVS_DEST_ATTR_STATS);
  mnl_attr_put_u32(b.nlh(), IPVS_STATS_ATTR_CONNS, 42);
  mnl_attr_put_u32(b.nlh(), IPVS_STATS_ATTR_OUTPKTS, 0);
  mnl_attr_put_u64(b.nlh(), IPVS_STATS_ATTR_INBYTES, 4096);
  mnl_attr_nest_end(b.nlh(), st);
  mnl_attr_nest_end(b.nlh(), d);
  auto buf = b.bytes();
  auto dest = ipvs::parse_dest(*reinterpret_cast<const nlmsghdr*>(buf.data()));
  ASSERT_TRUE(dest) << dest.error().str();
  EXPECT_EQ(dest->addr.str(), "10.0.0.12");
  EXPECT_EQ(dest->port, 8080);
  EXPECT_EQ(dest->fwd_method, static_cast<uint32_t>(IP_VS_CONN_F_TUNNEL));
  ASSERT_TRUE(dest->method);
  EXPECT_EQ(*dest->method, FwdMethod::Tun);
  EXPECT_EQ(dest->weight, 5);
  EXPECT_EQ(dest->u_thresh, 50u);
  EXPECT_EQ(dest->l_thresh, 5u);
  EXPECT_EQ(dest->active_conns, 7u);
  EXPECT_EQ(dest->inact_conns, 8u);
  EXPECT_EQ(dest->persist_conns, 9u);
  EXPECT_EQ(dest->tun_type, IP_VS_CONN_F_TUNNEL_TYPE_IPIP);
  EXPECT_EQ(dest->stats.conns, 42u);
  EXPECT_EQ(dest->stats.inbytes, 4096u);
}

TEST(IpvsDecode, InfoAndMalformedReplies) {
  MsgBuilder b(kFamily);
  b.extra<genlmsghdr>()->cmd = IPVS_CMD_SET_INFO;
  mnl_attr_put_u32(b.nlh(), IPVS_INFO_ATTR_VERSION, 0x010201);
  mnl_attr_put_u32(b.nlh(), IPVS_INFO_ATTR_CONN_TAB_SIZE, 4096);
  auto buf = b.bytes();
  auto info = ipvs::parse_info(*reinterpret_cast<const nlmsghdr*>(buf.data()));
  ASSERT_TRUE(info);
  EXPECT_EQ(info->version_str(), "1.2.1");
  EXPECT_EQ(info->conn_tab_size, 4096u);

  MsgBuilder empty(kFamily);
  empty.extra<genlmsghdr>();
  auto e = empty.bytes();
  EXPECT_FALSE(ipvs::parse_service(*reinterpret_cast<const nlmsghdr*>(e.data())));
  EXPECT_FALSE(ipvs::parse_dest(*reinterpret_cast<const nlmsghdr*>(e.data())));
  EXPECT_FALSE(ipvs::parse_info(*reinterpret_cast<const nlmsghdr*>(e.data())));
}

TEST(IpvsHints, PerErrno) {
  auto r = ipvs::new_service(kFamily, web());
  ASSERT_TRUE(r);
  const std::string sched = r->hint(ENOENT, "lab-director");
  EXPECT_NE(sched.find("scheduler 'wrr' not found"), std::string::npos);
  EXPECT_NE(sched.find("ip_vs_wrr"), std::string::npos);
  EXPECT_NE(r->hint(EEXIST, "lab-director").find("exists already in lab-director"),
            std::string::npos);
  EXPECT_NE(r->hint(EPERM, "").find("initial user namespace"), std::string::npos);
  EXPECT_NE(ipvs::dest_hint(ESRCH, "ns").find("add the service before"), std::string::npos);
  EXPECT_NE(ipvs::dest_hint(ERANGE, "").find("weight"), std::string::npos);
  EXPECT_NE(ipvs::dest_hint(ENOENT, "").find("not a destination"), std::string::npos);
  Error e = ipvs::no_ipvs_error("lab-director");
  EXPECT_NE(e.str().find("CONFIG_IP_VS"), std::string::npos);
  EXPECT_NE(e.hint.find("labctl vm exec -- labctl up"), std::string::npos);
}

}  // namespace
}  // namespace labctl
