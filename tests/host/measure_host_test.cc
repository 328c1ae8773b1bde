// Host tier: the checks that measure (latency, throughput) on a lab of their own. The host
// kernel has tbf but no netem, so the rate cap is real here; delays are the kernel tier's
// (tests/kernel/impair_lab_kernel_test.cc). A server whose http agent sends 64 MiB bodies
// behind a 10mbit tbf on its own link: throughput must read the cap within 15 %, and a
// bound the cap cannot meet must fail with the figure.
#include <filesystem>
#include <fstream>
#include <regex>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/host/host_test.h"
#include "tests/support/kill_sweep.h"

namespace labctl {
namespace {

using ::testing::HasSubstr;
const std::string kLabctl = LABCTL_BINARY_DIR "/labctl/labctl";

std::string sh(const std::string& cmd) { return test::run_capture(cmd); }

std::string lab_text(const std::string& name) {
  return "version = 1\nname = \"" + name +
         "\"\n"
         "[switches.lan]\n"
         "[nodes.client]\n"
         "interfaces.eth0 = { switch = \"lan\", addresses = [\"10.73.0.10/24\"] }\n"
         "[nodes.server]\n"
         "interfaces.eth0 = { switch = \"lan\", addresses = [\"10.73.0.20/24\"], impair = { rate = \"10mbit\" } }\n"
         "agents.web = { kind = \"http\", port = 80, size = 67108864 }\n"
         "agents.small = { kind = \"http\", port = 8080, size = 100000 }\n"
         "[checks.capped]\n"
         "kind = \"throughput\"\nfrom = \"client\"\nto = \"10.73.0.20\"\nrate = \">= 8.5mbit, <= 11.5mbit\"\nseconds = 4\n"
         "[checks.above-the-cap]\n"
         "kind = \"throughput\"\nfrom = \"client\"\nto = \"10.73.0.20\"\nrate = \">= 50mbit\"\nseconds = 1\n"
         "[checks.pings]\n"
         "kind = \"latency\"\nfrom = \"client\"\nto = \"server\"\ncount = 50\nmax = \"<= 1s\"\n"
         "[checks.handshakes]\n"
         "kind = \"latency\"\nfrom = \"client\"\nto = \"server\"\nport = 80\ncount = 10\np50 = \"<= 1s\"\n"
         "[checks.too-fast]\n"
         "kind = \"latency\"\nfrom = \"client\"\nto = \"server\"\ncount = 5\nmin = \">= 2s\"\n"
         "[checks.nothing-listens]\n"
         "kind = \"latency\"\nfrom = \"client\"\nto = \"server\"\nport = 81\n";
}

class HostMeasure : public ::testing::Test {
 protected:
  void SetUp() override {
    LABCTL_REQUIRE_ROOT();
    lab_ = test::unique_name("meas");
    file_ = std::filesystem::temp_directory_path() / (lab_ + ".toml");
    std::ofstream(file_) << lab_text(lab_);
    ASSERT_THAT(sh(kLabctl + " up " + file_.string() + " 2>&1; echo rc=$?"), HasSubstr("rc=0"));
  }
  void TearDown() override {
    if (lab_.empty()) return;
    sh(kLabctl + " down " + lab_ + " >/dev/null 2>&1");
    std::filesystem::remove(file_);
  }
  std::string check(const std::string& name) {
    return sh(kLabctl + " check " + lab_ + " " + name + " 2>&1; echo rc=$?");
  }
  std::string lab_;
  std::filesystem::path file_;
};

double mbit_in(const std::string& out) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex(R"(: ([0-9.]+)mbit)"))) return -1;
  return std::stod(m[1]);
}

TEST_F(HostMeasure, ThroughputReadsATbfCapWithinFifteenPercent) {
  const std::string out = check("capped");
  EXPECT_THAT(out, HasSubstr("PASS  capped (throughput)"));
  EXPECT_THAT(out, HasSubstr("(the last cut at the time limit)"));
  const double mbit = mbit_in(out);
  EXPECT_GE(mbit, 8.5) << out;
  EXPECT_LE(mbit, 11.5) << out;
}

TEST_F(HostMeasure, ARateTheCapCannotReachFailsWithTheFigure) {
  const std::string out = check("above-the-cap");
  EXPECT_THAT(out, HasSubstr("FAIL  above-the-cap (throughput)"));
  EXPECT_THAT(out, HasSubstr("is not >= 50mbit"));
  EXPECT_THAT(out, HasSubstr("rc=1"));
}

TEST_F(HostMeasure, ASizedBodyIsExactlyThatLongAndStartsWithTheName) {
  const std::string get = kLabctl + " exec " + lab_ + " client -- curl -s http://10.73.0.20:8080/";
  EXPECT_EQ(sh(get + " | wc -c"), "100000\n");
  EXPECT_EQ(sh(get + " | head -c 7"), "server\n");
  EXPECT_EQ(sh(get + " | tr -d '\\n' | wc -c"), "6\n") << "the padding is newlines only";
  EXPECT_THAT(sh(get + " -o /dev/null -D -"), HasSubstr("Content-Length: 100000"));
}

TEST_F(HostMeasure, LatencyPrintsEveryFigureAndJudgesItsBounds) {
  std::string out = check("pings");
  EXPECT_THAT(out, HasSubstr("PASS  pings (latency)"));
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(50 x ping 10.73.0.20 from client: min [0-9.]+(us|ms), p50 .*, p90 .*, p99 .*, max .*, loss 0% \(0 lost\))")))
      << out;
  out = check("handshakes");
  EXPECT_THAT(out, HasSubstr("PASS  handshakes (latency)"));
  EXPECT_THAT(out, HasSubstr("10 x TCP connect to 10.73.0.20:80 from client"));
  out = check("too-fast");
  EXPECT_THAT(out, HasSubstr("FAIL  too-fast (latency)"));
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(min [0-9.]+(us|ms) is not >= 2s)"))) << out;
}

TEST_F(HostMeasure, LatencyToAPortNobodyListensOnFailsAtOnce) {
  const std::string out = check("nothing-listens");
  EXPECT_THAT(out, HasSubstr("FAIL  nothing-listens (latency)"));
  EXPECT_THAT(out, HasSubstr("refused"));
}

}  // namespace
}  // namespace labctl
