// The dry-run script is real: on this kernel (no IPVS, no IPIP) a routed lab built from it
// carries HTTP from client to server through a router, and its teardown leaves nothing.
#include <sys/socket.h>

#include <gtest/gtest.h>

#include "labctl/plan/planner.h"
#include "tests/host/host_test.h"
#include "tests/host/script_lab.h"
#include "tests/unit/demo_labs.h"

namespace labctl {
namespace {

Topology routed_lab(const std::string& name) {
  Topology t;
  t.name = name;
  t.switches = {{"a", 0, {}}, {"b", 1400, {}}};
  Node client = test::named("client");
  client.interfaces.push_back(test::on_switch("client", "eth0", "a", {test::P("10.9.1.10/24")}));
  client.routes.push_back(test::default_via("10.9.1.1"));
  Node router = test::named("router");
  router.interfaces.push_back(test::on_switch("router", "eth0", "a", {test::P("10.9.1.1/24")}));
  router.interfaces.push_back(test::on_switch("router", "eth1", "b", {test::P("10.9.2.1/24")}));
  router.sysctls = {{"net.ipv4.ip_forward", "1", {}}};
  Node server = test::named("server");
  server.interfaces.push_back(test::on_switch("server", "eth0", "b", {test::P("10.9.2.20/24")}));
  server.lo_addresses = {test::P("10.9.9.9/32")};
  server.sysctls = {{"net.ipv4.conf.eth0.rp_filter", "0", {}}};
  server.routes.push_back(test::default_via("10.9.2.1"));
  server.agents.push_back(test::http_agent(8080));
  t.nodes = {client, router, server};
  return t;
}

TEST(DryRunScript, BuildsAWorkingRoutedLabAndTearsItDown) {
  LABCTL_REQUIRE_ROOT();
  Plan plan = make_plan(routed_lab(test::unique_name("dry")));
  {
    test::ScriptLab lab(plan);
    auto up = lab.up();
    ASSERT_EQ(up.status, 0) << up.output;
    auto r = lab.exec_until_ok("client", "curl -s --max-time 2 http://10.9.2.20:8080/");
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(r.output, "server\n");
    // The switch MTU reached the ports that did not set their own.
    auto mtu = test::run_shell("ip -n " + plan.lab + "-server link show eth0");
    EXPECT_NE(mtu.output.find("mtu 1400"), std::string::npos) << mtu.output;
    auto lo = test::run_shell("ip -n " + plan.lab + "-server addr show dev lo");
    EXPECT_NE(lo.output.find("10.9.9.9/32"), std::string::npos) << lo.output;
  }
  EXPECT_FALSE(test::any_netns_left(plan));
}

TEST(DryRunScript, TeardownScriptAloneRemovesEverything) {
  LABCTL_REQUIRE_ROOT();
  Plan plan = make_plan(routed_lab(test::unique_name("dry")));
  test::ScriptLab lab(plan);
  ASSERT_EQ(lab.up().status, 0);
  auto down = test::run_script(render_down_script(plan), plan.lab + "-down");
  EXPECT_EQ(down.status, 0) << down.output;
  EXPECT_FALSE(test::any_netns_left(plan));
}

// The script marks its namespaces as `up` does: `labctl down` takes a script-built lab
// down, agents and the script's pid/log folder included. Before, down said "down" and
// left all of them.
TEST(DryRunScript, LabctlDownTakesDownWhatTheScriptBuilt) {
  LABCTL_REQUIRE_ROOT();
  Plan plan = make_plan(routed_lab(test::unique_name("dry")));
  test::ScriptLab lab(plan);
  ASSERT_EQ(lab.up().status, 0);
  ASSERT_EQ(lab.exec_until_ok("client", "curl -s --max-time 2 http://10.9.2.20:8080/").status, 0);
  auto mark = test::run_shell("ip -n " + plan.lab + "-client -j link show dev lo");
  EXPECT_NE(mark.output.find("\"ifalias\":\"labctl:" + plan.lab + "\""), std::string::npos)
      << mark.output;
  auto down = test::run_shell(LABCTL_BINARY_DIR "/labctl/labctl down " + plan.lab);
  EXPECT_EQ(down.status, 0) << down.output;
  EXPECT_EQ(down.output, "lab " + plan.lab + " is down (5 namespaces removed)\n");
  EXPECT_FALSE(test::any_netns_left(plan));
  EXPECT_FALSE(std::filesystem::exists("/run/labctl-script/" + plan.lab));
  EXPECT_EQ(test::run_shell("pgrep -f '[l]abagent http --port 8080 --name server'").output, "");
}

}  // namespace
}  // namespace labctl
