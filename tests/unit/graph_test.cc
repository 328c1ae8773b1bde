#include "labctl/plan/graph.h"

#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "labctl/model/load.h"
#include "tests/unit/demo_labs.h"

namespace labctl {
namespace {

using ::testing::HasSubstr;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Graphviz writes '-' as an entity in SVG text.
std::string svg_text(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '-' ? std::string("&#45;") : std::string(1, c);
  return out;
}

TEST(RenderDot, ShowsRolesAddressesLinksAndServices) {
  std::string d = render_dot(test::tun_lab());
  EXPECT_THAT(d, HasSubstr("graph \"tun-demo\" {"));
  EXPECT_THAT(d, HasSubstr("\"node:rs1\" [shape=box"));
  EXPECT_THAT(d, HasSubstr("real server (TUN)\\neth0 10.2.0.11/24\\ntunl0 10.1.0.100/32"));
  EXPECT_THAT(d, HasSubstr("\"switch:net2\" [shape=ellipse"));
  // Links run from the end nearer the client: client, net1, router, net2, real servers.
  EXPECT_THAT(d, HasSubstr("\"node:client\" -- \"switch:net1\" [label=\"eth0\"]"));
  EXPECT_THAT(d, HasSubstr("\"switch:net1\" -- \"node:router\" [label=\"eth0\"]"));
  EXPECT_THAT(d, HasSubstr("\"switch:net2\" -- \"node:rs2\" [label=\"eth0\"]"));
  EXPECT_THAT(d, HasSubstr("\"node:director\" -- \"node:rs1\" [style=dashed"));
  EXPECT_THAT(d, HasSubstr("label=\"TUN rr 10.1.0.100:80\""));
}

TEST(RenderDot, EscapesQuotesInNames) {
  Topology t = test::dr_lab();
  t.description = "say \"hi\"";
  EXPECT_THAT(render_dot(t), HasSubstr("label=\"dr-demo: say \\\"hi\\\"\""));
}

TEST(RenderDot, NodeToNodeCablesAndTunnelsAreDrawnOnce) {
  Topology t;
  t.name = "p2p";
  Node a = test::named("a"), b = test::named("b");
  Interface ai, bi;
  ai.name = "to-b";
  ai.peer_node = "b";
  ai.peer_ifname = "to-a";
  ai.addresses = {test::P("10.0.0.1/30")};
  bi.name = "to-a";
  bi.peer_node = "a";
  bi.peer_ifname = "to-b";
  bi.addresses = {test::P("10.0.0.2/30")};
  a.interfaces = {ai};
  b.interfaces = {bi};
  Tunnel tun;
  tun.name = "ip1";
  tun.local = test::A("10.0.0.1");
  tun.remote = test::A("10.0.0.2");
  a.tunnels = {tun};
  t.nodes = {a, b};
  std::string d = render_dot(t);
  EXPECT_THAT(d, HasSubstr("\"node:a\" -- \"node:b\" [label=\"to-b - to-a\"]"));
  EXPECT_EQ(d.find("\"node:b\" -- \"node:a\""), std::string::npos);
  EXPECT_THAT(d, HasSubstr("[style=dotted, dir=forward, label=\"ipip ip1 10.0.0.1 > 10.0.0.2\"]"));
}

TEST(RenderMermaid, UsesSafeIdsAndLabels) {
  std::string m = render_mermaid(test::dr_lab());
  EXPECT_THAT(m, HasSubstr("flowchart LR\n"));
  EXPECT_THAT(m, HasSubstr("  n_rs1[\"rs1<br/>real server (DR)<br/>eth0 10.0.0.11/24<br/>lo 10.0.0.100/32\"]"));
  EXPECT_THAT(m, HasSubstr("  s_lan((\"switch lan\"))"));
  EXPECT_THAT(m, HasSubstr("  n_client ---|eth0| s_lan"));
  EXPECT_THAT(m, HasSubstr("  n_director -.->|DR rr 10.0.0.100:80| n_rs2"));
  Topology t = test::dr_lab();
  t.nodes[0].name = "web-1.x";
  EXPECT_THAT(render_mermaid(t), HasSubstr("n_web_1_x[\""));
}

// docs/images/<demo>.dot must be what `labctl graph <demo>` prints today, and the .svg
// next to it must be a rendering of it: scripts/render-docs.sh refreshes both.
TEST(DocsImages, CommittedDotMatchesRenderDotForEveryDemo) {
  for (const char* demo : {"nat-demo", "dr-demo", "tun-demo", "nat-vs-dr"}) {
    SCOPED_TRACE(demo);
    LoadResult r = load_topology(demo);
    ASSERT_TRUE(r.ok());
    std::string images = std::string(LABCTL_SOURCE_DIR) + "/docs/images/";
    std::string dot = render_dot(*r.topology);
    EXPECT_EQ(read_file(images + demo + ".dot"), dot) << "run scripts/render-docs.sh";
    std::string svg = read_file(images + demo + ".svg");
    EXPECT_THAT(svg, HasSubstr("<title>" + svg_text(demo) + "</title>"));
    for (const auto& n : r.topology->nodes) {
      EXPECT_THAT(svg, HasSubstr("<title>node:" + svg_text(n.name) + "</title>"));
      for (const auto& i : n.interfaces)
        for (const auto& a : i.addresses) {
          EXPECT_THAT(svg, HasSubstr(a.str())) << n.name;
        }
    }
  }
}

}  // namespace
}  // namespace labctl
