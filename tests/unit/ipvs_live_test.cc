// Unit tier: the IPVS requests and readers behind `labctl ipvs` (edits of a live service or
// destination, timeouts, the connection table, per-cpu totals, the schedulers a kernel
// can load), without a kernel.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/genetlink.h>
#include <linux/ip_vs.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>

#include "labctl/kernel/ipvs.h"
#include "labctl/kernel/ipvs_modules.h"
#include "labctl/kernel/ipvs_proc.h"
#include "tests/unit/nl_test_util.h"

namespace labctl {
namespace {

using test::Attrs;
using test::nested;
using test::payload;

constexpr uint16_t kFamily = 0x2a;

IpvsService live_web() {
  IpvsService s;
  s.family = AF_INET;
  s.protocol = IPPROTO_TCP;
  s.addr = *IpAddr::parse("10.0.0.100");
  s.port = 8080;
  s.scheduler = "wrr";
  s.flags = IP_VS_SVC_F_HASHED | IP_VS_SVC_F_SCHED1;  // as the kernel reports it
  s.netmask = htonl(0xffffff00);
  return s;
}

uint8_t cmd_of(const Request& r) {
  return static_cast<const genlmsghdr*>(mnl_nlmsg_get_payload(r.header()))->cmd;
}

Attrs top(const Request& r) { return test::attrs_of(r.header(), sizeof(genlmsghdr)); }

TEST(IpvsLiveEncode, SetServiceSendsEveryFieldAsReadBackButHashed) {
  IpvsService s = live_web();
  s.scheduler = "sh";
  s.flags |= IP_VS_SVC_F_PERSISTENT;
  s.timeout = 300;
  auto r = ipvs::set_service(kFamily, s);
  ASSERT_TRUE(r) << r.error().str();
  EXPECT_EQ(cmd_of(*r), IPVS_CMD_SET_SERVICE);
  EXPECT_EQ(r->header()->nlmsg_flags & NLM_F_DUMP, 0);
  auto t = top(*r);
  ASSERT_TRUE(t.count(IPVS_CMD_ATTR_SERVICE));
  auto svc = nested(t[IPVS_CMD_ATTR_SERVICE]);
  EXPECT_EQ(mnl_attr_get_u16(svc[IPVS_SVC_ATTR_AF]), AF_INET);
  EXPECT_EQ(mnl_attr_get_u16(svc[IPVS_SVC_ATTR_PROTOCOL]), IPPROTO_TCP);
  EXPECT_EQ(mnl_attr_get_u16(svc[IPVS_SVC_ATTR_PORT]), htons(8080));
  EXPECT_EQ(test::str(svc[IPVS_SVC_ATTR_SCHED_NAME]), "sh");
  ip_vs_flags f{};
  ASSERT_EQ(mnl_attr_get_payload_len(svc[IPVS_SVC_ATTR_FLAGS]), sizeof f);
  std::memcpy(&f, mnl_attr_get_payload(svc[IPVS_SVC_ATTR_FLAGS]), sizeof f);
  EXPECT_EQ(f.flags, static_cast<uint32_t>(IP_VS_SVC_F_PERSISTENT | IP_VS_SVC_F_SCHED1));
  EXPECT_EQ(f.mask, ~0U);
  EXPECT_EQ(mnl_attr_get_u32(svc[IPVS_SVC_ATTR_TIMEOUT]), 300u);
  EXPECT_EQ(mnl_attr_get_u32(svc[IPVS_SVC_ATTR_NETMASK]), htonl(0xffffff00));
  EXPECT_FALSE(svc.count(IPVS_SVC_ATTR_PE_NAME));
  EXPECT_NE(r->what.find("persistent 300"), std::string::npos) << r->what;
}

TEST(IpvsLiveEncode, SetServiceOfSctpAndFwmarkServices) {
  IpvsService s = live_web();
  s.protocol = IPPROTO_SCTP;
  auto r = ipvs::set_service(kFamily, s);
  ASSERT_TRUE(r);
  auto svc = nested(top(*r)[IPVS_CMD_ATTR_SERVICE]);
  EXPECT_EQ(mnl_attr_get_u16(svc[IPVS_SVC_ATTR_PROTOCOL]), IPPROTO_SCTP);
  EXPECT_NE(r->what.find("sctp 10.0.0.100:8080"), std::string::npos) << r->what;

  IpvsService m;
  m.family = AF_INET6;
  m.fwmark = 7;
  m.scheduler = "rr";
  m.netmask = 128;
  m.pe_name = "sip";
  auto rm = ipvs::set_service(kFamily, m);
  ASSERT_TRUE(rm);
  auto ms = nested(top(*rm)[IPVS_CMD_ATTR_SERVICE]);
  EXPECT_EQ(mnl_attr_get_u32(ms[IPVS_SVC_ATTR_FWMARK]), 7u);
  EXPECT_FALSE(ms.count(IPVS_SVC_ATTR_ADDR));
  EXPECT_FALSE(ms.count(IPVS_SVC_ATTR_PORT));
  EXPECT_EQ(test::str(ms[IPVS_SVC_ATTR_PE_NAME]), "sip");

  IpvsService bad = live_web();
  bad.scheduler = "";
  EXPECT_FALSE(ipvs::set_service(kFamily, bad));
  bad.scheduler = "a-name-far-too-long";
  EXPECT_FALSE(ipvs::set_service(kFamily, bad));
  bad = live_web();
  bad.family = 0;
  EXPECT_FALSE(ipvs::set_service(kFamily, bad));
}

TEST(IpvsLiveEncode, SetDestKeepsMethodThresholdsAndTunnelSettings) {
  IpvsDest d;
  d.addr = *IpAddr::parse("10.0.0.11");
  d.port = 8080;
  d.fwd_method = IP_VS_CONN_F_TUNNEL;
  d.weight = 0;
  d.u_thresh = 50;
  d.l_thresh = 5;
  d.tun_type = IP_VS_CONN_F_TUNNEL_TYPE_GUE;
  d.tun_port = 6080;
  d.tun_flags = IP_VS_TUNNEL_ENCAP_FLAG_CSUM;
  auto r = ipvs::set_dest(kFamily, live_web(), d);
  ASSERT_TRUE(r) << r.error().str();
  EXPECT_EQ(cmd_of(*r), IPVS_CMD_SET_DEST);
  auto t = top(*r);
  auto dest = nested(t[IPVS_CMD_ATTR_DEST]);
  EXPECT_EQ(mnl_attr_get_u16(dest[IPVS_DEST_ATTR_PORT]), htons(8080));
  EXPECT_EQ(mnl_attr_get_u32(dest[IPVS_DEST_ATTR_FWD_METHOD]), IP_VS_CONN_F_TUNNEL);
  EXPECT_EQ(mnl_attr_get_u32(dest[IPVS_DEST_ATTR_WEIGHT]), 0u);
  EXPECT_EQ(mnl_attr_get_u32(dest[IPVS_DEST_ATTR_U_THRESH]), 50u);
  EXPECT_EQ(mnl_attr_get_u32(dest[IPVS_DEST_ATTR_L_THRESH]), 5u);
  EXPECT_EQ(mnl_attr_get_u8(dest[IPVS_DEST_ATTR_TUN_TYPE]), IP_VS_CONN_F_TUNNEL_TYPE_GUE);
  EXPECT_EQ(mnl_attr_get_u16(dest[IPVS_DEST_ATTR_TUN_PORT]), htons(6080));
  EXPECT_EQ(mnl_attr_get_u16(dest[IPVS_DEST_ATTR_TUN_FLAGS]), IP_VS_TUNNEL_ENCAP_FLAG_CSUM);
  // The service only by its identity.
  auto svc = nested(t[IPVS_CMD_ATTR_SERVICE]);
  EXPECT_FALSE(svc.count(IPVS_SVC_ATTR_SCHED_NAME));

  d.fwd_method = IP_VS_CONN_F_DROUTE;
  auto dr = ipvs::set_dest(kFamily, live_web(), d);
  ASSERT_TRUE(dr);
  EXPECT_FALSE(nested(top(*dr)[IPVS_CMD_ATTR_DEST]).count(IPVS_DEST_ATTR_TUN_TYPE));

  auto del = ipvs::del_dest(kFamily, live_web(), d);
  ASSERT_TRUE(del);
  EXPECT_EQ(cmd_of(*del), IPVS_CMD_DEL_DEST);
  EXPECT_FALSE(nested(top(*del)[IPVS_CMD_ATTR_DEST]).count(IPVS_DEST_ATTR_WEIGHT));

  d.weight = -1;
  EXPECT_FALSE(ipvs::set_dest(kFamily, live_web(), d));
  d.weight = 1;
  d.l_thresh = 60;
  EXPECT_FALSE(ipvs::set_dest(kFamily, live_web(), d));
}

TEST(IpvsLiveEncode, ConfigRequestsSendOnlyTheTimeoutsToChange) {
  auto get = ipvs::get_config(kFamily);
  EXPECT_EQ(cmd_of(get), IPVS_CMD_GET_CONFIG);
  auto set = ipvs::set_config(kFamily, {900, 0, 300});
  EXPECT_EQ(cmd_of(set), IPVS_CMD_SET_CONFIG);
  auto t = top(set);
  EXPECT_EQ(mnl_attr_get_u32(t[IPVS_CMD_ATTR_TIMEOUT_TCP]), 900u);
  EXPECT_FALSE(t.count(IPVS_CMD_ATTR_TIMEOUT_TCP_FIN));  // 0: leave it as it is
  EXPECT_EQ(mnl_attr_get_u32(t[IPVS_CMD_ATTR_TIMEOUT_UDP]), 300u);
}

TEST(IpvsLiveDecode, ConfigReply) {
  test::MsgBuilder m(kFamily);
  m.extra<genlmsghdr>()->cmd = IPVS_CMD_SET_CONFIG;
  mnl_attr_put_u32(m.nlh(), IPVS_CMD_ATTR_TIMEOUT_TCP, 900);
  mnl_attr_put_u32(m.nlh(), IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, 120);
  mnl_attr_put_u32(m.nlh(), IPVS_CMD_ATTR_TIMEOUT_UDP, 300);
  auto bytes = m.bytes();
  auto t = ipvs::parse_config(*reinterpret_cast<const nlmsghdr*>(bytes.data()));
  ASSERT_TRUE(t) << t.error().str();
  EXPECT_EQ(t->tcp, 900u);
  EXPECT_EQ(t->tcp_fin, 120u);
  EXPECT_EQ(t->udp, 300u);

  test::MsgBuilder empty(kFamily);
  empty.extra<genlmsghdr>()->cmd = IPVS_CMD_SET_CONFIG;
  auto eb = empty.bytes();
  EXPECT_FALSE(ipvs::parse_config(*reinterpret_cast<const nlmsghdr*>(eb.data())));
}

TEST(IpvsLiveDecode, ConnectionTableOfBothFamilies) {
  // As the kernel prints it (ip_vs_conn_seq_show): IPv4 in host-order hex, IPv6 as %pI6.
  const std::string text =
      "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n"
      "TCP 0A0A000A 9C40 0A0A0064 0050 0A0A000B 0050 TIME_WAIT        97\n"
      "UDP 0A0A000A 1F90 0A0A0064 0035 0A0A000C 0035 UDP             281\n"
      "TCP fd00:0000:0000:0000:0000:0000:0000:000a D431 fd00:0000:0000:0000:0000:0000:0000:0064 "
      "0050 fd00:0000:0000:0000:0000:0000:0000:000b 1F90 ESTABLISHED     899 sip abc123\n";
  auto conns = ipvs::parse_conn_table(text);
  ASSERT_TRUE(conns) << conns.error().str();
  ASSERT_EQ(conns->size(), 3u);
  const auto& a = (*conns)[0];
  EXPECT_EQ(a.protocol, "TCP");
  EXPECT_EQ(a.client.str(), "10.10.0.10");
  EXPECT_EQ(a.client_port, 40000);
  EXPECT_EQ(a.vip.str(), "10.10.0.100");
  EXPECT_EQ(a.vport, 80);
  EXPECT_EQ(a.dest.str(), "10.10.0.11");
  EXPECT_EQ(a.dport, 80);
  EXPECT_EQ(a.state, "TIME_WAIT");
  EXPECT_EQ(a.expires, 97u);
  EXPECT_EQ(a.pe_name, "");
  EXPECT_EQ((*conns)[1].state, "UDP");
  const auto& c = (*conns)[2];
  EXPECT_EQ(c.client.str(), "fd00::a");
  EXPECT_EQ(c.dest.str(), "fd00::b");
  EXPECT_EQ(c.dport, 8080);
  EXPECT_EQ(c.pe_name, "sip");
  EXPECT_EQ(c.pe_data, "abc123");

  EXPECT_TRUE(ipvs::parse_conn_table("Pro FromIP   FPrt ToIP\n")->empty());
  auto bad = ipvs::parse_conn_table("TCP 0A0A000A 9C40 0A0A0064\n");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("line 1"), std::string::npos);
  EXPECT_FALSE(ipvs::parse_conn_table("TCP ZZ0A000A 9C40 0A0A0064 0050 0A0A000B 0050 X 1\n"));
}

TEST(IpvsLiveDecode, PerCpuTotalsSumTheCpusNotTheEstimatorRow) {
  const std::string text =
      "       Total Incoming Outgoing         Incoming         Outgoing\n"
      "CPU    Conns  Packets  Packets            Bytes            Bytes\n"
      "  0        A       3C        0             1A2B                0\n"
      "  1        2        4        1               10                5\n"
      "  ~        B       3F        1             1A3A                5\n"
      "\n"
      "     Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s\n"
      "           1        6        0              2A0                0\n";
  auto t = ipvs::parse_stats_percpu(text);
  ASSERT_TRUE(t) << t.error().str();
  EXPECT_EQ(t->cpus, 2u);
  EXPECT_EQ(t->exact.conns, 12u);
  EXPECT_EQ(t->exact.inpkts, 64u);
  EXPECT_EQ(t->exact.outpkts, 1u);
  EXPECT_EQ(t->exact.inbytes, 0x1a2bu + 0x10u);
  EXPECT_EQ(t->exact.outbytes, 5u);
  EXPECT_EQ(t->rates.cps, 1u);
  EXPECT_EQ(t->rates.inpps, 6u);
  EXPECT_EQ(t->rates.inbps, 0x2a0u);
  EXPECT_FALSE(ipvs::parse_stats_percpu("nothing here\n"));
  EXPECT_FALSE(ipvs::parse_stats_percpu("CPU x\n  0  zz\n"));
}

// Moved from checks_test.cc: the director_counters of the checks read their totals here.
TEST(StatsPercpu, SumsThePerCpuRowsNotTheEstimatorsTotal) {
  // As the kernel prints it (hex); the "~" row is the estimator's copy, lagging behind.
  const std::string text =
      "       Total Incoming Outgoing         Incoming         Outgoing\n"
      "CPU    Conns  Packets  Packets            Bytes            Bytes\n"
      "  0        3       1A        0              4E0                0\n"
      "  1        1        5        2               10               20\n"
      "  ~        0        0        0                0                0\n\n"
      "     Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s\n"
      "           0        0        0                0                0\n";
  auto c = ipvs::parse_stats_percpu(text);
  ASSERT_TRUE(c) << c.error().str();
  EXPECT_EQ(c->exact.inpkts, 0x1Au + 5);
  EXPECT_EQ(c->exact.outpkts, 2u);
  EXPECT_FALSE(ipvs::parse_stats_percpu("garbage"));
}

TEST(IpvsSchedulers, FromModuleFilesAndBuiltins) {
  const std::vector<std::string> files = {"ip_vs.ko",        "ip_vs_rr.ko",  "ip_vs_wrr.ko.xz",
                                          "ip_vs_ftp.ko",    "ip_vs_pe_sip.ko", "ip_vs_sh.ko.zst",
                                          "ip_vs_mh.ko",     "README"};
  const std::string builtin =
      "kernel/net/netfilter/ipvs/ip_vs_lc.ko\nkernel/net/ipv4/ipip.ko\n"
      "kernel/net/netfilter/ipvs/ip_vs.ko\n";
  EXPECT_EQ(ipvs::schedulers_among(files, builtin),
            (std::vector<std::string>{"lc", "mh", "rr", "sh", "wrr"}));
  EXPECT_TRUE(ipvs::schedulers_among({}, "").empty());
  EXPECT_TRUE(ipvs::loadable_schedulers("/nonexistent-modules-dir").empty());
}

TEST(IpvsSchedulers, UnknownSchedulerHintListsTheLoadableOnes) {
  auto h = ipvs::unknown_scheduler_hint("bogus", {"rr", "sh", "wrr"});
  EXPECT_NE(h.find("ip_vs_bogus"), std::string::npos) << h;
  EXPECT_NE(h.find("this kernel can load: rr sh wrr"), std::string::npos) << h;
  auto none = ipvs::unknown_scheduler_hint("bogus", {});
  EXPECT_NE(none.find("no scheduler modules found"), std::string::npos) << none;
  // The request's own hint for ENOENT is that one.
  auto r = ipvs::set_service(kFamily, live_web());
  ASSERT_TRUE(r && r->hint);
  EXPECT_NE(r->hint(ENOENT, "lab-director").find("ip_vs_wrr"), std::string::npos);
  EXPECT_NE(r->hint(ESRCH, "lab-director").find("no such virtual service"), std::string::npos);
}

}  // namespace
}  // namespace labctl
