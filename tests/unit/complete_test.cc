// Shell completion as bash uses it: `labctl __complete CWORD WORD...` from the built binary,
// and the script `labctl completion bash` sourced into a real bash. No root: running labs
// are not needed (and not visible) here.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Not;

const std::string kLabctl = std::string(LABCTL_BINARY_DIR) + "/labctl/labctl";

struct Outcome {
  int status = -1;
  std::string out, err;
};

// Runs a shell command line; stdout and stderr apart.
Outcome sh(const std::string& cmd) {
  const std::string err_path = "/tmp/labctl-complete-test.err." + std::to_string(::getpid());
  Outcome r;
  FILE* p = ::popen((cmd + " 2>" + err_path).c_str(), "r");
  std::array<char, 4096> buf{};
  for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), p)) > 0;) r.out.append(buf.data(), n);
  int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  std::ifstream in(err_path);
  r.err.assign(std::istreambuf_iterator<char>(in), {});
  std::filesystem::remove(err_path);
  return r;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// The candidates for `labctl WORDS...` with the cursor on the last word ("" for a new one).
std::vector<std::string> complete(const std::string& words, int cword) {
  Outcome r = sh(kLabctl + " __complete " + std::to_string(cword) + " labctl " + words);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  return lines(r.out);
}

class Complete : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kLabctl)) GTEST_SKIP() << "labctl binary not built";
  }
};

TEST_F(Complete, SubcommandsAreTheOnesHelpListsAndNotTheHiddenOne) {
  auto subs = complete("''", 1);
  EXPECT_THAT(subs, Contains("up"));
  EXPECT_THAT(subs, Contains("completion"));
  EXPECT_THAT(subs, Not(Contains("__complete")));
  EXPECT_THAT(complete("do", 1), ElementsAre("doctor", "down"));
}

// Each subcommand's arguments are in the completion's table: a subcommand added without
// them makes __complete say so on stderr, which complete() fails on.
TEST_F(Complete, EverySubcommandInHelpHasItsArgumentsTabled) {
  Outcome help = sh(kLabctl + " --help");
  std::string section = help.out.substr(help.out.find("Subcommands:"));
  int seen = 0;
  for (const auto& l : lines(section)) {
    if (l.size() < 3 || l[0] != ' ' || l[1] != ' ' || l[2] == ' ') continue;
    const std::string name = l.substr(2, l.find(' ', 2) - 2);
    SCOPED_TRACE(name);
    complete(name + " ''", 2);
    ++seen;
  }
  EXPECT_GE(seen, 10);
  complete("vm exec ''", 3);
}

TEST_F(Complete, OptionsOfTheSubcommand) {
  auto opts = complete("up --", 2);
  EXPECT_THAT(opts, Contains("--dry-run"));
  EXPECT_THAT(opts, Contains("--check"));
  EXPECT_THAT(opts, Not(Contains("--version"))) << "the top level's, not up's";
  EXPECT_THAT(complete("vm exec --ti", 3), ElementsAre("--timeout"));
}

TEST_F(Complete, TopologiesAreBuiltinsAndFiles) {
  EXPECT_THAT(complete("up dr", 2), ElementsAre("dr-demo", "dr-demo-noarp", ":files"));
  EXPECT_THAT(complete("explain tun-demo ''", 3), IsEmpty()) << "explain takes one";
  EXPECT_THAT(complete("validate dr-demo nat", 3), ElementsAre("nat-demo", "nat-demo-nogw", "nat-vs-dr", ":files"))
      << "validate takes several";
}

TEST_F(Complete, OptionValuesAreSkippedWhenCountingArguments) {
  // --timeout takes a value, so "dr" is up's first argument again; --check does not.
  EXPECT_THAT(complete("up --timeout 3 dr", 4), Contains("dr-demo"));
  EXPECT_THAT(complete("up --check dr", 3), Contains("dr-demo"));
  EXPECT_THAT(complete("up --timeout=3 dr", 3), Contains("dr-demo"));
}

TEST_F(Complete, AfterDoubleDashComeTheNodesCommandsFiles) {
  EXPECT_THAT(complete("exec lab node -- ''", 5), ElementsAre(":files"));
  EXPECT_THAT(complete("vm exec -- ''", 4), ElementsAre(":files"));
}

TEST_F(Complete, TheBashScriptFillsCompreply) {
  // COMP_WORDS[0] is how the user called labctl: the script asks that same binary.
  Outcome r = sh("bash -c 'source <(\"$0\" completion bash) && COMP_WORDS=(\"$0\" up dr-d) && "
             "COMP_CWORD=2 && _labctl && printf \"%s\\n\" \"${COMPREPLY[@]}\"' " + kLabctl);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(lines(r.out), ElementsAre("dr-demo", "dr-demo-noarp")) << r.err;
}

}  // namespace
