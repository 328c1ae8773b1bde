// Host tier: a reach check on a loaded machine. One probe whose answer is late is not
// "unreachable": the check probes again while its deadline allows (found when `make test`
// ran beside three compilers: a lab's first TCP connect took over the probe's 500 ms).
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/host/host_test.h"
#include "tests/support/kill_sweep.h"

namespace labctl {
namespace {

using ::testing::HasSubstr;
const std::string kLabctl = LABCTL_BINARY_DIR "/labctl/labctl";

std::string sh(const std::string& cmd) { return test::run_capture(cmd); }

class HostReach : public ::testing::Test {
 protected:
  void SetUp() override {
    LABCTL_REQUIRE_ROOT();
    lab_ = test::unique_name("reach");
    file_ = std::filesystem::temp_directory_path() / (lab_ + ".toml");
    std::ofstream(file_) << test::routed_lab(lab_) << test::kRoutedReachCheck;
    ASSERT_THAT(sh(kLabctl + " up " + file_.string() + " 2>&1; echo rc=$?"), HasSubstr("rc=0"));
  }
  void TearDown() override {
    if (lab_.empty()) return;
    sh(kLabctl + " down " + lab_ + " >/dev/null 2>&1");
    std::filesystem::remove(file_);
  }
  std::string lab_;
  std::filesystem::path file_;
};

TEST_F(HostReach, AFirstProbeLeftUnansweredIsSentAgainWithinTheDeadline) {
  // The server drops every other new connection's SYN, starting with the first: TCP's own
  // SYN retry comes after 1 s, past a probe's 500 ms, so only a second probe gets through.
  const std::string nft = "ip netns exec " + lab_ + "-server nft ";
  ASSERT_THAT(sh(nft + "add table inet reachtest 2>&1; " + nft +
                 "'add chain inet reachtest in { type filter hook input priority 0; }' 2>&1; " + nft +
                 "add rule inet reachtest in tcp dport 80 tcp flags syn ct state new numgen inc mod 2 == 0 "
                 "drop 2>&1; echo rc=$?"),
              HasSubstr("rc=0"));
  const std::string out = sh(kLabctl + " check " + lab_ + " 2>&1; echo rc=$?");
  EXPECT_THAT(out, HasSubstr("PASS  server-reachable (reach)"));
  EXPECT_THAT(out, HasSubstr("rc=0"));
}

TEST_F(HostReach, ARefusedConnectionFailsAtOnceWithoutWaitingForTheDeadline) {
  // Nothing listens on 81: the kernel answers with a reset, which decides at once.
  const std::string out = sh(kLabctl + " down " + lab_ + " >/dev/null 2>&1; sed -i 's/^port = 80$/port = 81/' " +
                             file_.string() + "; " + kLabctl + " up --check " + file_.string() + " 2>&1; echo rc=$?");
  EXPECT_THAT(out, HasSubstr("FAIL  server-reachable (reach)"));
  EXPECT_THAT(out, HasSubstr("refused"));
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("0 of 1 checks passed in ([0-9.]+) s"))) << out;
  // Probing again would have gone on until the check's 3 s deadline ran out.
  EXPECT_LT(std::stod(m[1]), 3.0) << "a refusal needs no second probe: " << out;
}

}  // namespace
}  // namespace labctl
