// Host tier: rtnetlink against real namespaces on this kernel (needs root). Builds a small
// switch-and-node topology across two named namespaces, reads it back with our dumps and
// with `ip -j`, and checks errors carry the kernel's text. Nothing touches the root
// namespace; both namespaces are deleted at the end of each test.
#include "labctl/kernel/rtnl.h"

#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/rtnetlink.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>

#include "labctl/kernel/ipvs.h"
#include "labctl/kernel/netns.h"
#include "tests/host/host_test.h"

namespace labctl {
namespace {

struct NetnsGuard {
  std::string name;
  ~NetnsGuard() { (void)delete_netns(name); }
};

// Opens an Rtnl socket from inside `ns`; the socket stays bound to it afterwards.
Rtnl open_in(const std::string& ns) {
  auto fd = open_netns(ns);
  EXPECT_TRUE(fd) << fd.error().str();
  std::optional<Rtnl> out;
  Status st = run_in_netns(fd->get(), [&]() -> Status {
    TRY_ASSIGN(Rtnl r, Rtnl::open(ns));
    out.emplace(std::move(r));
    return {};
  });
  EXPECT_TRUE(st) << st.error().str();
  return std::move(*out);
}

nlohmann::json ip_json(const std::string& args) {
  std::string out;
  FILE* p = ::popen(("ip " + args + " 2>/dev/null").c_str(), "r");
  if (!p) return nullptr;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
}

const LinkInfo* find_link(const std::vector<LinkInfo>& ls, const std::string& name) {
  auto it = std::find_if(ls.begin(), ls.end(), [&](const LinkInfo& l) { return l.name == name; });
  return it == ls.end() ? nullptr : &*it;
}

std::vector<std::pair<std::string, int>> root_links() {
  auto r = Rtnl::open("root");
  EXPECT_TRUE(r);
  auto ls = r->links();
  EXPECT_TRUE(ls);
  std::vector<std::pair<std::string, int>> out;
  for (const auto& l : *ls) out.emplace_back(l.name, l.index);
  return out;
}

class HostRtnl : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "host tier needs root (CAP_NET_ADMIN, mounts)";
    node_.name = test::unique_name("lt-node");
    sw_.name = test::unique_name("lt-sw");
    ASSERT_TRUE(create_netns(node_.name));
    ASSERT_TRUE(create_netns(sw_.name));
  }
  NetnsGuard node_, sw_;
};

TEST_F(HostRtnl, BuildsBridgeVethsAddressesRoutesAndReadsThemBack) {
  const auto root_before = root_links();
  Rtnl node = open_in(node_.name);
  Rtnl sw = open_in(sw_.name);
  auto sw_fd = open_netns(sw_.name);
  ASSERT_TRUE(sw_fd);

  // The switch: a bridge (single-shot calls).
  ASSERT_TRUE(sw.apply([&](RtnlBatch& batch) { return batch.create_bridge("br0", 1400); }));

  // The node: two veths whose peers land straight in the switch namespace, then addresses
  // in the same batch (which forces a flush and one link dump to learn the ifindexes).
  {
    RtnlBatch b = node.batch();
    ASSERT_TRUE(
        b.create_veth("eth0", "p0", sw_fd->get(), 1400, "02:00:00:00:01:01", "02:00:00:00:01:02"));
    ASSERT_TRUE(b.create_veth("eth1", "p1", sw_fd->get(), 0, "", ""));
    ASSERT_TRUE(b.set_alias("eth0", "labctl test uplink"));
    for (const char* dev : {"lo", "eth0", "eth1"}) {
      ASSERT_TRUE(b.link_up(dev));
    }
    EXPECT_EQ(b.pending(), 6u);
    ASSERT_TRUE(b.add_address("eth0", *IpPrefix::parse("10.77.0.2/24")));
    EXPECT_EQ(b.pending(), 1u) << "the creations were flushed to resolve eth0";
    ASSERT_TRUE(b.add_address("eth0", *IpPrefix::parse("fd77::2/64")));
    ASSERT_TRUE(b.add_address("eth1", *IpPrefix::parse("10.78.0.2/24")));
    Status st = b.commit();
    ASSERT_TRUE(st) << st.error().str();
  }

  // Back in the switch: enslave the peers and bring everything up.
  for (const char* port : {"p0", "p1"}) {
    Status st = sw.apply([&](RtnlBatch& batch) { return batch.set_master(port, "br0"); });
    ASSERT_TRUE(st) << st.error().str();
    ASSERT_TRUE(sw.apply([&](RtnlBatch& batch) { return batch.link_up(port); }));
  }
  ASSERT_TRUE(sw.apply([&](RtnlBatch& batch) { return batch.link_up("br0"); }));

  // Routes: a default route and a prefix route via gateways, and an IPv6 one.
  {
    RtnlBatch b = node.batch();
    Route def;
    def.family = AF_INET;
    def.via = IpAddr::parse("10.77.0.1");
    ASSERT_TRUE(b.add_route(def));
    Route pfx;
    pfx.to = IpPrefix::parse("192.168.77.0/24");
    pfx.via = IpAddr::parse("10.78.0.1");
    pfx.dev = "eth1";
    ASSERT_TRUE(b.add_route(pfx));
    Route v6;
    v6.to = IpPrefix::parse("fd99::/64");
    v6.via = IpAddr::parse("fd77::1");
    ASSERT_TRUE(b.add_route(v6));
    Status st = b.commit();
    ASSERT_TRUE(st) << st.error().str();
  }

  // --- read back with our dumps
  auto node_links = node.links();
  ASSERT_TRUE(node_links);
  const LinkInfo* eth0 = find_link(*node_links, "eth0");
  ASSERT_NE(eth0, nullptr);
  EXPECT_EQ(eth0->kind, "veth");
  EXPECT_TRUE(eth0->up);
  EXPECT_EQ(eth0->mtu, 1400);
  EXPECT_EQ(eth0->mac, "02:00:00:00:01:01");
  EXPECT_EQ(eth0->alias, "labctl test uplink");
  EXPECT_GE(eth0->link_netnsid, 0) << "peer lives in another namespace";
  EXPECT_EQ(find_link(*node_links, "p0"), nullptr) << "peer was created in the switch";

  auto sw_links = sw.links();
  ASSERT_TRUE(sw_links);
  const LinkInfo* br = find_link(*sw_links, "br0");
  const LinkInfo* p0 = find_link(*sw_links, "p0");
  const LinkInfo* p1 = find_link(*sw_links, "p1");
  ASSERT_TRUE(br && p0 && p1);
  EXPECT_EQ(br->kind, "bridge");
  EXPECT_TRUE(br->up);
  EXPECT_EQ(p0->master, br->index);
  EXPECT_EQ(p1->master, br->index);
  EXPECT_EQ(p0->mac, "02:00:00:00:01:02");
  EXPECT_EQ(p0->link, eth0->index) << "IFLA_LINK names the peer's ifindex";

  auto addrs = node.addresses();
  ASSERT_TRUE(addrs);
  auto has_addr = [&](const std::string& dev, const std::string& p) {
    return std::any_of(addrs->begin(), addrs->end(),
                       [&](const AddrInfo& a) { return a.dev == dev && a.prefix.str() == p; });
  };
  EXPECT_TRUE(has_addr("eth0", "10.77.0.2/24"));
  EXPECT_TRUE(has_addr("eth0", "fd77::2/64"));
  EXPECT_TRUE(has_addr("eth1", "10.78.0.2/24"));
  EXPECT_TRUE(has_addr("lo", "127.0.0.1/8"));

  auto routes4 = node.routes(AF_INET);
  ASSERT_TRUE(routes4);
  auto has_route = [](const std::vector<RouteInfo>& rs, const std::string& dst,
                      const std::string& via, const std::string& dev) {
    return std::any_of(rs.begin(), rs.end(), [&](const RouteInfo& r) {
      return (r.dst ? r.dst->str() : "default") == dst && (r.via ? r.via->str() : "") == via &&
             r.dev == dev;
    });
  };
  EXPECT_TRUE(has_route(*routes4, "default", "10.77.0.1", "eth0"));
  EXPECT_TRUE(has_route(*routes4, "192.168.77.0/24", "10.78.0.1", "eth1"));
  EXPECT_TRUE(has_route(*routes4, "10.77.0.0/24", "", "eth0")) << "the kernel's prefix route";
  auto routes6 = node.routes(AF_INET6);
  ASSERT_TRUE(routes6);
  EXPECT_TRUE(has_route(*routes6, "fd99::/64", "fd77::1", "eth0"));

  // --- cross-check with iproute2
  auto ip_links = ip_json("-n " + node_.name + " -j link show");
  ASSERT_TRUE(ip_links.is_array());
  EXPECT_EQ(ip_links.size(), node_links->size());
  for (const auto& l : ip_links) {
    const LinkInfo* ours = find_link(*node_links, l.value("ifname", ""));
    ASSERT_NE(ours, nullptr) << l.dump();
    EXPECT_EQ(ours->index, l.value("ifindex", -1));
    EXPECT_EQ(ours->mtu, l.value("mtu", -1));
    auto flags = l.value("flags", std::vector<std::string>{});
    EXPECT_EQ(ours->up, std::find(flags.begin(), flags.end(), "UP") != flags.end()) << ours->name;
    if (l.contains("ifalias")) {
      EXPECT_EQ(ours->alias, l["ifalias"].get<std::string>());
    }
  }
  auto ip_sw = ip_json("-n " + sw_.name + " -j link show");
  ASSERT_TRUE(ip_sw.is_array());
  for (const auto& l : ip_sw)
    if (l.value("ifname", "") == "p0" || l.value("ifname", "") == "p1") {
      EXPECT_EQ(l.value("master", ""), "br0");
    }

  // The kernel keeps adding IPv6 link-local addresses as links come up, so compare what
  // iproute2 saw with a dump taken after it, and ours (minus link-local) with iproute2's.
  auto ip_addrs = ip_json("-n " + node_.name + " -j addr show");
  ASSERT_TRUE(ip_addrs.is_array());
  addrs = node.addresses();
  ASSERT_TRUE(addrs);
  std::vector<std::string> ip_seen;
  for (const auto& l : ip_addrs)
    for (const auto& a : l["addr_info"]) {
      const std::string p = a.value("local", "") + "/" + std::to_string(a.value("prefixlen", -1));
      ip_seen.push_back(l.value("ifname", "") + " " + p);
      EXPECT_TRUE(has_addr(l.value("ifname", ""), p)) << p;
    }
  for (const auto& a : *addrs) {
    if (a.prefix.addr.v6() && a.prefix.addr.bytes[0] == 0xfe &&
        (a.prefix.addr.bytes[1] & 0xc0) == 0x80)
      continue;
    const std::string key = a.dev + " " + a.prefix.str();
    EXPECT_NE(std::find(ip_seen.begin(), ip_seen.end(), key), ip_seen.end()) << key;
  }

  for (const auto& [family, flag] : {std::pair{AF_INET, "-4"}, std::pair{AF_INET6, "-6"}}) {
    auto ip_routes = ip_json("-n " + node_.name + " " + flag + " -j route show table main");
    ASSERT_TRUE(ip_routes.is_array());
    auto ours = node.routes(family);
    ASSERT_TRUE(ours);
    size_t unicast = 0;
    for (const auto& r : ip_routes) {
      if (r.contains("type") && r["type"] != "unicast") continue;
      ++unicast;
      EXPECT_TRUE(has_route(*ours, r.value("dst", ""), r.value("gateway", ""), r.value("dev", "")))
          << r.dump();
    }
    EXPECT_EQ(unicast, ours->size()) << flag;
  }

  // --- deleting one end of a veth removes its peer in the other namespace too
  ASSERT_TRUE(node.delete_link("eth1"));
  auto after = sw.links();
  ASSERT_TRUE(after);
  EXPECT_EQ(find_link(*after, "p1"), nullptr);
  auto again = node.delete_link("eth1");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().errnum, ENODEV);

  // --- the root namespace saw none of it
  EXPECT_EQ(root_links(), root_before);
}

TEST_F(HostRtnl, DuplicateInterfaceIsEexistWithHint) {
  Rtnl sw = open_in(sw_.name);
  ASSERT_TRUE(sw.apply([&](RtnlBatch& batch) { return batch.create_bridge("br0", 0); }));
  auto st = sw.apply([&](RtnlBatch& batch) { return batch.create_bridge("br0", 0); });
  ASSERT_FALSE(st);
  const Error& e = st.error();
  EXPECT_EQ(e.errnum, EEXIST);
  EXPECT_EQ(e.message, "create bridge br0 in " + sw_.name);
  EXPECT_NE(e.hint.find("exists already in " + sw_.name), std::string::npos);
  if (!e.kernel.empty()) {
    EXPECT_NE(e.str().find(e.kernel), std::string::npos);
  }
}

TEST_F(HostRtnl, UnreachableGatewayCarriesTheKernelsOwnText) {
  Rtnl node = open_in(node_.name);
  Route r;
  r.family = AF_INET;
  r.via = IpAddr::parse("10.200.0.1");  // no interface has an address in that subnet
  auto st = node.apply([&](RtnlBatch& batch) { return batch.add_route(r); });
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().errnum, ENETUNREACH);
  EXPECT_FALSE(st.error().kernel.empty()) << "extended ACK expected from this kernel";
  EXPECT_NE(st.error().hint.find("gateway"), std::string::npos);
  EXPECT_NE(st.error().str().find(st.error().kernel), std::string::npos);
}

TEST_F(HostRtnl, BatchReportsTheFirstFailingRequestAndTheKernelGoesOn) {
  Rtnl sw = open_in(sw_.name);
  RtnlBatch b = sw.batch();
  ASSERT_TRUE(b.create_bridge("bra", 0));
  ASSERT_TRUE(b.create_bridge("bra", 0));  // fails: exists
  ASSERT_TRUE(b.create_bridge("brb", 0));
  auto st = b.commit();
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().errnum, EEXIST);
  EXPECT_EQ(st.error().message.rfind("request 2 of 3: create bridge bra", 0), 0u)
      << st.error().message;
  auto ls = sw.links();
  ASSERT_TRUE(ls);
  EXPECT_NE(find_link(*ls, "brb"), nullptr) << "the kernel handled the request after the failure";
}

TEST_F(HostRtnl, CommitEachGivesEveryRequestItsOwnStatusAndSendsNothingAfterAFailure) {
  Rtnl sw = open_in(sw_.name);
  RtnlBatch b = sw.batch();
  (void)b.create_bridge("brc", 0);
  (void)b.create_bridge("brc", 0);  // EEXIST
  (void)b.create_bridge("brd", 0);  // same sendmsg: the kernel goes on
  (void)b.set_master("nosuch0", "brx");  // resolving brx flushes first, then finds nothing
  (void)b.create_bridge("bre", 0);  // after a failed sendmsg: not sent
  auto st = b.commit_each();
  ASSERT_EQ(st.size(), 5u);
  EXPECT_TRUE(st[0]);
  ASSERT_FALSE(st[1]);
  EXPECT_EQ(st[1].error().errnum, EEXIST);
  EXPECT_EQ(st[1].error().message.rfind("create bridge brc", 0), 0u) << st[1].error().message;
  EXPECT_TRUE(st[2]);
  ASSERT_FALSE(st[3]);
  EXPECT_EQ(st[3].error().errnum, ENODEV) << st[3].error().str();
  EXPECT_NE(st[3].error().message.find("brx"), std::string::npos);
  ASSERT_FALSE(st[4]);
  EXPECT_NE(st[4].error().message.find("not sent"), std::string::npos);
  auto ls = sw.links();
  ASSERT_TRUE(ls);
  EXPECT_NE(find_link(*ls, "brd"), nullptr);
  EXPECT_EQ(find_link(*ls, "bre"), nullptr);
  EXPECT_TRUE(b.commit_each().empty()) << "a commit starts the next round afresh";
}

// The kernel echoes links a batch creates (NLM_F_ECHO): attaching a port to a bridge or
// adding an address right after needs no lookup, so nothing is flushed in between. And a
// full batch of creations with their echoes fits the socket's receive buffer.
TEST_F(HostRtnl, CreatedLinksAreKnownWithoutALookup) {
  Rtnl sw = open_in(sw_.name);
  Rtnl node = open_in(node_.name);
  // A lookup would send what is pending first; a known ifindex leaves it pending.
  RtnlBatch b = sw.batch();
  ASSERT_TRUE(b.create_bridge("bre", 0));
  ASSERT_TRUE(b.commit());
  ASSERT_TRUE(b.link_up("bre"));
  ASSERT_TRUE(b.set_master("nosuch0", "bre"));
  EXPECT_EQ(b.pending(), 2u) << "bre's ifindex came with its echo";
  EXPECT_FALSE(b.commit()) << "nosuch0 does not exist";

  auto sw_fd = open_netns(sw_.name);
  ASSERT_TRUE(sw_fd);
  RtnlBatch nb = node.batch();
  for (int i = 0; i < 64; ++i)
    ASSERT_TRUE(nb.create_veth("v" + std::to_string(i), "p" + std::to_string(i), sw_fd->get(), 0, "", ""));
  Status st = nb.commit();  // one sendmsg: 64 ACKs and 64 echoes queue up at once
  ASSERT_TRUE(st) << st.error().str();
  ASSERT_TRUE(nb.link_up("v63"));
  ASSERT_TRUE(nb.add_address("v63", *IpPrefix::parse("10.9.9.1/24")));
  EXPECT_EQ(nb.pending(), 2u) << "v63's ifindex came with its echo";
  st = nb.commit();
  ASSERT_TRUE(st) << st.error().str();
  auto ls = node.links();
  ASSERT_TRUE(ls);
  const LinkInfo* v63 = find_link(*ls, "v63");
  ASSERT_NE(v63, nullptr);
  EXPECT_EQ(*node.ifindex("v63"), v63->index);
  auto addrs = node.addresses();
  ASSERT_TRUE(addrs);
  EXPECT_TRUE(std::any_of(addrs->begin(), addrs->end(), [&](const AddrInfo& a) {
    return a.dev == "v63" && a.prefix.str() == "10.9.9.1/24";
  }));
}

TEST_F(HostRtnl, ALinkIsFoundByNameWithoutADump) {
  Rtnl node = open_in(node_.name);
  auto lo = node.link("lo");
  ASSERT_TRUE(lo) << lo.error().str();
  EXPECT_EQ(lo->name, "lo");
  EXPECT_EQ(lo->index, 1);
  auto none = node.link("nosuch0");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().errnum, ENODEV);
  EXPECT_NE(none.error().message.find("nosuch0"), std::string::npos);
}

// Sockets share one receive buffer per thread; a request made from inside another
// socket's dump (a callback that asks something) must not clobber the dump's messages.
TEST_F(HostRtnl, ARequestInsideAnotherSocketsDumpLeavesTheDumpIntact) {
  Rtnl node = open_in(node_.name);
  Rtnl sw = open_in(sw_.name);
  for (const char* b : {"br0", "br1", "br2"})
    ASSERT_TRUE(sw.apply([&](RtnlBatch& batch) { return batch.create_bridge(b, 0); }));
  std::vector<std::string> names, asked;
  Status st = sw.socket().dump(rtnl::link_dump(), [&](const nlmsghdr& nlh) -> Status {
    // Ask the other namespace something before reading this message.
    TRY_ASSIGN(LinkInfo lo, node.link("lo"));
    asked.push_back(lo.name);
    const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(&nlh));
    names.push_back(std::to_string(ifi->ifi_index));
    return {};
  });
  ASSERT_TRUE(st) << st.error().str();
  auto plain = sw.links();
  ASSERT_TRUE(plain);
  std::vector<std::string> want;
  for (const auto& l : *plain) want.push_back(std::to_string(l.index));
  EXPECT_EQ(names, want);
  EXPECT_EQ(asked, std::vector<std::string>(want.size(), "lo"));
}

TEST_F(HostRtnl, UnknownDeviceNamesAreEnodevWithoutTalkingNonsense) {
  Rtnl node = open_in(node_.name);
  auto st = node.apply([&](RtnlBatch& batch) {
    return batch.add_address("nosuch0", *IpPrefix::parse("10.0.0.1/24"));
  });
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().errnum, ENODEV);
  EXPECT_NE(st.error().message.find("nosuch0"), std::string::npos);
  auto up = node.apply([&](RtnlBatch& batch) { return batch.link_up("nosuch0"); });
  ASSERT_FALSE(up);
  EXPECT_EQ(up.error().errnum, ENODEV);
}

TEST_F(HostRtnl, IpipOnAKernelWithoutItSaysSo) {
  struct stat sb {};
  if (::stat("/sys/module/ipip", &sb) == 0) GTEST_SKIP() << "this kernel has IPIP";
  Rtnl node = open_in(node_.name);
  auto st = node.apply([&](RtnlBatch& batch) { return batch.ensure_ipip(); });
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().errnum, EOPNOTSUPP);
  EXPECT_NE(st.error().hint.find("CONFIG_NET_IPIP"), std::string::npos) << st.error().str();
  EXPECT_NE(st.error().hint.find("labctl vm exec"), std::string::npos);
  Tunnel t;
  t.name = "tun1";
  t.local = *IpAddr::parse("10.0.0.1");
  t.remote = *IpAddr::parse("10.0.0.2");
  auto c = node.apply([&](RtnlBatch& batch) { return batch.create_ipip(t); });
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().hint.find("CONFIG_NET_IPIP"), std::string::npos);
}

TEST_F(HostRtnl, IpvsOnAKernelWithoutItSaysSo) {
  struct stat sb {};
  if (::stat("/proc/net/ip_vs", &sb) == 0) GTEST_SKIP() << "this kernel has IPVS";
  auto fd = open_netns(node_.name);
  ASSERT_TRUE(fd);
  std::optional<Error> err;
  ASSERT_TRUE(run_in_netns(fd->get(), [&]() -> Status {
    auto ipvs = Ipvs::open(node_.name);
    if (!ipvs) err = ipvs.error();
    return {};
  }));
  ASSERT_TRUE(err) << "Ipvs::open succeeded on a kernel without /proc/net/ip_vs";
  EXPECT_NE(err->str().find("CONFIG_IP_VS"), std::string::npos) << err->str();
  EXPECT_NE(err->hint.find("labctl vm exec -- labctl up"), std::string::npos);
}

}  // namespace
}  // namespace labctl
