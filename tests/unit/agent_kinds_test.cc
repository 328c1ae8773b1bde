// Unit tier: every kind of agent is one registered entry in each of its halves, joined by
// name: its model spec (model/agent_specs.cc: keys, parse hook), its plan (plan/agent_kinds.cc:
// argv, readiness, start order, why) and, when it runs labagent, labagent's subcommand of
// its name (agents/<kind>.cc); and docs/topology.md describes it. A kind added to one
// registry but not another fails here.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "labctl/base/file.h"
#include "labctl/model/agent_spec.h"
#include "labctl/plan/agent.h"
#include "labctl/plan/agent_kind.h"

namespace labctl {
namespace {

TEST(AgentKinds, EveryModelSpecHasAPlanAndEveryPlanASpec) {
  const auto& specs = topo::agent_kinds();
  const auto& plans = agent_kind_plans();
  ASSERT_FALSE(specs.empty());
  EXPECT_EQ(specs.size(), plans.size());
  for (const auto& spec : specs) {
    SCOPED_TRACE(spec.name);
    EXPECT_NE(spec.parse, nullptr);
    const AgentKindPlan* plan = find_agent_kind_plan(spec.name);
    ASSERT_NE(plan, nullptr) << "add its plan half to plan/agent_kinds.cc";
    EXPECT_NE(plan->argv, nullptr);
    EXPECT_NE(plan->listen, nullptr);
    EXPECT_NE(plan->why, nullptr);
    EXPECT_TRUE(plan->phase >= 0 && plan->phase <= 2) << "the planner starts phases 0, 1 and 2";
  }
  for (const auto& plan : plans) {
    SCOPED_TRACE(plan.name);
    EXPECT_NE(topo::find_agent_kind(plan.name), nullptr) << "add its spec to model/agent_specs.cc";
  }
}

// `labagent NAME --help` answers with the subcommand's own usage (CLI11 exits 0 for
// --help even after an unknown word, with the program's usage).
bool labagent_has(const std::string& bin, const std::string& name) {
  FILE* p = ::popen((bin + " " + name + " --help 2>&1").c_str(), "r");
  if (!p) return false;
  std::string out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  int st = ::pclose(p);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 &&
         out.find("Usage: labagent " + name + " [OPTIONS]") != std::string::npos;
}

TEST(AgentKinds, EveryKindThatRunsLabagentHasItsSubcommand) {
  const std::string bin = std::string(LABCTL_BINARY_DIR) + "/agents/labagent";
  ASSERT_TRUE(std::filesystem::exists(bin)) << bin << " is built with unit_tests";
  EXPECT_FALSE(labagent_has(bin, "no-such-kind"));
  for (const auto& plan : agent_kind_plans()) {
    if (!plan.runs_labagent) continue;
    SCOPED_TRACE(plan.name);
    Agent a;
    a.name = "a";
    a.kind = plan.name;
    auto argv = agent_argv(a, "n", bin);
    ASSERT_GE(argv.size(), 2u);
    EXPECT_EQ(argv[0], bin);
    EXPECT_EQ(argv[1], plan.name) << "a kind that runs labagent runs the subcommand of its name";
    EXPECT_TRUE(labagent_has(bin, plan.name)) << "add agents/" << plan.name << ".cc registering it";
  }
}

TEST(AgentKinds, DocsDescribeEveryKind) {
  auto doc = read_regular_file(std::string(LABCTL_SOURCE_DIR) + "/docs/topology.md", 1 << 20);
  ASSERT_TRUE(doc) << doc.error().str();
  // The Agents section only: the Checks section has a table of kinds too.
  const auto begin = doc->find("\n### Agents\n");
  ASSERT_NE(begin, std::string::npos);
  const std::string section = doc->substr(begin, doc->find("\n### ", begin + 1) - begin);
  for (const auto& spec : topo::agent_kinds())
    EXPECT_NE(section.find("| `" + spec.name + "` |"), std::string::npos)
        << spec.name << ": add its row to the agent kinds table of docs/topology.md";
}

}  // namespace
}  // namespace labctl
