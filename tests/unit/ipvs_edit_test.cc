// Unit tier: `labctl ipvs` without a kernel: edits resolved against the demos' names (with
// every error naming what exists), their effect on the kept topology, their record, and
// the table rendered as ipvsadm prints it.
#include <gtest/gtest.h>
#include <linux/ip_vs.h>
#include <netinet/in.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "labctl/lab/ipvs_edit.h"
#include "labctl/lab/ipvs_table.h"
#include "labctl/lab/state.h"
#include "labctl/model/load.h"

namespace labctl {
namespace {

Topology demo(const char* name) {
  auto r = load_topology(name);
  EXPECT_TRUE(r.ok());
  return *r.topology;
}

IpvsEdit edit(IpvsEditKind k, std::string service, std::string server = {}) {
  IpvsEdit e;
  e.kind = k;
  e.service = std::move(service);
  e.server = std::move(server);
  return e;
}

const VirtualService& web(const Topology& t) { return t.node("director")->services.at(0); }

TEST(IpvsEditResolve, NamesThatDoNotExistListWhatDoes) {
  Topology t = demo("dr-demo");
  auto bad_service = resolve_ipvs_edit(t, edit(IpvsEditKind::Drain, "api", "rs1"));
  ASSERT_FALSE(bad_service);
  EXPECT_NE(bad_service.error().message.find("no service api"), std::string::npos);
  EXPECT_NE(bad_service.error().hint.find("web (on director)"), std::string::npos);

  auto bad_server = resolve_ipvs_edit(t, edit(IpvsEditKind::Drain, "web", "client"));
  ASSERT_FALSE(bad_server);
  EXPECT_NE(bad_server.error().message.find("client is not a real server of web"), std::string::npos);
  EXPECT_NE(bad_server.error().hint.find("rs1 (10.10.0.11:80), rs2 (10.10.0.12:80)"),
            std::string::npos)
      << bad_server.error().hint;

  auto gibberish = resolve_ipvs_edit(t, edit(IpvsEditKind::Drain, "web", "no such thing"));
  ASSERT_FALSE(gibberish);
  EXPECT_NE(gibberish.error().message.find("nor ADDRESS[:PORT]"), std::string::npos);

  auto wrong_port = resolve_ipvs_edit(t, edit(IpvsEditKind::Drain, "web", "10.10.0.11:81"));
  EXPECT_FALSE(wrong_port);
}

TEST(IpvsEditResolve, ServersByNodeAddressOrAddressAndPort) {
  Topology t = demo("dr-demo");
  for (const char* spec : {"rs2", "10.10.0.12", "10.10.0.12:80"}) {
    auto r = resolve_ipvs_edit(t, edit(IpvsEditKind::Drain, "web", spec));
    ASSERT_TRUE(r) << spec << ": " << r.error().str();
    EXPECT_EQ(r->director, "director");
    EXPECT_EQ(r->server.addr.str(), "10.10.0.12");
    ASSERT_EQ(r->notes.size(), 1u);
    EXPECT_NE(r->notes[0].find("no new connections"), std::string::npos);
  }
}

TEST(IpvsEditResolve, WeightsSchedulersAndTimeoutsAreChecked) {
  Topology t = demo("dr-demo");
  auto w = edit(IpvsEditKind::SetWeight, "web", "rs1");
  w.weight = -1;
  EXPECT_FALSE(resolve_ipvs_edit(t, w));
  auto s = edit(IpvsEditKind::SetScheduler, "web");
  s.scheduler = "";
  EXPECT_FALSE(resolve_ipvs_edit(t, s));
  s.scheduler = "Bad Name";
  EXPECT_FALSE(resolve_ipvs_edit(t, s));
  s.scheduler = "wrr";
  EXPECT_TRUE(resolve_ipvs_edit(t, s));
  // An unknown but well-formed name goes to the kernel, which has the last word.
  s.scheduler = "nosuch";
  EXPECT_TRUE(resolve_ipvs_edit(t, s));
  IpvsEdit to;
  to.kind = IpvsEditKind::SetTimeouts;
  EXPECT_FALSE(resolve_ipvs_edit(t, to));  // all 0 changes nothing
  to.timeouts = {900, 0, 0};
  auto ok = resolve_ipvs_edit(t, to);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->director, "director");
  to.node = "nope";
  auto bad = resolve_ipvs_edit(t, to);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().hint.find("client"), std::string::npos);
}

TEST(IpvsEditResolve, AddServerByNodeOrAddress) {
  Topology t = demo("dr-demo");
  // client is a node: its one address, DR like the others, but it holds no VIP on lo and
  // runs no server: both are said.
  auto r = resolve_ipvs_edit(t, edit(IpvsEditKind::AddServer, "web", "client"));
  ASSERT_TRUE(r) << r.error().str();
  EXPECT_EQ(r->server.addr.str(), "10.10.0.10");
  EXPECT_EQ(r->server.node, "client");
  EXPECT_EQ(r->server.method, FwdMethod::Dr);
  EXPECT_EQ(r->server.weight, 1);
  ASSERT_EQ(r->notes.size(), 2u);
  EXPECT_NE(r->notes[0].find("does not hold the VIP"), std::string::npos);
  EXPECT_NE(r->notes[1].find("runs no agent on port 80"), std::string::npos);

  auto nobody = resolve_ipvs_edit(t, edit(IpvsEditKind::AddServer, "web", "10.10.0.99:8080"));
  ASSERT_TRUE(nobody) << nobody.error().str();
  EXPECT_EQ(nobody->server.port, 8080);
  EXPECT_EQ(nobody->server.node, "");
  ASSERT_EQ(nobody->notes.size(), 1u);
  EXPECT_NE(nobody->notes[0].find("no node of lab dr-demo has 10.10.0.99"), std::string::npos);

  auto twice = resolve_ipvs_edit(t, edit(IpvsEditKind::AddServer, "web", "rs1"));
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.error().message.find("already"), std::string::npos);

  auto other_family = edit(IpvsEditKind::AddServer, "web", "fd00::5");
  EXPECT_FALSE(resolve_ipvs_edit(t, other_family));
  other_family.method = FwdMethod::Tun;
  EXPECT_TRUE(resolve_ipvs_edit(t, other_family));
}

TEST(IpvsEditResolve, RemovingTheLastServerSaysSo) {
  Topology t = demo("dr-demo");
  auto first = resolve_ipvs_edit(t, edit(IpvsEditKind::RemoveServer, "web", "rs1"));
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->notes.empty());
  edit_topology(t, *first);
  auto last = resolve_ipvs_edit(t, edit(IpvsEditKind::RemoveServer, "web", "rs2"));
  ASSERT_TRUE(last);
  ASSERT_EQ(last->notes.size(), 1u);
  EXPECT_NE(last->notes[0].find("no real servers now"), std::string::npos);
  edit_topology(t, *last);
  EXPECT_TRUE(web(t).real_servers.empty());
  // With no servers left, add-server needs to be told the method.
  auto add = resolve_ipvs_edit(t, edit(IpvsEditKind::AddServer, "web", "rs1"));
  ASSERT_FALSE(add);
  EXPECT_NE(add.error().hint.find("--method"), std::string::npos);
}

TEST(IpvsEditTopology, EveryEditChangesTheKeptTopology) {
  Topology t = demo("nat-demo");
  const std::string svc = t.node("director")->services.at(0).name;
  auto apply = [&](IpvsEdit e) {
    auto r = resolve_ipvs_edit(t, e);
    ASSERT_TRUE(r) << r.error().str();
    edit_topology(t, *r);
  };
  auto w = edit(IpvsEditKind::SetWeight, svc, "rs1");
  w.weight = 3;
  apply(w);
  apply(edit(IpvsEditKind::Drain, svc, "rs2"));
  auto s = edit(IpvsEditKind::SetScheduler, svc);
  s.scheduler = "wrr";
  apply(s);
  auto p = edit(IpvsEditKind::SetPersistence, svc);
  p.persistence = 60;
  apply(p);
  const auto& v = t.node("director")->services.at(0);
  EXPECT_EQ(v.scheduler, "wrr");
  EXPECT_EQ(v.persistence, 60u);
  ASSERT_EQ(v.real_servers.size(), 2u);
  for (const auto& r : v.real_servers) EXPECT_EQ(r.weight, r.node == "rs1" ? 3 : 0) << r.node;
  apply(edit(IpvsEditKind::RemoveServer, svc, "rs2"));
  ASSERT_EQ(t.node("director")->services.at(0).real_servers.size(), 1u);
  auto add = edit(IpvsEditKind::AddServer, svc, "rs2");
  add.weight = 2;
  apply(add);
  const auto& back = t.node("director")->services.at(0).real_servers;
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].node, "rs2");
  EXPECT_EQ(back[1].method, FwdMethod::Nat);
  EXPECT_EQ(back[1].weight, 2);
}

TEST(IpvsEditRecord, JsonRoundTripAndReplayOnLoad) {
  const std::string dir = ::testing::TempDir() + "/ipvs-edit-state-XXXXXX";
  std::vector<char> buf(dir.begin(), dir.end());
  buf.push_back('\0');
  ASSERT_TRUE(::mkdtemp(buf.data()));
  ::setenv("LABCTL_STATE_DIR", buf.data(), 1);
  ASSERT_TRUE(make_state_dir("dr-demo"));

  std::vector<IpvsEdit> edits;
  auto w = edit(IpvsEditKind::SetWeight, "web", "rs1");
  w.weight = 3;
  edits.push_back(w);
  auto a = edit(IpvsEditKind::AddServer, "web", "10.10.0.99");
  a.method = FwdMethod::Dr;
  a.weight = 2;
  edits.push_back(a);
  IpvsEdit to;
  to.kind = IpvsEditKind::SetTimeouts;
  to.timeouts = {900, 120, 300};
  edits.push_back(to);
  nlohmann::json all = nlohmann::json::array();
  for (const auto& e : edits) {
    auto back = ipvs_edit_from_json(ipvs_edit_json(e));
    ASSERT_TRUE(back);
    EXPECT_EQ(ipvs_edit_json(*back), ipvs_edit_json(e));
    all.push_back(ipvs_edit_json(e));
  }
  all.push_back({{"edit", "drain"}, {"service", "web"}, {"server", "gone-node"}});
  std::ofstream(ipvs_edits_path("dr-demo")) << all.dump();

  Topology t = demo("dr-demo");
  auto skipped = apply_recorded_ipvs_edits(t);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_NE(skipped[0].find("gone-node"), std::string::npos);
  const auto& rs = web(t).real_servers;
  ASSERT_EQ(rs.size(), 3u);
  EXPECT_EQ(rs[0].weight, 3);
  EXPECT_EQ(rs[2].addr.str(), "10.10.0.99");
  EXPECT_EQ(rs[2].weight, 2);

  std::ofstream(ipvs_edits_path("dr-demo")) << "{not json";
  Topology t2 = demo("dr-demo");
  EXPECT_EQ(apply_recorded_ipvs_edits(t2).size(), 1u);
  EXPECT_EQ(web(t2).real_servers.size(), 2u);
  EXPECT_FALSE(ipvs_edit_from_json({{"edit", "explode"}}));

  std::filesystem::remove_all(buf.data());
  ::unsetenv("LABCTL_STATE_DIR");
}

TEST(IpvsEditKinds, NamesRoundTrip) {
  for (auto k : {IpvsEditKind::SetWeight, IpvsEditKind::Drain, IpvsEditKind::AddServer,
                 IpvsEditKind::RemoveServer, IpvsEditKind::SetScheduler,
                 IpvsEditKind::SetPersistence, IpvsEditKind::SetTimeouts})
    EXPECT_EQ(parse_ipvs_edit_kind(to_string(k)), k);
  EXPECT_FALSE(parse_ipvs_edit_kind("status"));
}

IpvsTable sample_table() {
  IpvsTable t;
  t.lab = "dr-demo";
  t.node = "director";
  t.ns = "dr-demo-director";
  t.info = {0x010201, 4096};
  t.timeouts = {900, 120, 300};
  IpvsTableService s;
  s.service.family = AF_INET;
  s.service.protocol = IPPROTO_TCP;
  s.service.addr = *IpAddr::parse("10.10.0.100");
  s.service.port = 80;
  s.service.scheduler = "sh";
  s.service.flags = IP_VS_SVC_F_HASHED | IP_VS_SVC_F_PERSISTENT | IP_VS_SVC_F_SCHED1 | IP_VS_SVC_F_SCHED2;
  s.service.timeout = 300;
  s.service.netmask = htonl(0xffffff00);
  s.service.stats.conns = 40;
  s.service.stats.inpkts = 240;
  IpvsTableDest d;
  d.dest.addr = *IpAddr::parse("10.10.0.11");
  d.dest.port = 80;
  d.dest.fwd_method = IP_VS_CONN_F_DROUTE;
  d.dest.method = FwdMethod::Dr;
  d.dest.weight = 3;
  d.dest.inact_conns = 20;
  d.dest.stats.conns = 20;
  s.dests.push_back(d);
  d.dest.addr = *IpAddr::parse("10.10.0.99");
  d.dest.weight = 0;
  s.dests.push_back(d);
  t.services.push_back(s);
  IpvsTotals totals;
  totals.cpus = 1;
  totals.exact.conns = 41;
  totals.exact.inpkts = 246;
  t.totals = totals;
  return t;
}

TEST(IpvsTableRender, ListLooksLikeIpvsadmWithLabctlNames) {
  IpvsTable t = sample_table();
  name_ipvs_table(demo("dr-demo"), t);
  EXPECT_EQ(t.services[0].name, "web");
  EXPECT_EQ(t.services[0].dests[0].node, "rs1");
  EXPECT_EQ(t.services[0].dests[1].node, "");
  const std::string out = render_ipvs(t, IpvsView::List);
  EXPECT_NE(out.find("IP Virtual Server version 1.2.1 (size=4096)"), std::string::npos) << out;
  EXPECT_NE(out.find("Prot LocalAddress:Port Scheduler Flags\n"), std::string::npos) << out;
  EXPECT_NE(out.find("TCP  10.10.0.100:80 sh (sh-fallback,sh-port) persistent 300 mask "
                     "255.255.255.0  (web)\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("  -> 10.10.0.11:80                Route   3      0          20         rs1\n"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("  -> 10.10.0.99:80                Route   0      0          20         -\n"),
            std::string::npos)
      << out;

  const std::string stats = render_ipvs(t, IpvsView::Stats);
  EXPECT_NE(stats.find("TCP  10.10.0.100:80                     40      240"), std::string::npos)
      << stats;
  EXPECT_NE(stats.find("estimator (refreshed about every 2 s"), std::string::npos) << stats;
  EXPECT_NE(stats.find("exact totals of the namespace (per-cpu): conns 41, in 246"), std::string::npos)
      << stats;
  EXPECT_NE(render_ipvs(t, IpvsView::Timeouts).find("Timeout (tcp tcpfin udp): 900 120 300"),
            std::string::npos);

  EXPECT_NE(out.find("director sees only the client's half of the close"), std::string::npos) << out;
  for (auto& d : t.services[0].dests) d.dest.fwd_method = IP_VS_CONN_F_MASQ;  // NAT sees both FINs
  EXPECT_EQ(render_ipvs(t, IpvsView::List).find("client's half of the close"), std::string::npos);

  t.services[0].dests.clear();
  EXPECT_NE(render_ipvs(t, IpvsView::List).find("no real servers"), std::string::npos);
}

TEST(IpvsTableRender, ConnectionsAndJson) {
  IpvsTable t = sample_table();
  name_ipvs_table(demo("dr-demo"), t);
  t.with_conns = true;
  IpvsConn c;
  c.protocol = "TCP";
  c.client = *IpAddr::parse("10.10.0.10");
  c.client_port = 40000;
  c.vip = *IpAddr::parse("10.10.0.100");
  c.vport = 80;
  c.dest = *IpAddr::parse("10.10.0.11");
  c.dport = 80;
  c.state = "TIME_WAIT";
  c.expires = 97;
  t.conns.push_back(c);
  const std::string out = render_ipvs(t, IpvsView::Connections);
  EXPECT_NE(out.find("TCP 01:37  TIME_WAIT   10.10.0.10:40000   10.10.0.100:80     10.10.0.11:80  rs1"),
            std::string::npos)
      << out;

  auto j = ipvs_json(t);
  EXPECT_EQ(j["node"], "director");
  EXPECT_EQ(j["timeouts"]["tcpfin"], 120);
  EXPECT_EQ(j["counters"]["services_and_servers"], "estimator");
  EXPECT_EQ(j["totals"]["exact"]["conns"], 41);
  const auto& s = j["services"][0];
  EXPECT_EQ(s["name"], "web");
  EXPECT_EQ(s["protocol"], "TCP");
  EXPECT_EQ(s["address"], "10.10.0.100");
  EXPECT_EQ(s["scheduler"], "sh");
  EXPECT_EQ(s["flags"], nlohmann::json({"persistent", "sh-fallback", "sh-port"}));
  EXPECT_EQ(s["flags_raw"], IP_VS_SVC_F_PERSISTENT | IP_VS_SVC_F_SCHED1 | IP_VS_SVC_F_SCHED2);
  EXPECT_EQ(s["timeout"], 300);
  EXPECT_EQ(s["netmask"], "255.255.255.0");
  EXPECT_EQ(s["stats"]["inpkts"], 240);
  EXPECT_EQ(s["real_servers"][0]["forward"], "Route");
  EXPECT_EQ(s["real_servers"][0]["method"], "dr");
  EXPECT_EQ(s["real_servers"][0]["node"], "rs1");
  EXPECT_TRUE(s["real_servers"][1]["node"].is_null());
  EXPECT_EQ(j["connections"][0]["state"], "TIME_WAIT");
  EXPECT_EQ(j["connections"][0]["client_port"], 40000);
}

TEST(IpvsTableDirector, DefaultsToTheOneDirectorAndNamesWhatExists) {
  Topology t = demo("dr-demo");
  EXPECT_EQ(director_nodes(t), std::vector<std::string>{"director"});
  EXPECT_EQ(*pick_director(t, ""), "director");
  EXPECT_EQ(*pick_director(t, "rs1"), "rs1");
  auto bad = pick_director(t, "nope");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().hint.find("its directors: director"), std::string::npos);
  Topology two = t;
  // A service on rs1 too makes two directors.
  for (auto& n : two.nodes)
    if (n.name == "rs1") n.services = two.node("director")->services;
  auto amb = pick_director(two, "");
  ASSERT_FALSE(amb);
  EXPECT_NE(amb.error().message.find("2 directors: director, rs1"), std::string::npos)
      << amb.error().message;
  Topology none = t;
  for (auto& n : none.nodes) n.services.clear();
  EXPECT_FALSE(pick_director(none, ""));
}


// A check on one host reads a director on another through `ipvs --json`: what ipvs_json
// writes reads back as the same table (the connection table aside), and a field that is
// missing or wrong is an error, not a zero.
TEST(IpvsTableJson, ReadsBackWhatIpvsJsonWrites) {
  IpvsTable t = sample_table();
  name_ipvs_table(demo("dr-demo"), t);
  t.services[0].service.flags |= IP_VS_SVC_F_PERSISTENT;
  t.services[0].service.timeout = 300;
  t.services[0].service.netmask = 0x00ffffff;  // 255.255.255.0 in network order
  auto back = ipvs_table_from_json(ipvs_json(t));
  ASSERT_TRUE(back) << back.error().str();
  EXPECT_EQ(ipvs_json(*back).dump(), ipvs_json(t).dump());
  ASSERT_EQ(back->services.size(), t.services.size());
  const IpvsService& s = back->services[0].service;
  EXPECT_EQ(s.netmask, 0x00ffffffu);
  EXPECT_EQ(s.timeout, 300u);
  ASSERT_FALSE(back->services[0].dests.empty());
  EXPECT_EQ(back->services[0].dests[0].dest.method, t.services[0].dests[0].dest.method);
  EXPECT_EQ(back->totals->exact.conns, 41u);

  auto j = ipvs_json(t);
  j["services"][0]["real_servers"][0].erase("weight");
  auto missing = ipvs_table_from_json(j);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("weight"), std::string::npos) << missing.error().message;
  j = ipvs_json(t);
  j["services"][0]["real_servers"][0]["forward"] = "Teleport";
  EXPECT_FALSE(ipvs_table_from_json(j));
}

}  // namespace
}  // namespace labctl
