// Host tier: the course's HTTP by hand (issue 26, item 5). bash in the client's namespace,
// reached with `labctl exec`, opens a TCP connection as fd 8 through /dev/tcp, shows it as
// a socket, writes the smallest HTTP request and reads the http agent's answer, as
// `labctl explain dr-demo` and docs/course-commands.md give it. The request comes a few
// seconds after the connection, at the pace of someone typing: the agent still answers.
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/host/host_test.h"
#include "tests/support/kill_sweep.h"

namespace labctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
const std::string kLabctl = LABCTL_BINARY_DIR "/labctl/labctl";

std::string sh(const std::string& cmd) { return test::run_capture(cmd); }

class HostByHand : public ::testing::Test {
 protected:
  void SetUp() override {
    LABCTL_REQUIRE_ROOT();
    lab_ = test::unique_name("byhand");
    file_ = std::filesystem::temp_directory_path() / (lab_ + ".toml");
    std::ofstream(file_) << test::routed_lab(lab_);
    ASSERT_THAT(sh(kLabctl + " up " + file_.string() + " 2>&1; echo rc=$?"), HasSubstr("rc=0"));
  }
  void TearDown() override {
    if (lab_.empty()) return;
    sh(kLabctl + " down " + lab_ + " >/dev/null 2>&1");
    std::filesystem::remove(file_);
  }
  std::string by_hand(const std::string& pause) {
    return sh(kLabctl + " exec " + lab_ +
              " client -- bash -c 'exec 8<>/dev/tcp/10.72.2.10/80; ls -l /proc/$$/fd; " + pause +
              "printf \"GET / HTTP/1.0\\r\\n\\r\\n\" >&8; cat <&8' 2>&1; echo rc=$?");
  }
  std::string lab_;
  std::filesystem::path file_;
};

TEST_F(HostByHand, DevTcpRecipeGetsTheServersAnswerOnFd8) {
  std::string out = by_hand("");
  EXPECT_THAT(out, HasSubstr(" 8 -> socket:[")) << out;
  EXPECT_THAT(out, HasSubstr("HTTP/1.0 200 OK")) << out;
  EXPECT_THAT(out, HasSubstr("X-Served-By: server")) << out;
  EXPECT_THAT(out, HasSubstr("rc=0")) << out;
}

TEST_F(HostByHand, ARequestTypedSecondsAfterTheConnectIsStillAnswered) {
  // Past the agent's 2 s I/O timeout: before, it closed the connection unanswered.
  std::string out = by_hand("sleep 3; ");
  EXPECT_THAT(out, HasSubstr("HTTP/1.0 200 OK")) << out;
  EXPECT_THAT(out, HasSubstr("\nserver\n")) << out;
  // Its access log has the request, answered.
  std::string log = sh(kLabctl + " logs " + lab_ + " server 2>&1");
  EXPECT_THAT(log, HasSubstr("\"GET /\" 200")) << log;
}

}  // namespace
}  // namespace labctl
