// Host tier: `labctl test` over real labs (the routed fixture, no IPVS): a passing lab, a
// failing one and an invalid file; the exit codes, the JUnit file against the schema, one
// piece of output per lab with --jobs 2, and nothing left after a failure, a timeout or
// Ctrl-C (no namespace, no labctl child).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "labctl/lab/lifecycle.h"
#include "tests/host/host_test.h"
#include "tests/support/kill_sweep.h"

namespace labctl {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;
const std::string kLabctl = LABCTL_BINARY_DIR "/labctl/labctl";

std::string sh(const std::string& cmd) { return test::run_capture(cmd); }

class HostSuite : public ::testing::Test {
 protected:
  void SetUp() override {
    LABCTL_REQUIRE_ROOT();
    tag_ = test::unique_name("ts");
    dir_ = fs::temp_directory_path() / tag_;
    fs::create_directories(dir_);
  }
  void TearDown() override {
    for (const auto& l : labs_) sh(kLabctl + " down " + l + " >/dev/null 2>&1");
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  // A routed lab named TAG-SUFFIX whose one check reaches the server's `port`.
  std::string lab(const std::string& suffix, int port, const std::string& extra = "") {
    const std::string name = tag_ + "-" + suffix;
    labs_.push_back(name);
    std::ofstream(dir_ / (suffix + ".toml"))
        << std::regex_replace(test::routed_lab(name), std::regex("\n$"), "\n")
        << "\n[checks.web]\nkind = \"reach\"\nfrom = \"client\"\nto = \"10.72.2.10\"\nport = " << port << "\n"
        << extra;
    return name;
  }
  bool any_left() const {
    for (const auto& l : labs_)
      if (!lab_namespaces(l).empty()) return true;
    return false;
  }
  std::string tag_;
  fs::path dir_;
  std::vector<std::string> labs_;
};

TEST_F(HostSuite, APassingAndAFailingLabGiveExitOneAValidReportAndNothingLeft) {
  const std::string good = lab("good", 80), bad = lab("bad", 81);
  const std::string junit = (dir_ / "report.xml").string();
  const std::string out = sh(kLabctl + " test " + dir_.string() + " --jobs 2 --junit " + junit + " 2>&1; echo rc=$?");
  EXPECT_THAT(out, HasSubstr("rc=1"));
  EXPECT_THAT(out, HasSubstr("PASS " + good));
  EXPECT_THAT(out, HasSubstr("FAIL " + bad));
  EXPECT_THAT(out, HasSubstr("2 labs: 1 passed, 1 failed, 0 skipped"));
  // Each lab's output in one piece: from its header to its verdict, no line of the other.
  for (const auto& [me, other] : {std::pair{good, bad}, std::pair{bad, good}}) {
    const size_t from = out.find("== " + me + " ");
    const size_t to = out.find(me + " in ", from);
    ASSERT_NE(from, std::string::npos) << out;
    ASSERT_NE(to, std::string::npos) << out;
    EXPECT_EQ(out.substr(from, to - from).find(other), std::string::npos) << out;
  }
  EXPECT_EQ(sh("xmllint --noout --schema " LABCTL_TEST_DATA "/junit.xsd " + junit + " 2>&1; echo rc=$?"),
            junit + " validates\nrc=0\n");
  EXPECT_EQ(sh("xmllint --xpath 'count(//testcase)' " + junit), "4\n") << "an up and a check per lab";
  EXPECT_EQ(sh("xmllint --xpath 'count(//failure)' " + junit), "1\n");
  EXPECT_EQ(sh("xmllint --xpath 'string(//testsuite[@name=\"" + bad + "\"]/testcase[@name=\"web\"]/failure/@type)' " + junit),
            "reach\n");
  EXPECT_FALSE(any_left());
}

TEST_F(HostSuite, AnInvalidFileStopsTheRunBeforeAnyLabComesUp) {
  lab("good", 80);
  std::ofstream(dir_ / "broken.toml") << "version = 1\nname = \"x\"\n[nodes.a]\ninterfaces.eth0 = { switch = \"nope\" }\n";
  const std::string out = sh(kLabctl + " test " + dir_.string() + " 2>&1; echo rc=$?");
  EXPECT_THAT(out, HasSubstr("broken.toml:4:30: error"));
  EXPECT_THAT(out, HasSubstr("rc=2"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("is up"))) << "nothing may run";
}

TEST_F(HostSuite, JsonSaysWhatBecameOfEachLabAndKeepFailedLeavesTheFailedOneUp) {
  const std::string good = lab("good", 80), bad = lab("bad", 81);
  const std::string out = sh(kLabctl + " test --json --keep-failed " + dir_.string() + " 2>/dev/null");
  auto j = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out;
  EXPECT_EQ(j["passed"], false);
  ASSERT_EQ(j["labs"].size(), 2u);
  for (const auto& l : j["labs"]) {
    const bool mine = l["lab"] == bad;
    EXPECT_EQ(l["status"], mine ? "failed" : "passed") << l.dump();
    EXPECT_EQ(l["checks"][0]["name"], "web");
    EXPECT_EQ(l.contains("left_up"), mine) << l.dump();
  }
  EXPECT_FALSE(lab_namespaces(bad).empty()) << "--keep-failed leaves the failed lab up";
  EXPECT_TRUE(lab_namespaces(good).empty());
}

TEST_F(HostSuite, ATimeoutAndACtrlCEachLeaveNothing) {
  // A check that waits its whole 30 s for an address nobody has.
  const std::string slow = lab("slow", 80, "[checks.never]\nkind = \"reach\"\nfrom = \"client\"\nto = \"10.72.2.99\"\ntimeout = 30\n");
  std::string out = sh(kLabctl + " test --timeout 2 " + (dir_ / "slow.toml").string() + " 2>&1; echo rc=$?");
  EXPECT_THAT(out, HasSubstr("FAIL " + slow + " (timeout)"));
  EXPECT_THAT(out, HasSubstr("rc=1"));
  EXPECT_FALSE(any_left());

  const auto t0 = std::chrono::steady_clock::now();
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::execl(kLabctl.c_str(), kLabctl.c_str(), "test", (dir_ / "slow.toml").c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  // Interrupt once its check runs (its lab is up), as Ctrl-C would.
  for (int i = 0; i < 100 && lab_namespaces(slow).empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ::kill(pid, SIGINT);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 130) << status;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20)) << "it stopped the check, not waited it out";
  EXPECT_FALSE(any_left());
  EXPECT_EQ(sh("pgrep -f '" + kLabctl + " (check|up) .*" + tag_ + "' | wc -l"), "0\n");
}

// --vm=always: the lab runs in the run's one micro-VM and its verdict comes back from
// there into the report (the guest and its lab end together: nothing is left here).
TEST_F(HostSuite, LabsForTheMicroVmRunInOneGuestAndReportBack) {
  if (::access("/dev/kvm", F_OK) != 0 && sh("command -v qemu-system-x86_64").empty())
    GTEST_SKIP() << "no QEMU for the micro-VM";
  const std::string good = lab("good", 80), bad = lab("bad", 81);
  const std::string junit = (dir_ / "report.xml").string();
  const std::string out = sh(kLabctl + " test --vm=always --junit " + junit + " " + dir_.string() + " 2>&1; echo rc=$?");
  EXPECT_THAT(out, HasSubstr("(in the run's micro-VM)"));
  EXPECT_THAT(out, HasSubstr("PASS " + good));
  EXPECT_THAT(out, HasSubstr("FAIL " + bad));
  EXPECT_THAT(out, HasSubstr("rc=1"));
  EXPECT_EQ(sh("xmllint --xpath 'count(//failure)' " + junit), "1\n") << out;
  EXPECT_FALSE(any_left());
}

// docs/ci.md's recipes run `labctl test` as written: every such line of the page, run
// here from a folder with a labs/ of one passing lab, with this build's labctl first in
// PATH (sudo dropped: the tier runs as root). Doc and test cannot drift apart.
TEST_F(HostSuite, TheCiRecipesTestCommandsRunAsWritten) {
  std::ifstream in(std::string(LABCTL_SOURCE_DIR) + "/docs/ci.md");
  std::vector<std::string> commands;
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, std::regex(R"(^\s*-\s+(?:run:\s+)?(?:sudo\s+)?(labctl test .*)$)")))
      commands.push_back(m[1]);
  }
  ASSERT_EQ(commands.size(), 2u) << "one in the GitHub recipe, one in the GitLab one";
  fs::create_directories(dir_ / "labs");
  const std::string good = lab("good", 80);
  fs::rename(dir_ / "good.toml", dir_ / "labs" / "good.toml");
  for (const auto& cmd : commands) {
    SCOPED_TRACE(cmd);
    fs::remove(dir_ / "report.xml");
    const std::string out = sh("cd " + dir_.string() + " && PATH=" LABCTL_BINARY_DIR "/labctl:$PATH " + cmd +
                               " 2>&1; echo rc=$?");
    EXPECT_THAT(out, HasSubstr("PASS " + good));
    EXPECT_THAT(out, HasSubstr("rc=0"));
    EXPECT_EQ(sh("xmllint --noout --schema " LABCTL_TEST_DATA "/junit.xsd " + (dir_ / "report.xml").string() +
                 " 2>&1; echo rc=$?"),
              (dir_ / "report.xml").string() + " validates\nrc=0\n");
  }
  EXPECT_FALSE(any_left());
  EXPECT_EQ(sh("grep -c '^deb: build' " LABCTL_SOURCE_DIR "/Makefile"), "1\n") << "the recipes' make deb";
}

}  // namespace
}  // namespace labctl
