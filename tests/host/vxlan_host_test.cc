// Host tier: a switch stretched over VXLAN between two simulated hosts (issue 28). Two
// throwaway "host" namespaces joined by a veth are the underlay (192.168.77.1 and .2); each
// has a "switch" namespace with a bridge and a "node" namespace plugged into it. The
// create-vxlan step runs from an executor whose own namespace is the host one (a thread that
// entered it), never the real root namespace, which nothing here touches. Every namespace is
// removed at the end, also when an assertion fails.
#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "labctl/base/file.h"
#include "labctl/kernel/netns.h"
#include "labctl/kernel/probe.h"
#include "labctl/kernel/rtnl.h"
#include "labctl/lab/netlink_executor.h"
#include "labctl/plan/plan.h"
#include "tests/host/host_test.h"
#include "tests/host/script_lab.h"
#include "tests/unit/nl_test_util.h"

namespace labctl {
namespace {

using namespace std::chrono_literals;

IpAddr A(const char* t) { return *IpAddr::parse(t); }
IpPrefix P(const char* t) { return *IpPrefix::parse(t); }

constexpr uint32_t kVni = 4242;
constexpr const char* kDev = "vx0";
constexpr const char* kBridge = "sw";

// Runs fn on a thread inside the named namespace.
Status in_ns(const std::string& ns, const std::function<Status()>& fn) {
  TRY_ASSIGN(Fd fd, open_netns(ns));
  return run_in_netns(fd.get(), fn);
}

// The UDP ports bound in `ns` (IPv4 and IPv6), from its own /proc/net/udp{,6}.
std::vector<unsigned> udp_ports(const std::string& ns) {
  std::vector<unsigned> out;
  Status st = in_ns(ns, [&]() -> Status {
    for (const char* f : {"/proc/thread-self/net/udp", "/proc/thread-self/net/udp6"}) {
      std::istringstream in(read_text(f));
      std::string line;
      std::getline(in, line);  // the header
      while (std::getline(in, line)) {
        std::istringstream w(line);
        std::string slot, local;
        w >> slot >> local;  // "0: 00000000:12B5"
        auto colon = local.rfind(':');
        if (colon != std::string::npos) out.push_back(std::stoul(local.substr(colon + 1), nullptr, 16));
      }
    }
    return {};
  });
  EXPECT_TRUE(st) << st.error().str();
  return out;
}

bool has_port(const std::vector<unsigned>& ports, unsigned port) {
  return std::find(ports.begin(), ports.end(), port) != ports.end();
}

Result<std::vector<LinkInfo>> links_in(const std::string& ns) {
  std::vector<LinkInfo> out;
  TRY(in_ns(ns, [&]() -> Status {
    TRY_ASSIGN(Rtnl r, Rtnl::open(ns));
    TRY_ASSIGN(out, r.links());
    return {};
  }));
  return out;
}

Result<std::vector<FdbEntry>> fdb_in(const std::string& ns) {
  std::vector<FdbEntry> out;
  TRY(in_ns(ns, [&]() -> Status {
    TRY_ASSIGN(Rtnl r, Rtnl::open(ns));
    TRY_ASSIGN(out, r.fdb());
    return {};
  }));
  return out;
}

const LinkInfo* find(const std::vector<LinkInfo>& ls, const std::string& name) {
  auto it = std::find_if(ls.begin(), ls.end(), [&](const LinkInfo& l) { return l.name == name; });
  return it == ls.end() ? nullptr : &*it;
}

// The device's IFLA_INFO_DATA as the kernel reports it: every VXLAN attribute, raw.
Result<std::map<uint16_t, std::vector<uint8_t>>> vxlan_data(const std::string& ns,
                                                             const std::string& dev) {
  std::map<uint16_t, std::vector<uint8_t>> out;
  TRY(in_ns(ns, [&]() -> Status {
    TRY_ASSIGN(Rtnl r, Rtnl::open(ns));
    return r.socket().transact(rtnl::link_get(dev), [&](const nlmsghdr& nlh) -> Status {
      auto top = test::attrs_of(&nlh, sizeof(ifinfomsg));
      if (!top.count(IFLA_LINKINFO)) return fail("no IFLA_LINKINFO");
      auto info = test::nested(top[IFLA_LINKINFO]);
      if (!info.count(IFLA_INFO_DATA)) return fail("no IFLA_INFO_DATA");
      for (const auto& [type, a] : test::nested(info[IFLA_INFO_DATA])) out[type] = test::payload(a);
      return {};
    });
  }));
  return out;
}

// The remotes of the device's all-zero entries.
std::vector<IpAddr> zero_entry_remotes(const std::vector<FdbEntry>& fdb, const std::string& dev,
                                       uint16_t* state_of_all = nullptr) {
  std::vector<IpAddr> out;
  uint16_t all = 0xffff;
  for (const auto& e : fdb)
    if (e.dev == dev && e.mac == "00:00:00:00:00:00" && e.dst) {
      out.push_back(*e.dst);
      all &= e.state;
    }
  if (state_of_all) *state_of_all = out.empty() ? 0 : all;
  std::sort(out.begin(), out.end());
  return out;
}

step::CreateVxlan vxlan_step(const std::string& sw, const char* local, std::vector<IpAddr> remotes) {
  step::CreateVxlan s;
  s.ns = sw;
  s.name = kDev;
  s.vni = kVni;
  s.local = A(local);
  s.remotes = std::move(remotes);
  s.master = kBridge;
  return s;
}

class HostVxlan : public ::testing::Test {
 protected:
  void SetUp() override {
    LABCTL_REQUIRE_ROOT();
    for (const char* role : {"h1", "h2", "s1", "s2", "n1", "n2", "hb", "sb"})
      ns_[role] = test::unique_name(std::string("vx") + role);
    // Everything but the VXLAN devices, by an executor in a throwaway namespace of its own.
    std::vector<Step> steps;
    for (const auto& [role, name] : ns_) steps.push_back(step::CreateNetns{name, "vxtest", role});
    steps.push_back(step::CreateVeth{ns_["h1"], "u1", ns_["h2"], "u2", 0, "", ""});
    steps.push_back(step::AddAddress{ns_["h1"], "u1", P("192.168.77.1/24")});
    steps.push_back(step::AddAddress{ns_["h2"], "u2", P("192.168.77.2/24")});
    steps.push_back(step::LinkUp{ns_["h1"], "u1"});
    steps.push_back(step::LinkUp{ns_["h2"], "u2"});
    for (const char* i : {"1", "2"}) {
      const std::string s = ns_[std::string("s") + i], n = ns_[std::string("n") + i];
      steps.push_back(step::CreateBridge{s, kBridge, 0});
      steps.push_back(step::CreateVeth{n, "e0", s, "p0", 0, std::string("02:00:00:00:09:0") + i, ""});
      steps.push_back(step::SetMaster{s, "p0", kBridge});
      steps.push_back(step::LinkUp{s, "p0"});
      steps.push_back(step::LinkUp{s, kBridge});
      steps.push_back(step::AddAddress{n, "e0", P((std::string("10.9.0.") + i + "/24").c_str())});
      steps.push_back(step::LinkUp{n, "e0"});
    }
    steps.push_back(step::CreateBridge{ns_["sb"], kBridge, 0});
    Status st = run_in_new_netns([&]() -> Status {
      NetlinkExecutor ex("vxtest", nullptr, "");
      for (const auto& s : steps) TRY(ex.apply(s));
      return {};
    });
    ASSERT_TRUE(st) << st.error().str();
  }
  void TearDown() override {
    for (const auto& [role, name] : ns_) (void)delete_netns(name);
  }

  // Applies the step (and the planner's LinkUp after it) from inside the host namespace.
  Status up_vxlan(const std::string& host, const step::CreateVxlan& s) {
    return in_ns(host, [&]() -> Status {
      NetlinkExecutor ex("vxtest", nullptr, "");
      TRY(ex.apply(s));
      return ex.apply(step::LinkUp{s.ns, s.name});
    });
  }

  std::map<std::string, std::string> ns_;
};

TEST_F(HostVxlan, StretchesASwitchAcrossTwoHostsWithTheSocketOnTheHost) {
  const auto s1 = vxlan_step(ns_["s1"], "192.168.77.1", {A("192.168.77.2"), A("192.168.77.3")});
  const auto s2 = vxlan_step(ns_["s2"], "192.168.77.2", {A("192.168.77.1")});
  Status st = up_vxlan(ns_["h1"], s1);
  ASSERT_TRUE(st) << st.error().str();
  st = up_vxlan(ns_["h2"], s2);
  ASSERT_TRUE(st) << st.error().str();

  // (a) The device lives in the switch namespace, attached to its bridge, its link namespace
  // elsewhere (the host's); the host namespace has no such device but holds the UDP socket.
  for (const char* i : {"1", "2"}) {
    const std::string host = ns_[std::string("h") + i], sw = ns_[std::string("s") + i];
    auto ls = links_in(sw);
    ASSERT_TRUE(ls) << ls.error().str();
    const LinkInfo* vx = find(*ls, kDev);
    ASSERT_TRUE(vx) << "no " << kDev << " in " << sw;
    EXPECT_EQ(vx->kind, "vxlan");
    EXPECT_TRUE(vx->up);
    EXPECT_GE(vx->link_netnsid, 0) << "IFLA_LINK_NETNSID: its socket's namespace is not this one";
    const LinkInfo* br = find(*ls, kBridge);
    ASSERT_TRUE(br);
    EXPECT_EQ(vx->master, br->index);
    ASSERT_TRUE(vx->vxlan);
    EXPECT_EQ(vx->vxlan->vni, kVni);
    EXPECT_EQ(vx->vxlan->port, 4789);
    EXPECT_EQ(vx->vxlan->local, A(i == std::string("1") ? "192.168.77.1" : "192.168.77.2"));
    auto hl = links_in(host);
    ASSERT_TRUE(hl) << hl.error().str();
    for (const auto& l : *hl) EXPECT_NE(l.kind, "vxlan") << l.name << " in the host namespace";
    EXPECT_TRUE(has_port(udp_ports(host), 4789)) << "the underlay socket is the host's";
    EXPECT_FALSE(has_port(udp_ports(sw), 4789)) << "no underlay socket in the lab";
  }

  // (b) One all-zero entry per other host, self, permanent and static.
  auto f1 = fdb_in(ns_["s1"]);
  ASSERT_TRUE(f1) << f1.error().str();
  uint16_t state = 0;
  EXPECT_EQ(zero_entry_remotes(*f1, kDev, &state),
            (std::vector<IpAddr>{A("192.168.77.2"), A("192.168.77.3")}));
  EXPECT_EQ(state & (NUD_PERMANENT | NUD_NOARP), NUD_PERMANENT | NUD_NOARP);
  auto f2 = fdb_in(ns_["s2"]);
  ASSERT_TRUE(f2) << f2.error().str();
  EXPECT_EQ(zero_entry_remotes(*f2, kDev), (std::vector<IpAddr>{A("192.168.77.1")}));

  // (c) node1 reaches node2 through the tunnel, and ARP crossed it: node1 knows node2's MAC.
  st = in_ns(ns_["n1"], [&]() -> Status {
    Status last = fail("not tried");
    for (int i = 0; i < 5 && !last; ++i) last = icmp_echo(A("10.9.0.2"), 1000ms);
    return last;
  });
  ASSERT_TRUE(st) << st.error().str();
  std::vector<NeighInfo> neigh;
  st = in_ns(ns_["n1"], [&]() -> Status {
    TRY_ASSIGN(Rtnl r, Rtnl::open("n1"));
    TRY_ASSIGN(neigh, r.neighbours(AF_INET));
    return {};
  });
  ASSERT_TRUE(st) << st.error().str();
  auto n2 = std::find_if(neigh.begin(), neigh.end(), [](const NeighInfo& n) { return n.dst == A("10.9.0.2"); });
  ASSERT_NE(n2, neigh.end());
  EXPECT_EQ(n2->lladdr, "02:00:00:00:09:02");
  auto ls1 = links_in(ns_["s1"]);
  ASSERT_TRUE(ls1);
  EXPECT_GT(find(*ls1, kDev)->tx_packets, 0u) << "the frames went through the VXLAN device";
  EXPECT_GT(find(*ls1, kDev)->rx_packets, 0u);

  // (d) The --dry-run form, run with iproute2 from a fresh host namespace, makes the same
  // device: every VXLAN attribute the kernel reports, and the same FDB entries.
  const auto sb = vxlan_step(ns_["sb"], "192.168.77.1", s1.remotes);
  test::RunResult r = test::run_shell("ip netns exec " + shell_quote(ns_["hb"]) + " bash -c " +
                                      shell_quote("set -e; " + shell_command(sb)));
  ASSERT_EQ(r.status, 0) << shell_command(sb) << "\n" << r.output;
  auto ours = vxlan_data(ns_["s1"], kDev);
  auto theirs = vxlan_data(ns_["sb"], kDev);
  ASSERT_TRUE(ours) << ours.error().str();
  ASSERT_TRUE(theirs) << theirs.error().str();
  EXPECT_EQ(*ours, *theirs) << "IFLA_INFO_DATA of the executor's device and iproute2's differ";
  EXPECT_TRUE(ours->count(IFLA_VXLAN_ID));
  auto lb = links_in(ns_["sb"]);
  ASSERT_TRUE(lb);
  ASSERT_TRUE(find(*lb, kDev));
  EXPECT_GE(find(*lb, kDev)->link_netnsid, 0) << "iproute2's device also has its socket outside";
  EXPECT_EQ(find(*lb, kDev)->master, find(*lb, kBridge)->index);
  auto fb = fdb_in(ns_["sb"]);
  ASSERT_TRUE(fb);
  uint16_t state_b = 0;
  EXPECT_EQ(zero_entry_remotes(*fb, kDev, &state_b), zero_entry_remotes(*f1, kDev));
  EXPECT_EQ(state_b, state);

  // (e) Deleting the switch namespace takes the device and its socket off the host.
  ASSERT_TRUE(delete_netns(ns_["s1"]));
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = !has_port(udp_ports(ns_["h1"]), 4789);
    if (!gone) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(gone) << "UDP 4789 still bound in the host namespace after the switch's removal";
  auto hl = links_in(ns_["h1"]);
  ASSERT_TRUE(hl);
  for (const auto& l : *hl) EXPECT_NE(l.kind, "vxlan") << l.name;
}

TEST_F(HostVxlan, ASecondDeviceWithTheSameVniOnTheHostIsRefusedWithTheHint) {
  const auto s1 = vxlan_step(ns_["s1"], "192.168.77.1", {A("192.168.77.2")});
  Status st = up_vxlan(ns_["h1"], s1);
  ASSERT_TRUE(st) << st.error().str();
  // Another "lab" on the same host with the same VNI and port: its switch is s2.
  auto again = vxlan_step(ns_["s2"], "192.168.77.1", {A("192.168.77.2")});
  again.name = "vx1";
  st = in_ns(ns_["h1"], [&]() -> Status {
    NetlinkExecutor ex("vxtest", nullptr, "");
    return ex.apply(again);
  });
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().errnum, EEXIST) << st.error().str();
  EXPECT_NE(st.error().hint.find("uses VNI 4242"), std::string::npos) << st.error().str();
  auto l2 = links_in(ns_["s2"]);
  ASSERT_TRUE(l2);
  EXPECT_FALSE(find(*l2, "vx1")) << "nothing half-made";
}

}  // namespace
}  // namespace labctl
