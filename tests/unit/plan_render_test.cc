#include "labctl/plan/render.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "labctl/model/load.h"
#include "labctl/plan/explain.h"
#include "labctl/plan/planner.h"
#include "tests/unit/demo_labs.h"

namespace labctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Compares against a file under tests/data; LABCTL_UPDATE_GOLDEN=1 rewrites it instead
/// (then review the diff before committing).
void expect_golden(const std::string& name, const std::string& actual) {
  std::string path = std::string(LABCTL_TEST_DATA) + "/" + name;
  if (const char* u = std::getenv("LABCTL_UPDATE_GOLDEN"); u && std::string(u) == "1") {
    std::ofstream(path) << actual;
    return;
  }
  EXPECT_EQ(actual, read_file(path)) << "golden file " << path
                                     << " differs; LABCTL_UPDATE_GOLDEN=1 rewrites it";
}

/// `bash -n`: the script parses (nothing is executed).
// Through a pipe, not a file: CTest runs test cases as parallel processes.
bool bash_parses(const std::string& script) {
  FILE* bash = popen("bash -n", "w");
  if (bash == nullptr) return false;
  std::fwrite(script.data(), 1, script.size(), bash);
  return pclose(bash) == 0;
}

// Node a's agent b-c and node a-b's agent c: each gets its own pid file and log, and the
// teardown stops each once (as "NODE-AGENT" they shared one: one killed twice, one leaked).
TEST(RenderScript, AgentsWhoseNamesJoinAlikeGetTheirOwnFiles) {
  auto r = parse_topology(R"(version = 1
name = "clash"
[switches.lan]
[nodes.a]
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.1/24"] }
agents.b-c = { kind = "command", argv = ["sleep", "100"] }
[nodes.a-b]
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.2/24"] }
agents.c = { kind = "command", argv = ["sleep", "100"] }
)",
                          "clash.toml");
  ASSERT_TRUE(r.ok());
  const Plan plan = make_plan(*r.topology);
  const std::string up = render_script(plan), down = render_down_script(plan);
  for (const char* base : {"/run/labctl-script/clash/a/b-c", "/run/labctl-script/clash/a-b/c"}) {
    const std::string pid = std::string(base) + ".pid", log = std::string(base) + ".log";
    EXPECT_THAT(up, HasSubstr(">" + log + " 2>&1")) << up;
    EXPECT_THAT(up, HasSubstr("echo $! >" + pid + ";")) << up;
    EXPECT_THAT(down, HasSubstr("kill \"$(cat " + pid + ")\"")) << down;
  }
  EXPECT_TRUE(bash_parses(up));
  EXPECT_TRUE(bash_parses(down));
}

TEST(RenderScript, DrDemoMatchesGolden) {
  expect_golden("dr-demo.up.sh", render_script(make_plan(test::dr_lab())));
  expect_golden("dr-demo.down.sh", render_down_script(make_plan(test::dr_lab())));
}

TEST(RenderScript, EveryStepIsOneCommandWithItsWhyAbove) {
  for (const auto& t : {test::dr_lab(), test::nat_lab(), test::tun_lab()}) {
    Plan p = make_plan(t);
    std::string s = render_script(p);
    EXPECT_THAT(s, StartsWith("#!/usr/bin/env bash\n"));
    EXPECT_THAT(s, HasSubstr("set -euo pipefail\n"));
    EXPECT_THAT(s, HasSubstr("\"" + t.name + "\""));
    EXPECT_TRUE(bash_parses(s)) << t.name;
    std::size_t pos = 0;
    for (const auto& step : p.steps) {
      // Commands appear in plan order, each on a line of its own.
      std::size_t at = s.find("\n" + shell_command(step.step) + "\n", pos);
      ASSERT_NE(at, std::string::npos) << describe(step.step);
      pos = at + 1;
    }
  }
}

TEST(RenderScript, ChecksForItsToolsOnlyWhenNeeded) {
  Topology t = test::dr_lab();
  EXPECT_THAT(render_script(make_plan(t)), HasSubstr("command -v labagent"));
  for (auto& n : t.nodes) {
    n.agents.clear();
    n.services.clear();
  }
  std::string s = render_script(make_plan(t));
  EXPECT_THAT(s, Not(HasSubstr("command -v labagent")));
  EXPECT_THAT(s, Not(HasSubstr("command -v ipvsadm")));
}

TEST(RenderDownScript, StopsAgentsThenDeletesEveryNamespace) {
  Plan p = make_plan(test::tun_lab());
  std::string s = render_down_script(p);
  EXPECT_TRUE(bash_parses(s));
  EXPECT_THAT(s, Not(HasSubstr("set -e")));  // a teardown keeps going
  std::size_t last_kill = s.rfind("kill ");
  std::size_t first_del = s.find("ip netns del ");
  ASSERT_NE(last_kill, std::string::npos);
  EXPECT_LT(last_kill, first_del);
  for (const char* m : {"client", "router", "director", "rs1", "rs2", "net1", "net2"})
    EXPECT_THAT(s, HasSubstr("ip netns del tun-demo-" + std::string(m) + " || status=1\n"));
}

TEST(PlanJson, WrittenStepByStepItIsTheSameDocument) {
  for (const Topology& t : {test::nat_lab(), test::tun_lab()}) {
    Plan p = make_plan(t);
    std::ostringstream out;
    write_plan_json(out, p);
    const std::string text = out.str();
    auto parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(parsed.is_discarded()) << text.substr(0, 400);
    EXPECT_EQ(parsed, plan_json(p));
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), static_cast<long>(p.steps.size()) + 2)
        << "one step per line";
  }
}

TEST(PlanJson, EveryStepAsData) {
  Plan p = make_plan(test::nat_lab());
  auto j = plan_json(p);
  EXPECT_EQ(j["lab"], "nat-demo");
  ASSERT_EQ(j["steps"].size(), p.steps.size());
  for (std::size_t i = 0; i < p.steps.size(); ++i) {
    const auto& s = j["steps"][i];
    EXPECT_EQ(s["shell"], shell_command(p.steps[i].step));
    EXPECT_EQ(s["ns"], step_netns(p.steps[i].step));
    EXPECT_EQ(s["why"], p.steps[i].why);
    EXPECT_EQ(s["index"], i + 1);
  }
  auto dest = std::find_if(j["steps"].begin(), j["steps"].end(),
                           [](const auto& s) { return s["type"] == "add-ipvs-dest"; });
  ASSERT_NE(dest, j["steps"].end());
  EXPECT_EQ((*dest)["fields"]["method"], "nat");
  EXPECT_EQ((*dest)["fields"]["port"], 8080);
  EXPECT_EQ((*dest)["fields"]["service"]["vip"], "172.16.0.100");
  auto route = std::find_if(j["steps"].begin(), j["steps"].end(),
                            [](const auto& s) { return s["type"] == "add-route"; });
  ASSERT_NE(route, j["steps"].end());
  EXPECT_EQ((*route)["fields"]["to"], "default");
  EXPECT_EQ((*route)["fields"]["via"], "10.1.0.1");
}

TEST(RenderExplain, GroupsEveryStepUnderItsNodeWithRoles) {
  Topology t = test::tun_lab();
  Plan p = make_plan(t);
  std::string e = render_explain(t, p);
  EXPECT_THAT(e, HasSubstr("client: client  [namespace tun-demo-client]"));
  EXPECT_THAT(e, HasSubstr("router: router  [namespace tun-demo-router]"));
  EXPECT_THAT(e, HasSubstr("director: director (TUN)"));
  EXPECT_THAT(e, HasSubstr("rs1: real server (TUN)"));
  EXPECT_THAT(e, HasSubstr("switch net2  [namespace tun-demo-net2]"));
  EXPECT_THAT(e, HasSubstr("tunl0   10.1.0.100/32  (receives IP-in-IP)"));
  EXPECT_THAT(e, HasSubstr("-> rs2 10.2.0.12:80 (TUN, weight 1)"));
  // Each step is listed exactly once, numbered by its place in the plan.
  for (std::size_t i = 0; i < p.steps.size(); ++i) {
    std::string line = std::to_string(i + 1) + ". " + shell_command(p.steps[i].step) + "\n";
    std::size_t at = e.find(line);
    ASSERT_NE(at, std::string::npos) << line;
    EXPECT_EQ(e.find(line, at + 1), std::string::npos) << line;
  }
  // rs1's steps sit between its header and the next node's.
  std::size_t rs1 = e.find("rs1: real server"), rs2 = e.find("rs2: real server");
  std::size_t tunl0_up = e.find("ip -n tun-demo-rs1 link set dev tunl0 up");
  EXPECT_LT(rs1, tunl0_up);
  EXPECT_LT(tunl0_up, rs2);
}

TEST(WrapWords, BreaksAtSpacesWithinWidth) {
  EXPECT_EQ(wrap_words("aa bb cc", 5), (std::vector<std::string>{"aa bb", "cc"}));
  EXPECT_EQ(wrap_words("averyveryverylongword x", 5),
            (std::vector<std::string>{"averyveryverylongword", "x"}));
  EXPECT_TRUE(wrap_words("", 10).empty());
}

}  // namespace
}  // namespace labctl
