// Unit tier: `labctl link` and `labctl node` without a kernel: NODE:IF and KEY=VALUE words
// parsed (errors naming the form, the key and its accepted forms), links resolved against
// the topology (the far end a cut sets down; unknown names list what exists), and the
// record of edits folded into what status shows.
#include <gtest/gtest.h>

#include "labctl/lab/live_edit.h"
#include "labctl/model/builtins.h"
#include "labctl/model/load.h"

namespace labctl {
namespace {

Topology demo(const char* name) {
  auto r = load_topology(name);
  EXPECT_TRUE(r.ok());
  return *r.topology;
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(LiveEditParse, EndpointIsNodeColonInterface) {
  auto ok = parse_endpoint("client:eth0");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->first, "client");
  EXPECT_EQ(ok->second, "eth0");
  for (const char* bad : {"client", "client:", ":eth0", ""}) {
    auto r = parse_endpoint(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_TRUE(has(r.error().message, "expected NODE:IF")) << r.error().message;
  }
}

TEST(LiveEditParse, ImpairWordsInTcSpelling) {
  auto imp = parse_impair_args({"delay=50ms", "loss=5%"});
  ASSERT_TRUE(imp) << imp.error().str();
  EXPECT_EQ(impairment_summary(*imp), "delay 50ms, loss 5%");
  auto rate = parse_impair_args({"rate=10mbit"});
  ASSERT_TRUE(rate);
  EXPECT_EQ(*rate->rate, 1250000u);

  auto unit = parse_impair_args({"delay=50parsecs"});
  ASSERT_FALSE(unit);
  EXPECT_TRUE(has(unit.error().message, "'delay'")) << unit.error().message;
  EXPECT_TRUE(has(unit.error().hint, "ms")) << unit.error().hint;
  auto key = parse_impair_args({"latency=5ms"});
  ASSERT_FALSE(key);
  EXPECT_TRUE(has(key.error().str(), "delay")) << key.error().str();
  auto form = parse_impair_args({"delay"});
  ASSERT_FALSE(form);
  EXPECT_TRUE(has(form.error().message, "KEY=VALUE"));
  auto rule = parse_impair_args({"jitter=5ms"});
  ASSERT_FALSE(rule);
  EXPECT_TRUE(has(rule.error().message, "'jitter'")) << rule.error().message;
  EXPECT_FALSE(parse_impair_args({}));
}

TEST(LiveEditResolve, SwitchLinkIsCutAtItsBridgePort) {
  Topology t = demo("dr-demo");
  auto l = resolve_link(t, "client", "eth0");
  ASSERT_TRUE(l) << l.error().str();
  EXPECT_EQ(l->ns, netns_name(t.name, "client"));
  EXPECT_EQ(l->far_ns, netns_name(t.name, "lan"));
  EXPECT_EQ(l->far_dev, t.node("client")->interfaces[0].port);
  EXPECT_FALSE(l->far_is_node);

  auto node = resolve_link(t, "nope", "eth0");
  ASSERT_FALSE(node);
  EXPECT_TRUE(has(node.error().hint, "client, director")) << node.error().hint;
  auto ifname = resolve_link(t, "client", "eth9");
  ASSERT_FALSE(ifname);
  EXPECT_TRUE(has(ifname.error().message, "no interface eth9"));
  EXPECT_TRUE(has(ifname.error().hint, "eth0"));
  EXPECT_EQ(lab_links(t).size(), 4u);  // one per node, each to the switch
}

TEST(LiveEditResolve, NodeToNodeLinkIsCutAtThePeerAndListedOnce) {
  auto r = parse_topology(R"(version = 1
name = "p2p"
[nodes.a]
interfaces.e0 = { peer = "b:e1", addresses = ["10.9.0.1/30"] }
[nodes.b]
interfaces.e1 = { peer = "a:e0", addresses = ["10.9.0.2/30"] }
)",
                          "p2p.toml");
  ASSERT_TRUE(r.ok());
  auto l = resolve_link(*r.topology, "b", "e1");
  ASSERT_TRUE(l);
  EXPECT_TRUE(l->far_is_node);
  EXPECT_EQ(l->far_node, "a");
  EXPECT_EQ(l->far_dev, "e0");
  auto links = lab_links(*r.topology);
  ASSERT_EQ(links.size(), 1u);
  EXPECT_EQ(links[0].node, "a");
}

TEST(LiveEditRecord, FoldsToWhatIsChangedNowAndRoundTrips) {
  auto imp = parse_impair_args({"delay=20ms", "jitter=5ms", "rate=1mbit"});
  ASSERT_TRUE(imp);
  std::vector<LiveEdit> edits = {
      {LiveEditKind::LinkDown, "a", "e0", {}},  {LiveEditKind::LinkDown, "b", "e1", {}},
      {LiveEditKind::LinkUp, "a", "e0", {}},    {LiveEditKind::Impair, "c", "e0", *imp},
      {LiveEditKind::Impair, "d", "e0", *imp},  {LiveEditKind::Clear, "d", "e0", {}},
      {LiveEditKind::NodeCrash, "lb1", "", {}}, {LiveEditKind::NodeCrash, "lb2", "", {}},
      {LiveEditKind::NodeStart, "lb2", "", {}},
  };
  std::vector<LiveEdit> back;
  for (const auto& e : edits) {
    auto r = live_edit_from_json(nlohmann::json::parse(live_edit_json(e).dump()));
    ASSERT_TRUE(r) << r.error().str();
    EXPECT_EQ(r->kind, e.kind);
    EXPECT_EQ(r->node, e.node);
    EXPECT_EQ(r->interface, e.interface);
    EXPECT_EQ(r->impairment, e.impairment);
    back.push_back(*r);
  }
  LiveState s = fold_live_edits(back);
  EXPECT_EQ(s.links_down, (std::set<std::pair<std::string, std::string>>{{"b", "e1"}}));
  ASSERT_EQ(s.impaired.size(), 1u);
  EXPECT_EQ(s.impaired.begin()->first, (std::pair<std::string, std::string>{"c", "e0"}));
  EXPECT_EQ(s.cleared.size(), 1u);
  EXPECT_EQ(s.crashed, std::set<std::string>{"lb1"});
  const std::string text = render_live_state(s);
  EXPECT_TRUE(has(text, "link b:e1 cut")) << text;
  EXPECT_TRUE(has(text, "node lb1 crashed")) << text;
  EXPECT_TRUE(has(text, "link c:e0 impaired: 1mbit, delay 20ms ±5ms")) << text;
  EXPECT_EQ(render_live_state(fold_live_edits({})), "");
  EXPECT_FALSE(live_edit_from_json({{"edit", "explode"}, {"node", "a"}}));
}

TEST(FailoverHow, DefaultsToStopKeepalivedAndNamesTheAcceptedForms) {
  std::string text(find_builtin("ha-demo")->text);
  auto plain = parse_topology(text, "ha-demo.toml");
  ASSERT_TRUE(plain.ok());
  for (const auto& c : plain.topology->checks)
    if (c.kind == "failover") {
      EXPECT_EQ(c.params.text("how"), "stop-keepalived");
    }
  auto crash = parse_topology(text + "\n[checks.f2]\nkind = \"failover\"\nfrom = \"client\"\n"
                                     "service = \"web\"\nhow = \"crash-node\"\n",
                              "ha-demo.toml");
  ASSERT_TRUE(crash.ok());
  EXPECT_EQ(crash.topology->checks.back().params.text("how"), "crash-node");
  auto bad = parse_topology(text + "\n[checks.f3]\nkind = \"failover\"\nfrom = \"client\"\n"
                                   "service = \"web\"\nhow = \"cut-cable\"\n",
                            "ha-demo.toml");
  ASSERT_FALSE(bad.ok());
  std::string all;
  for (const auto& d : bad.diagnostics) all += format_diagnostic(d) + "\n";
  EXPECT_TRUE(has(all, "not stop-keepalived, cut-link or crash-node")) << all;
}

}  // namespace
}  // namespace labctl
