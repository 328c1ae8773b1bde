// Unit tier: the built-in exercises (topologies/exercises/) load as exercises, the
// [exercise] table is validated like every other key, `breaks` turns exactly the named LVS
// rule's error into a warning, and what a student is shown (`list`, `explain`, `up`'s
// warnings) never names the fault.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "labctl/model/builtins.h"
#include "labctl/model/load.h"
#include "labctl/plan/exercise.h"

namespace labctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The fault of each exercise, in words that must not appear in what explain shows.
const std::vector<std::pair<std::string, std::vector<std::string>>> kExercises = {
    {"dr-demo-noarp", {"arp_ignore", "arp_announce"}},
    {"nat-demo-nogw", {"default route", "10.20.0.1\"", "via the director"}},
    {"tun-demo-rpfilter", {"rp_filter", "reverse-path", "reverse path"}},
    {"ha-demo-splitbrain", {"split brain", "wrong interface", "different segments"}},
    {"net-basics-noroute", {"host route", "route add", "UGH"}},
    {"home-nat-noreply", {"wrong interface", "eth1\" masquerade", "outside interface"}},
};

std::string errors_of(const LoadResult& r) {
  std::string s;
  for (const auto& d : r.diagnostics) s += format_diagnostic(d) + "\n";
  return s;
}

TEST(Exercises, EachIsBuiltInAndLoadsAsAnExercise) {
  for (const auto& [name, _] : kExercises) {
    ASSERT_NE(find_builtin(name), nullptr) << name;
    auto r = load_topology(name);
    ASSERT_TRUE(r.ok()) << errors_of(r);
    ASSERT_TRUE(r.topology->exercise) << name;
    EXPECT_FALSE(r.topology->exercise->task.empty());
    EXPECT_FALSE(r.topology->exercise->look_at.empty());
    EXPECT_EQ(r.topology->name, name);
    EXPECT_FALSE(r.topology->checks.empty());
  }
  // The demos are no exercises.
  EXPECT_FALSE(load_topology("dr-demo").topology->exercise);
}

TEST(Exercises, ExplainStatesTheTaskWithoutTheAnswer) {
  for (const auto& [name, secrets] : kExercises) {
    Topology t = *load_topology(name).topology;
    std::string text = render_exercise(t);
    EXPECT_THAT(text, HasSubstr("an exercise, broken on purpose"));
    EXPECT_THAT(text, HasSubstr(t.exercise->look_at.front().substr(0, 20)));
    std::string json = exercise_json(t).dump();
    for (const auto& s : secrets) {
      EXPECT_THAT(text, Not(HasSubstr(s))) << name;
      EXPECT_THAT(json, Not(HasSubstr(s))) << name;
    }
    EXPECT_THAT(exercise_banner(t), HasSubstr("is an exercise"));
  }
}

TEST(Exercises, BreaksTurnsOnlyTheNamedRuleIntoAWarning) {
  std::string text(find_builtin("nat-demo-nogw")->text);
  // As written: the NAT route rule is broken on purpose, a warning that says so.
  auto r = parse_topology(text, "nogw.toml");
  ASSERT_TRUE(r.ok()) << errors_of(r);
  EXPECT_THAT(errors_of(r), HasSubstr("broken on purpose"));
  // Without `breaks` the same lab is refused, as any NAT lab without the gateway is.
  std::string strict = text;
  strict.replace(strict.find("breaks = [\"nat-route\"]"), 22, "");
  auto s = parse_topology(strict, "strict.toml");
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(errors_of(s), HasSubstr("error: NAT real server rs1"));
  // Breaking another rule does not excuse this one.
  std::string other = text;
  other.replace(other.find("\"nat-route\""), 11, "\"tun-ipip\"");
  EXPECT_FALSE(parse_topology(other, "other.toml").ok());
}

TEST(Exercises, TheExerciseTableIsValidated) {
  const std::string base =
      "version = 1\nname = \"x\"\n[switches.lan]\n[nodes.a]\n"
      "interfaces.eth0 = { switch = \"lan\", addresses = [\"10.0.0.1/24\"] }\n";
  auto r = parse_topology(base + "[exercise]\nlook_at = \"here\"\n", "a.toml");
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(errors_of(r), HasSubstr("needs 'task'"));
  r = parse_topology(base + "[exercise]\ntask = \"t\"\nbreaks = [\"nat-rout\"]\n", "b.toml");
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(errors_of(r), HasSubstr("did you mean 'nat-route'"));
  r = parse_topology(base + "[exercise]\ntask = \"t\"\nhint = \"x\"\n", "c.toml");
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(errors_of(r), HasSubstr("unknown key 'hint' in [exercise]"));
  r = parse_topology(base + "exercise = \"t\"\n", "d.toml");
  EXPECT_FALSE(r.ok());
  r = parse_topology(base + "[exercise]\ntask = \"t\"\n", "e.toml");
  EXPECT_TRUE(r.ok()) << errors_of(r);
  EXPECT_EQ(r.topology->exercise->task, "t");
}

struct CliRun {
  int status = -1;
  std::string out;
};

CliRun cli(const std::string& args, bool with_stderr = true) {
  std::string bin = std::string(LABCTL_BINARY_DIR) + "/labctl/labctl";
  CliRun r;
  FILE* p = ::popen((bin + " " + args + (with_stderr ? " 2>&1" : " 2>/dev/null")).c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), buf.size(), p)) r.out += buf.data();
  int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

TEST(ExercisesCli, ListShowsThemInASectionOfTheirOwnAndExplainHoldsBackTheWarnings) {
  if (!std::filesystem::exists(std::string(LABCTL_BINARY_DIR) + "/labctl/labctl"))
    GTEST_SKIP() << "labctl binary not built";
  CliRun l = cli("list");
  ASSERT_EQ(l.status, 0) << l.out;
  auto section = l.out.find("exercises (broken on purpose");
  ASSERT_NE(section, std::string::npos) << l.out;
  EXPECT_LT(l.out.find("dr-demo "), section) << l.out;
  for (const auto& [name, _] : kExercises) EXPECT_GT(l.out.find(name + " "), section) << l.out;
  EXPECT_THAT(l.out.substr(section), HasSubstr("[exercise]"));
  EXPECT_THAT(cli("list --json").out, HasSubstr("\"exercise\": true"));

  for (const auto& [name, secrets] : kExercises) {
    CliRun e = cli("explain " + name);
    EXPECT_EQ(e.status, 0) << e.out;
    EXPECT_THAT(e.out, HasSubstr("Task"));
    EXPECT_THAT(e.out, HasSubstr("warning")) << "the held-back warnings are counted";
    for (const auto& s : secrets) EXPECT_THAT(e.out, Not(HasSubstr(s))) << name << "\n" << e.out;
    // validate, the teacher's tool, shows them all.
    EXPECT_THAT(cli("validate " + name).out, HasSubstr("warning: "));
  }
  CliRun toml = cli("explain --toml dr-demo-noarp", false);
  EXPECT_EQ(toml.out, std::string(find_builtin("dr-demo-noarp")->text));
}

}  // namespace
}  // namespace labctl
