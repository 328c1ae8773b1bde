// Unit tier: IPVS connection synchronisation without a kernel. The sync daemon requests
// (NEW_DAEMON, DEL_DAEMON, GET_DAEMON) and replies decoded as the kernel sends them; the
// `ipvs_sync` key read, validated and planned (labctl's steps with their ipvsadm lines, or
// keepalived's lvs_sync_daemon where keepalived decides the role).
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/genetlink.h>
#include <linux/ip_vs.h>

#include <cerrno>

#include "labctl/kernel/ipvs.h"
#include "labctl/model/builtins.h"
#include "labctl/model/ipvs_sync.h"
#include "labctl/model/load.h"
#include "labctl/plan/keepalived.h"
#include "labctl/plan/plan.h"
#include "labctl/plan/planner.h"
#include "labctl/plan/render.h"
#include "tests/unit/nl_test_util.h"
#include "tests/unit/diagnostics_text.h"

namespace labctl {
namespace {

using test::Attrs;
using test::MsgBuilder;
using test::nested;
using test::payload;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint16_t kFamily = 0x2a;

uint8_t cmd_of(const Request& r) {
  return static_cast<const genlmsghdr*>(mnl_nlmsg_get_payload(r.header()))->cmd;
}
Attrs top(const Request& r) { return test::attrs_of(r.header(), sizeof(genlmsghdr)); }

TEST(IpvsSyncEncode, NewDaemonCarriesStateInterfaceAndSyncId) {
  IpvsDaemon d;
  d.role = IpvsDaemon::Role::Backup;
  d.interface = "eth1";
  d.sync_id = 7;
  auto r = ipvs::new_daemon(kFamily, d);
  ASSERT_TRUE(r) << r.error().str();
  EXPECT_EQ(cmd_of(*r), IPVS_CMD_NEW_DAEMON);
  EXPECT_EQ(r->header()->nlmsg_flags & NLM_F_DUMP, 0);
  auto t = top(*r);
  ASSERT_TRUE(t.count(IPVS_CMD_ATTR_DAEMON));
  auto n = nested(t[IPVS_CMD_ATTR_DAEMON]);
  EXPECT_EQ(mnl_attr_get_u32(n[IPVS_DAEMON_ATTR_STATE]), static_cast<uint32_t>(IP_VS_STATE_BACKUP));
  EXPECT_EQ(payload(n[IPVS_DAEMON_ATTR_MCAST_IFN]), (std::vector<uint8_t>{'e', 't', 'h', '1', 0}))
      << "NUL-terminated, as the kernel's NLA_NUL_STRING policy wants";
  EXPECT_EQ(mnl_attr_get_u32(n[IPVS_DAEMON_ATTR_SYNC_ID]), 7u);
  // The kernel's defaults for the rest, as ipvsadm --start-daemon without options.
  EXPECT_FALSE(n.count(IPVS_DAEMON_ATTR_SYNC_MAXLEN));
  EXPECT_FALSE(n.count(IPVS_DAEMON_ATTR_MCAST_GROUP));
  EXPECT_FALSE(n.count(IPVS_DAEMON_ATTR_MCAST_PORT));
  EXPECT_EQ(r->what, "start the IPVS sync daemon (backup on eth1, syncid 7)");
  d.role = IpvsDaemon::Role::Master;
  auto m = ipvs::new_daemon(kFamily, d);
  ASSERT_TRUE(m);
  EXPECT_EQ(mnl_attr_get_u32(nested(top(*m)[IPVS_CMD_ATTR_DAEMON])[IPVS_DAEMON_ATTR_STATE]),
            static_cast<uint32_t>(IP_VS_STATE_MASTER));
}

TEST(IpvsSyncEncode, DelDaemonCarriesOnlyTheStateAndGetIsADump) {
  Request del = ipvs::del_daemon(kFamily, IpvsDaemon::Role::Master);
  EXPECT_EQ(cmd_of(del), IPVS_CMD_DEL_DAEMON);
  auto n = nested(top(del)[IPVS_CMD_ATTR_DAEMON]);
  EXPECT_EQ(mnl_attr_get_u32(n[IPVS_DAEMON_ATTR_STATE]), static_cast<uint32_t>(IP_VS_STATE_MASTER));
  EXPECT_FALSE(n.count(IPVS_DAEMON_ATTR_MCAST_IFN));
  EXPECT_FALSE(n.count(IPVS_DAEMON_ATTR_SYNC_ID));
  Request get = ipvs::get_daemons(kFamily);
  EXPECT_EQ(cmd_of(get), IPVS_CMD_GET_DAEMON);
  EXPECT_EQ(get.header()->nlmsg_flags & NLM_F_DUMP, NLM_F_DUMP) << "GET_DAEMON is dump-only";
  EXPECT_TRUE(top(get).empty());
}

TEST(IpvsSyncEncode, BadInterfaceNamesAndIdsAreRefusedBeforeTheKernel) {
  IpvsDaemon d;
  d.interface = "";
  EXPECT_FALSE(ipvs::new_daemon(kFamily, d));
  d.interface = "a-name-of-16-chr";
  auto r = ipvs::new_daemon(kFamily, d);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().str(), HasSubstr("1 to 15 characters"));
  d.interface = "eth0";
  d.sync_id = 256;
  EXPECT_FALSE(ipvs::new_daemon(kFamily, d));
}

std::vector<uint8_t> daemon_reply(uint32_t state, bool with_v43_attrs) {
  MsgBuilder b(kFamily, NLM_F_MULTI);
  auto* g = b.extra<genlmsghdr>();
  g->cmd = IPVS_CMD_NEW_DAEMON;
  g->version = 1;
  nlattr* n = mnl_attr_nest_start(b.nlh(), IPVS_CMD_ATTR_DAEMON);
  mnl_attr_put_u32(b.nlh(), IPVS_DAEMON_ATTR_STATE, state);
  mnl_attr_put_strz(b.nlh(), IPVS_DAEMON_ATTR_MCAST_IFN, "eth0");
  mnl_attr_put_u32(b.nlh(), IPVS_DAEMON_ATTR_SYNC_ID, 51);
  if (with_v43_attrs) {
    mnl_attr_put_u16(b.nlh(), IPVS_DAEMON_ATTR_SYNC_MAXLEN, 1472);
    mnl_attr_put_u16(b.nlh(), IPVS_DAEMON_ATTR_MCAST_PORT, 8848);  // host order
    mnl_attr_put_u8(b.nlh(), IPVS_DAEMON_ATTR_MCAST_TTL, 1);
    in_addr group{};
    inet_pton(AF_INET, "224.0.0.81", &group);
    mnl_attr_put(b.nlh(), IPVS_DAEMON_ATTR_MCAST_GROUP, sizeof group, &group);
  }
  mnl_attr_nest_end(b.nlh(), n);
  return b.bytes();
}

TEST(IpvsSyncDecode, DaemonRepliesOfBothRolesAndOlderKernels) {
  auto buf = daemon_reply(IP_VS_STATE_MASTER, true);
  auto d = ipvs::parse_daemon(*reinterpret_cast<const nlmsghdr*>(buf.data()));
  ASSERT_TRUE(d) << d.error().str();
  EXPECT_EQ(d->role, IpvsDaemon::Role::Master);
  EXPECT_EQ(d->interface, "eth0");
  EXPECT_EQ(d->sync_id, 51u);
  EXPECT_EQ(d->maxlen, 1472);
  EXPECT_EQ(d->port, 8848);
  EXPECT_EQ(d->ttl, 1);
  EXPECT_EQ(d->group.str(), "224.0.0.81");
  buf = daemon_reply(IP_VS_STATE_BACKUP, false);
  d = ipvs::parse_daemon(*reinterpret_cast<const nlmsghdr*>(buf.data()));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->role, IpvsDaemon::Role::Backup);
  EXPECT_EQ(d->group.family, 0) << "no group before Linux 4.3";
  EXPECT_EQ(d->port, 0);
  buf = daemon_reply(3, false);
  EXPECT_FALSE(ipvs::parse_daemon(*reinterpret_cast<const nlmsghdr*>(buf.data())));
}

TEST(IpvsSyncHints, PerErrno) {
  EXPECT_THAT(ipvs::daemon_hint(EEXIST, "lab-dir1"), HasSubstr("runs already in lab-dir1"));
  EXPECT_THAT(ipvs::daemon_hint(ENODEV, "lab-dir1"), HasSubstr("interface does not exist"));
  EXPECT_THAT(ipvs::daemon_hint(EADDRNOTAVAIL, ""), HasSubstr("no IPv4 address"));
  EXPECT_THAT(ipvs::daemon_hint(ESRCH, ""), HasSubstr("no sync daemon of that role"));
}

// A pair of directors (no keepalived) on one switch, dir1 master and dir2 backup.
std::string pair_lab(const std::string& dir1_sync, const std::string& dir2_sync) {
  return R"(version = 1
name = "syncpair"
[switches.lan]
[nodes.client]
interfaces.eth0 = { switch = "lan", addresses = ["10.20.0.10/24"] }
[nodes.dir1]
interfaces.eth0 = { switch = "lan", addresses = ["10.20.0.2/24", "10.20.0.100/24"] }
)" + dir1_sync + R"(
[nodes.dir1.services.web]
vip = "10.20.0.100"
port = 80
method = "dr"
real_servers = [{ node = "rs1" }]
[nodes.dir2]
interfaces.eth0 = { switch = "lan", addresses = ["10.20.0.3/24"] }
)" + dir2_sync + R"(
[nodes.rs1]
interfaces.eth0 = { switch = "lan", addresses = ["10.20.0.11/24"] }
lo = ["10.20.0.100/32"]
agents.web = { kind = "http", port = 80 }
[nodes.rs1.sysctl]
net.ipv4.conf.all.arp_ignore = 1
net.ipv4.conf.all.arp_announce = 2
)";
}

using test::diagnostics_text;

TEST(IpvsSyncPlan, RolesBecomeStepsWithTheirIpvsadmLinesAndWhy) {
  auto r = parse_topology(pair_lab(R"(ipvs_sync = { interface = "eth0", id = 1, role = "master" })",
                                   R"(ipvs_sync = { interface = "eth0", id = 1, role = "backup" })"),
                          "pair.toml");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_EQ(diagnostics_text(r), "");
  Plan p = make_plan(*r.topology);
  std::vector<const PlannedStep*> sync;
  for (const auto& s : p.steps)
    if (std::holds_alternative<step::StartIpvsSync>(s.step)) sync.push_back(&s);
  ASSERT_EQ(sync.size(), 2u);
  EXPECT_EQ(shell_command(sync[0]->step),
            "ip netns exec syncpair-dir1 ipvsadm --start-daemon master --mcast-interface eth0 --syncid 1");
  EXPECT_EQ(undo_command(sync[0]->step), "ip netns exec syncpair-dir1 ipvsadm --stop-daemon master");
  EXPECT_EQ(shell_command(sync[1]->step),
            "ip netns exec syncpair-dir2 ipvsadm --start-daemon backup --mcast-interface eth0 --syncid 1");
  EXPECT_THAT(sync[0]->why, HasSubstr("established connections find their real server"));
  EXPECT_THAT(sync[1]->why, HasSubstr("instead of resetting them"));
  EXPECT_EQ(step_type(sync[0]->step), "start-ipvs-sync");
  // After the services and their sysctls, before the agents.
  std::size_t svc = 0, first_sync = 0, agent = 0;
  for (std::size_t i = 0; i < p.steps.size(); ++i) {
    if (std::holds_alternative<step::AddIpvsService>(p.steps[i].step)) svc = i;
    if (&p.steps[i] == sync[0]) first_sync = i;
    if (!agent && std::holds_alternative<step::StartAgent>(p.steps[i].step)) agent = i;
  }
  EXPECT_LT(svc, first_sync);
  EXPECT_LT(first_sync, agent);
  EXPECT_THAT(render_script(p), HasSubstr("command -v ipvsadm"));
  // "both": two daemons on one director.
  auto both = parse_topology(pair_lab(R"(ipvs_sync = { interface = "eth0", role = "both" })", ""), "both.toml");
  ASSERT_TRUE(both.ok()) << diagnostics_text(both);
  int n = 0;
  for (const auto& s : make_plan(*both.topology).steps) n += std::holds_alternative<step::StartIpvsSync>(s.step);
  EXPECT_EQ(n, 2);
}

TEST(IpvsSyncPlan, AMasterNobodyListensToIsWarnedAbout) {
  auto r = parse_topology(pair_lab(R"(ipvs_sync = { interface = "eth0", id = 1, role = "master" })",
                                   R"(ipvs_sync = { interface = "eth0", id = 2, role = "backup" })"),
                          "pair.toml");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_THAT(diagnostics_text(r), HasSubstr("no other director on eth0's segment runs a backup sync daemon with id 1"));
  auto zero = parse_topology(pair_lab(R"(ipvs_sync = { interface = "eth0", id = 1, role = "master" })",
                                      R"(ipvs_sync = { interface = "eth0", id = 0, role = "backup" })"),
                             "pair.toml");
  EXPECT_EQ(diagnostics_text(zero), "") << "a backup of id 0 takes every id";
}

TEST(IpvsSyncKeepalived, HaDemoSyncsThroughKeepalivedFollowingVrrp) {
  auto r = load_topology("ha-demo");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  const Topology& t = *r.topology;
  for (const char* name : {"dir1", "dir2"}) {
    const Node* n = t.node(name);
    ASSERT_TRUE(n && n->ipvs_sync) << name;
    EXPECT_TRUE(sync_by_keepalived(*n));
    const std::string conf = keepalived_config(t, *n, n->agents.front());
    EXPECT_THAT(conf, HasSubstr("  lvs_sync_daemon eth0 VI_vrrp id 1\n}\n")) << conf;
  }
  // keepalived starts the daemons: labctl plans none, and says so in the agent's why.
  Plan p = make_plan(t);
  for (const auto& s : p.steps) {
    EXPECT_FALSE(std::holds_alternative<step::StartIpvsSync>(s.step)) << describe(s.step);
    if (const auto* a = std::get_if<step::StartAgent>(&s.step); a && a->agent.kind == "keepalived") {
      EXPECT_THAT(s.why, HasSubstr("runs the IPVS sync daemon on eth0 (lvs_sync_daemon, id 1)"));
      EXPECT_THAT(a->agent.params.at("config"), HasSubstr("lvs_sync_daemon eth0 VI_vrrp id 1"));
    }
  }
  // Without ipvs_sync, keepalived.conf has no lvs_sync_daemon.
  const Node* rs = t.node("rs1");
  ASSERT_TRUE(rs);
  const Node* dir1 = t.node("dir1");
  Node plain = *dir1;
  plain.ipvs_sync.reset();
  EXPECT_THAT(keepalived_config(t, plain, plain.agents.front()), Not(HasSubstr("lvs_sync_daemon")));
}

}  // namespace
}  // namespace labctl
