// Host tier: `labctl measure` on a lab of its own (client -- switch -- server, the server's
// answers capped at 10mbit by tbf on its link; the host has tbf): the cap read within 15 %,
// an open-loop rate held within 5 %, errors counted by kind when the server crashes
// mid-run, Ctrl-C leaving no load process, and an SVG drawn when gnuplot is there.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "labctl/base/file.h"
#include "labctl/kernel/netns.h"
#include "labctl/kernel/process.h"
#include "labctl/model/topology.h"
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
         "interfaces.eth0 = { switch = \"lan\", addresses = [\"10.74.0.10/24\"] }\n"
         "[nodes.server]\n"
         "interfaces.eth0 = { switch = \"lan\", addresses = [\"10.74.0.20/24\"], impair = { rate = \"10mbit\" } }\n"
         "agents.big = { kind = \"http\", port = 80, size = 1048576 }\n"
         "agents.small = { kind = \"http\", port = 8080 }\n";
}

class HostMeasureCli : public ::testing::Test {
 protected:
  void SetUp() override {
    LABCTL_REQUIRE_ROOT();
    lab_ = test::unique_name("mcli");
    file_ = std::filesystem::temp_directory_path() / (lab_ + ".toml");
    std::ofstream(file_) << lab_text(lab_);
    ASSERT_THAT(sh(kLabctl + " up " + file_.string() + " 2>&1; echo rc=$?"), HasSubstr("rc=0"));
  }
  void TearDown() override {
    if (lab_.empty()) return;
    sh(kLabctl + " down " + lab_ + " >/dev/null 2>&1");
    std::filesystem::remove(file_);
  }
  nlohmann::json measure_json(const std::string& args) {
    const std::string out = sh(kLabctl + " measure " + lab_ + " " + args + " --json 2>/dev/null");
    auto j = nlohmann::json::parse(out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << out;
    return j;
  }
  /// The processes in the client's namespace whose command line holds "load".
  std::vector<pid_t> load_processes() {
    std::vector<pid_t> found;
    for (pid_t pid : pids_in_netns(netns_path(netns_name(lab_, "client")))) {
      std::string cmdline = read_text("/proc/" + std::to_string(pid) + "/cmdline");
      for (auto& ch : cmdline) ch = ch == '\0' ? ' ' : ch;
      if (cmdline.find(" load ") != std::string::npos) found.push_back(pid);
    }
    return found;
  }
  std::string lab_;
  std::filesystem::path file_;
};

TEST_F(HostMeasureCli, ThroughputReadsATbfCapWithinFifteenPercent) {
  const auto j = measure_json("http://10.74.0.20/ --seconds 4 --concurrency 4 --rounds 2");
  ASSERT_EQ(j["targets"].size(), 1u) << j.dump();
  const auto& t = j["targets"][0];
  const double mbit = t["body_bits_per_second"].get<double>() / 1e6;
  EXPECT_GE(mbit, 8.5) << j.dump(2);
  EXPECT_LE(mbit, 11.5) << j.dump(2);
  EXPECT_EQ(t["errors"].size(), 0u) << j.dump(2);
  EXPECT_EQ(t["served"]["server"], t["answered"]);
  // Keep-alive: the 4 connections carried every request.
  EXPECT_EQ(t["connections"], 8) << "4 connections in each of 2 rounds";
  EXPECT_GE(t["nodes"]["server"]["passive_opens"].get<int>(), 8);
  EXPECT_LE(t["latency_seconds"]["p50"].get<double>(), t["latency_seconds"]["p99"].get<double>());
}

TEST_F(HostMeasureCli, AnOpenLoopRateHoldsWithinFivePercent) {
  const auto j = measure_json("10.74.0.20:8080 --rate 200 --seconds 4 --rounds 1 --concurrency 4");
  const auto& t = j["targets"][0];
  const double rps = t["requests_per_second"].get<double>();
  EXPECT_GE(rps, 190) << j.dump(2);
  EXPECT_LE(rps, 210) << j.dump(2);
  EXPECT_GE(t["answered"].get<int>(), 760) << j.dump(2);
  EXPECT_LE(t["answered"].get<int>(), 840) << j.dump(2);
  EXPECT_EQ(j["options"]["rate"], 200);
}

TEST_F(HostMeasureCli, TwoTargetsSideBySideWithAnSvgWhenGnuplotIsThere) {
  const std::filesystem::path svg = std::filesystem::temp_directory_path() / (lab_ + ".svg");
  const std::string out =
      sh(kLabctl + " measure " + lab_ + " http://10.74.0.20:8080/ 10.74.0.20:80 --seconds 2 --rounds 2 --svg " +
         svg.string() + " 2>&1; echo rc=$?");
  EXPECT_THAT(out, HasSubstr("rc=0"));
  EXPECT_THAT(out, HasSubstr("round 4/4"));
  EXPECT_THAT(out, testing::ContainsRegex("requests/s +[0-9]+ +[0-9.]+ \\(x[0-9.]+\\)"));
  EXPECT_THAT(out, HasSubstr("server TCP opens"));
  if (resolve_program("gnuplot")) {
    EXPECT_THAT(read_text(svg.string()), HasSubstr("<svg")) << out;
    EXPECT_THAT(out, HasSubstr("wrote " + svg.string()));
  } else {
    EXPECT_THAT(out, HasSubstr("gnuplot is not installed"));
    EXPECT_THAT(read_text(svg.string() + ".gp"), HasSubstr("set terminal svg"));
    std::filesystem::remove(svg.string() + ".gp");
    std::filesystem::remove(svg.string() + ".dat");
  }
  std::filesystem::remove(svg);
}

TEST_F(HostMeasureCli, ACrashedServerShowsAsErrorsByKind) {
  std::string out;
  std::thread load([&] {
    out = sh(kLabctl + " measure " + lab_ + " 10.74.0.20:8080 --new-connections --seconds 4 --rounds 1 --json 2>/dev/null");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_THAT(sh(kLabctl + " node " + lab_ + " server crash 2>&1; echo rc=$?"), HasSubstr("rc=0"));
  load.join();
  auto j = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out;
  const auto& t = j["targets"][0];
  EXPECT_GT(t["answered"].get<int>(), 0) << t.dump(2);
  // The crash kills the server's processes (their connections close or reset) and sets its
  // link down (new connections time out): counted by kind, nothing unnamed.
  ASSERT_FALSE(t["errors"].empty()) << t.dump(2);
  for (const auto& [kind, n] : t["errors"].items()) {
    EXPECT_THAT(kind, testing::AnyOf("timeout", "reset", "closed", "refused", "unreachable")) << t.dump(2);
    EXPECT_GT(n.get<int>(), 0);
  }
  EXPECT_TRUE(t["errors"].contains("timeout")) << t.dump(2);
}

TEST_F(HostMeasureCli, APortNobodyListensOnIsRefused) {
  const std::string out = sh(kLabctl + " measure " + lab_ + " 10.74.0.20:81 --requests 20 --rounds 1 --json 2>/dev/null; echo rc=$?");
  EXPECT_THAT(out, HasSubstr("rc=1")) << "a target that never answered";
  auto j = nlohmann::json::parse(out.substr(0, out.rfind("rc=")), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out;
  EXPECT_EQ(j["targets"][0]["errors"], nlohmann::json({{"refused", 20}})) << out;
  EXPECT_EQ(j["targets"][0]["answered"], 0);
}

TEST_F(HostMeasureCli, CtrlCStopsTheLoadReportsAndLeavesNoLoadProcess) {
  int out_pipe[2];
  ASSERT_EQ(::pipe2(out_pipe, O_CLOEXEC), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(out_pipe[1], 2);
    ::execl(kLabctl.c_str(), kLabctl.c_str(), "measure", lab_.c_str(), "10.74.0.20:8080", "--seconds", "60",
            "--rounds", "1", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  // Wait until the load runs in the client's namespace, then Ctrl-C.
  const auto start = std::chrono::steady_clock::now();
  while (load_processes().empty() && std::chrono::steady_clock::now() - start < std::chrono::seconds(10))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_FALSE(load_processes().empty()) << "labagent load never started";
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  const auto sent = std::chrono::steady_clock::now();
  ::kill(pid, SIGINT);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(out_pipe[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(out_pipe[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - sent, std::chrono::seconds(5));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status << "\n" << out;
  EXPECT_THAT(out, HasSubstr("interrupted in round 1 of 1")) << out;
  EXPECT_THAT(out, testing::ContainsRegex("requests/s +[0-9]+")) << "what was measured so far\n" << out;
  EXPECT_TRUE(load_processes().empty());
}

}  // namespace
}  // namespace labctl
