// `labctl validate` and `labctl list` as users run them: the built binary, exit statuses
// and output. No root, no system changes.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct CliRun {
  int status = -1;
  std::string out;
};

CliRun run(const std::string& args) {
  std::string bin = std::string(LABCTL_BINARY_DIR) + "/labctl/labctl";
  CliRun r;
  if (!std::filesystem::exists(bin)) return r;
  FILE* p = ::popen((bin + " " + args + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), buf.size(), p)) r.out += buf.data();
  int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string src(const std::string& rel) { return std::string(LABCTL_SOURCE_DIR) + "/" + rel; }

class ValidateCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(std::string(LABCTL_BINARY_DIR) + "/labctl/labctl"))
      GTEST_SKIP() << "labctl binary not built";
  }
};

TEST_F(ValidateCli, DemoFilesAreValid) {
  CliRun r = run("validate " + src("topologies/dr-demo.toml") + " " + src("topologies/nat-demo.toml") + " " +
              src("topologies/tun-demo.toml"));
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("dr-demo.toml: valid"));
  EXPECT_THAT(r.out, HasSubstr("tun-demo.toml: valid"));
}

TEST_F(ValidateCli, BuiltinNamesWorkFromAnyDirectory) {
  CliRun r = run("validate dr-demo nat-demo tun-demo");
  EXPECT_EQ(r.status, 0) << r.out;
}

TEST_F(ValidateCli, BadFileExitsTwoWithPositions) {
  std::string f = src("tests/data/bad/many-errors.toml");
  CliRun r = run("validate " + f);
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr(f + ":10:30: error: interface client:eth0 connects to switch 'lna'"));
  EXPECT_THAT(r.out, HasSubstr("  hint: did you mean 'lan'?"));
  EXPECT_THAT(r.out, HasSubstr(f + ":21:31: error: unknown key 'prot'"));
}

TEST_F(ValidateCli, OneBadAmongGoodStillFails) {
  CliRun r = run("validate dr-demo " + src("tests/data/bad/version-missing.toml"));
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("dr-demo: valid"));
}

TEST_F(ValidateCli, JsonOutput) {
  CliRun r = run("validate --json dr-demo " + src("tests/data/bad/unknown-scheduler.toml") + " 2>/dev/null");
  EXPECT_EQ(r.status, 2);
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["topology"], "dr-demo");
  EXPECT_EQ(j[0]["valid"], true);
  EXPECT_TRUE(j[0]["diagnostics"].empty());
  EXPECT_EQ(j[1]["valid"], false);
  EXPECT_EQ(j[1]["diagnostics"][0]["line"], 14);
  EXPECT_EQ(j[1]["diagnostics"][0]["hint"], "did you mean 'wrr'?");
}

TEST_F(ValidateCli, ListShowsBuiltinsWithDescriptions) {
  CliRun r = run("list");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("dr-demo"));
  EXPECT_THAT(r.out, HasSubstr("LVS-DR: director and two real servers"));
  EXPECT_THAT(r.out, HasSubstr("nat-demo"));
  EXPECT_THAT(r.out, HasSubstr("tun-demo"));
  EXPECT_THAT(r.out, HasSubstr("sched-demo   IPVS schedulers side by side"));
}

}  // namespace

namespace {

// `labctl down --dry-run` is the teardown the `up --dry-run` script's header points to; it
// needs no root and touches nothing.
TEST_F(ValidateCli, DownDryRunPrintsTheTeardownScript) {
  CliRun r = run("down --dry-run dr-demo");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_THAT(r.out, HasSubstr("# Tears down the lab \"dr-demo\""));
  EXPECT_THAT(r.out, HasSubstr("ip netns del dr-demo-director || status=1\n"));
  EXPECT_THAT(r.out, HasSubstr("rm -rf /run/labctl-script/dr-demo\n"));
  CliRun up = run("up --dry-run dr-demo");
  EXPECT_THAT(up.out, HasSubstr("labctl down --dry-run dr-demo"));
  EXPECT_EQ(run("down --dry-run").status, 2);
  EXPECT_EQ(run("down --dry-run dr-demo nat-demo").status, 2);
}

// Invalid UTF-8 in a path must not make --json throw (nlohmann's dump does by default).
TEST_F(ValidateCli, JsonOutputSurvivesAPathThatIsNotUtf8) {
  const std::string dir = ::testing::TempDir() + "/labctl-json-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const std::string bad = dir + "/lab\xff.toml";
  { std::FILE* f = std::fopen(bad.c_str(), "w"); std::fputs("version = 1\n", f); std::fclose(f); }
  CliRun r = run("validate --json '" + bad + "'");
  std::filesystem::remove_all(dir);
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_THAT(r.out, Not(HasSubstr("terminate called")));
  auto start = r.out.find('[');
  ASSERT_NE(start, std::string::npos) << r.out;
  auto j = nlohmann::json::parse(r.out.substr(start), nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.out;
}

}  // namespace

namespace {

// A file named like a built-in lab, in the folder labctl runs from, is that file (the loader
// takes an existing file as a path): `explain --toml` prints the text it loaded, once.
TEST_F(ValidateCli, ExplainTomlPrintsTheFileItLoadedNotTheBuiltinOfThatName) {
  char tmpl[] = "/tmp/labctl-explain-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  std::string text;
  {
    FILE* in = std::fopen(src("tests/data/host/routed.toml").c_str(), "r");
    ASSERT_NE(in, nullptr);
    for (int c; (c = std::fgetc(in)) != EOF;) text.push_back(static_cast<char>(c));
    std::fclose(in);
  }
  FILE* out = std::fopen((dir + "/nat-demo").c_str(), "w");
  ASSERT_NE(out, nullptr);
  std::fputs(text.c_str(), out);
  std::fclose(out);
  const std::string cmd =
      "cd " + dir + " && " + std::string(LABCTL_BINARY_DIR) + "/labctl/labctl explain nat-demo --toml";
  std::string printed;
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  for (int c; (c = std::fgetc(p)) != EOF;) printed.push_back(static_cast<char>(c));
  const int st = ::pclose(p);
  std::filesystem::remove_all(dir);
  EXPECT_EQ(st, 0);
  EXPECT_EQ(printed, text);
}

}  // namespace
