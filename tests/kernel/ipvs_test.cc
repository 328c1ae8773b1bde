// Kernel tier: IPVS and IPIP over netlink on a kernel that has them (the micro-VM). Each test
// works in fresh anonymous namespaces, kept alive by the sockets opened inside them, and
// skips with the reason when the kernel lacks the feature. No ipvsadm: everything is read
// back through our own dumps.
#include "labctl/kernel/ipvs.h"

#include <gtest/gtest.h>

#include "tests/kernel/kernel_test.h"
#include <linux/ip_vs.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <optional>

#include "labctl/kernel/netns.h"
#include "labctl/kernel/rtnl.h"

namespace labctl {
namespace {

struct Sockets {
  std::optional<Ipvs> ipvs;
  std::optional<Error> ipvs_error;
  std::optional<Rtnl> rtnl;
};

// Opens IPVS and rtnetlink sockets inside a brand-new namespace.
Sockets open_fresh_namespace() {
  Sockets s;
  Status st = run_in_new_netns([&]() -> Status {
    auto ipvs = Ipvs::open("test-ns");
    if (ipvs)
      s.ipvs.emplace(std::move(*ipvs));
    else
      s.ipvs_error = ipvs.error();
    TRY_ASSIGN(Rtnl r, Rtnl::open("test-ns"));
    // Like every lab node: without lo up the namespace has no local routing table, and
    // IPVS refuses IPv4 real servers with EINVAL (see ipvs::dest_hint).
    TRY(r.apply([&](RtnlBatch& batch) { return batch.link_up("lo"); }));
    s.rtnl.emplace(std::move(r));
    return {};
  });
  EXPECT_TRUE(st) << st.error().str();
  return s;
}

#define LABCTL_REQUIRE_IPVS(s)                                             \
  do {                                                                     \
    if (::geteuid() != 0) GTEST_SKIP() << "kernel tier needs root";        \
    if (!(s).ipvs) {                                                       \
      ASSERT_TRUE((s).ipvs_error);                                         \
      if ((s).ipvs_error->str().find("CONFIG_IP_VS") != std::string::npos) \
        LABCTL_KERNEL_SKIP() << (s).ipvs_error->str();                             \
      FAIL() << (s).ipvs_error->str();                                     \
    }                                                                      \
  } while (0)

VirtualService web() {
  VirtualService s;
  s.proto = Proto::Tcp;
  s.vip = *IpAddr::parse("10.0.0.100");
  s.port = 80;
  s.scheduler = "rr";
  return s;
}

RealServer dest(const char* addr, FwdMethod m, int weight) {
  RealServer d;
  d.addr = *IpAddr::parse(addr);
  d.method = m;
  d.weight = weight;
  return d;
}

const IpvsDest* find_dest(const std::vector<IpvsDest>& ds, const std::string& addr) {
  auto it =
      std::find_if(ds.begin(), ds.end(), [&](const IpvsDest& d) { return d.addr.str() == addr; });
  return it == ds.end() ? nullptr : &*it;
}

TEST(KernelIpvs, ServiceWithDrAndTunDestinationsRoundTrips) {
  Sockets s = open_fresh_namespace();
  LABCTL_REQUIRE_IPVS(s);
  Ipvs& ipvs = *s.ipvs;
  EXPECT_NE(ipvs.family(), 0);

  auto info = ipvs.info();
  ASSERT_TRUE(info) << info.error().str();
  EXPECT_GE(info->version, 0x010200u) << info->version_str();
  EXPECT_GT(info->conn_tab_size, 0u);

  auto none = ipvs.services();
  ASSERT_TRUE(none) << none.error().str();
  EXPECT_TRUE(none->empty()) << "a fresh namespace has its own, empty IPVS table";

  const VirtualService svc = web();
  RealServer dr = dest("10.0.0.11", FwdMethod::Dr, 1);
  RealServer tun = dest("10.0.0.12", FwdMethod::Tun, 2);
  tun.u_thresh = 100;
  tun.l_thresh = 10;
  Status st = ipvs.add_service(svc);
  ASSERT_TRUE(st) << st.error().str();
  st = ipvs.add_dest(svc, dr);
  ASSERT_TRUE(st) << st.error().str();
  st = ipvs.add_dest(svc, tun);
  ASSERT_TRUE(st) << st.error().str();

  auto services = ipvs.services();
  ASSERT_TRUE(services) << services.error().str();
  ASSERT_EQ(services->size(), 1u);
  const IpvsService& got = services->front();
  EXPECT_EQ(got.family, AF_INET);
  EXPECT_EQ(got.protocol, IPPROTO_TCP);
  EXPECT_EQ(got.addr.str(), "10.0.0.100");
  EXPECT_EQ(got.port, 80);
  EXPECT_EQ(got.fwmark, 0u);
  EXPECT_EQ(got.scheduler, "rr");
  EXPECT_EQ(got.flags & IP_VS_SVC_F_PERSISTENT, 0u);
  EXPECT_EQ(got.timeout, 0u);
  EXPECT_EQ(got.netmask, 0xffffffffu);
  EXPECT_EQ(got.stats.conns, 0u);
  EXPECT_EQ(got.stats.inpkts, 0u);

  auto dests = ipvs.dests(svc);
  ASSERT_TRUE(dests) << dests.error().str();
  ASSERT_EQ(dests->size(), 2u);
  const IpvsDest* d1 = find_dest(*dests, "10.0.0.11");
  const IpvsDest* d2 = find_dest(*dests, "10.0.0.12");
  ASSERT_TRUE(d1 && d2);
  EXPECT_EQ(d1->port, 80) << "port 0 means the service's port";
  EXPECT_EQ(d1->fwd_method, static_cast<uint32_t>(IP_VS_CONN_F_DROUTE));
  EXPECT_EQ(d1->method, FwdMethod::Dr);
  EXPECT_EQ(d1->weight, 1);
  EXPECT_EQ(d1->u_thresh, 0u);
  EXPECT_EQ(d1->l_thresh, 0u);
  EXPECT_EQ(d2->port, 80);
  EXPECT_EQ(d2->fwd_method, static_cast<uint32_t>(IP_VS_CONN_F_TUNNEL));
  EXPECT_EQ(d2->method, FwdMethod::Tun);
  EXPECT_EQ(d2->weight, 2);
  EXPECT_EQ(d2->u_thresh, 100u);
  EXPECT_EQ(d2->l_thresh, 10u);
  EXPECT_EQ(d2->tun_type, IP_VS_CONN_F_TUNNEL_TYPE_IPIP);
  for (const IpvsDest* d : {d1, d2}) {
    EXPECT_EQ(d->active_conns, 0u);
    EXPECT_EQ(d->inact_conns, 0u);
    EXPECT_EQ(d->persist_conns, 0u);
    EXPECT_EQ(d->stats.conns, 0u);
  }

  // Duplicates.
  auto dup = ipvs.add_service(svc);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().errnum, EEXIST);
  EXPECT_NE(dup.error().hint.find("exists already in test-ns"), std::string::npos);
  auto dup_dest = ipvs.add_dest(svc, dr);
  ASSERT_FALSE(dup_dest);
  EXPECT_EQ(dup_dest.error().errnum, EEXIST);

  // Delete one destination, then the service.
  st = ipvs.del_dest(svc, dr);
  ASSERT_TRUE(st) << st.error().str();
  dests = ipvs.dests(svc);
  ASSERT_TRUE(dests);
  ASSERT_EQ(dests->size(), 1u);
  EXPECT_EQ(dests->front().addr.str(), "10.0.0.12");
  auto gone = ipvs.del_dest(svc, dr);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().errnum, ENOENT);

  st = ipvs.del_service(svc);
  ASSERT_TRUE(st) << st.error().str();
  services = ipvs.services();
  ASSERT_TRUE(services);
  EXPECT_TRUE(services->empty());
  dests = ipvs.dests(svc);
  ASSERT_TRUE(dests) << "GET_DEST of a missing service is an empty dump, not an error";
  EXPECT_TRUE(dests->empty());
  auto orphan = ipvs.add_dest(svc, dr);
  ASSERT_FALSE(orphan);
  EXPECT_EQ(orphan.error().errnum, ESRCH);
  EXPECT_NE(orphan.error().hint.find("add the service before"), std::string::npos);
}

TEST(KernelIpvs, UnknownSchedulerNamesTheModule) {
  Sockets s = open_fresh_namespace();
  LABCTL_REQUIRE_IPVS(s);
  VirtualService svc = web();
  svc.scheduler = "nosuchsched";
  auto st = s.ipvs->add_service(svc);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().errnum, ENOENT);
  EXPECT_NE(st.error().hint.find("scheduler 'nosuchsched' not found"), std::string::npos)
      << st.error().str();
  EXPECT_NE(st.error().hint.find("ip_vs_nosuchsched"), std::string::npos);
}

TEST(KernelIpvs, PersistentIpv6FwmarkServicesAndFlush) {
  Sockets s = open_fresh_namespace();
  LABCTL_REQUIRE_IPVS(s);
  VirtualService v6;
  v6.proto = Proto::Udp;
  v6.vip = *IpAddr::parse("fd00::100");
  v6.port = 5353;
  v6.scheduler = "wlc";
  v6.persistence = 300;
  VirtualService mark;
  mark.vip.family = AF_INET;
  mark.fwmark = 7;
  mark.scheduler = "rr";
  Status st = s.ipvs->add_service(v6);
  if (!st && st.error().errnum == EAFNOSUPPORT) LABCTL_KERNEL_SKIP() << st.error().str();
  ASSERT_TRUE(st) << st.error().str();
  st = s.ipvs->add_service(mark);
  ASSERT_TRUE(st) << st.error().str();
  st = s.ipvs->add_dest(v6, dest("fd00::11", FwdMethod::Nat, 4));
  ASSERT_TRUE(st) << st.error().str();

  auto services = s.ipvs->services();
  ASSERT_TRUE(services) << services.error().str();
  ASSERT_EQ(services->size(), 2u);
  for (const IpvsService& got : *services) {
    if (got.fwmark != 0) {
      EXPECT_EQ(got.fwmark, 7u);
      EXPECT_EQ(got.family, AF_INET);
      continue;
    }
    EXPECT_EQ(got.family, AF_INET6);
    EXPECT_EQ(got.protocol, IPPROTO_UDP);
    EXPECT_EQ(got.addr.str(), "fd00::100");
    EXPECT_EQ(got.port, 5353);
    EXPECT_EQ(got.scheduler, "wlc");
    EXPECT_TRUE(got.flags & IP_VS_SVC_F_PERSISTENT);
    EXPECT_EQ(got.timeout, 300u);
    EXPECT_EQ(got.netmask, 128u);
  }
  auto dests = s.ipvs->dests(v6);
  ASSERT_TRUE(dests);
  ASSERT_EQ(dests->size(), 1u);
  EXPECT_EQ(dests->front().addr.str(), "fd00::11");
  EXPECT_EQ(dests->front().method, FwdMethod::Nat);
  EXPECT_EQ(dests->front().port, 5353);

  // Namespaces are separate tables.
  Sockets other = open_fresh_namespace();
  ASSERT_TRUE(other.ipvs);
  auto theirs = other.ipvs->services();
  ASSERT_TRUE(theirs);
  EXPECT_TRUE(theirs->empty());

  ASSERT_TRUE(s.ipvs->flush());
  services = s.ipvs->services();
  ASSERT_TRUE(services);
  EXPECT_TRUE(services->empty());
}

TEST(KernelIpip, EnsureIpipMakesTunl0AndExplicitTunnelsWork) {
  if (::geteuid() != 0) GTEST_SKIP() << "kernel tier needs root";
  Sockets s = open_fresh_namespace();
  ASSERT_TRUE(s.rtnl);
  Rtnl& rtnl = *s.rtnl;
  Status st = rtnl.apply([&](RtnlBatch& batch) { return batch.ensure_ipip(); });
  if (!st && st.error().errnum == EOPNOTSUPP) LABCTL_KERNEL_SKIP() << st.error().str();
  ASSERT_TRUE(st) << st.error().str();
  st = rtnl.apply([&](RtnlBatch& batch) { return batch.ensure_ipip(); });
  ASSERT_TRUE(st) << "ensure_ipip is idempotent: " << st.error().str();
  ASSERT_TRUE(rtnl.apply([&](RtnlBatch& batch) { return batch.link_up("tunl0"); }));

  Tunnel t;
  t.name = "tun1";
  t.local = *IpAddr::parse("10.0.0.1");
  t.remote = *IpAddr::parse("10.0.0.2");
  t.ttl = 64;
  st = rtnl.apply([&](RtnlBatch& batch) { return batch.create_ipip(t); });
  ASSERT_TRUE(st) << st.error().str();

  auto links = rtnl.links();
  ASSERT_TRUE(links) << links.error().str();
  auto find = [&](const std::string& n) -> const LinkInfo* {
    for (const auto& l : *links)
      if (l.name == n) return &l;
    return nullptr;
  };
  const LinkInfo* tunl0 = find("tunl0");
  const LinkInfo* tun1 = find("tun1");
  ASSERT_TRUE(tunl0 && tun1);
  EXPECT_EQ(tunl0->kind, "ipip");
  EXPECT_TRUE(tunl0->up);
  EXPECT_EQ(tun1->kind, "ipip");
  EXPECT_EQ(tun1->mtu, 1480) << "20 bytes of outer IPv4 header";

  Tunnel same = t;
  same.name = "tun2";
  auto dup = rtnl.apply([&](RtnlBatch& batch) { return batch.create_ipip(same); });
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().errnum, EEXIST) << "same local/remote as tun1";
}

}  // namespace
}  // namespace labctl
