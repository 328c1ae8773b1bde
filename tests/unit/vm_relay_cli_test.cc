// Which command lines the built labctl relays to a lab's micro-VM (cli/vm_lab.h): decided by
// the command's lab argument alone. A lab is VM-hosted when its state holds vm/, so a state
// folder of the test's own with such a folder stands for one (no guest runs: a relayed
// command fails saying so). No root, no system changes.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace {

namespace fs = std::filesystem;

class VmRelayCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(bin_)) GTEST_SKIP() << "labctl binary not built";
    char templ[] = "/tmp/labctl-relay-cli.XXXXXX";
    ASSERT_TRUE(::mkdtemp(templ));
    state_ = templ;
    fs::create_directories(state_ + "/labs/n1/vm");
  }
  void TearDown() override {
    std::error_code ec;
    if (!state_.empty()) fs::remove_all(state_, ec);
  }
  // labctl ARGS' stderr and stdout together.
  std::string run(const std::string& args) {
    std::string out;
    FILE* p = ::popen(("env -u LABCTL_IN_VM LABCTL_STATE_DIR=" + state_ + " " + bin_ + " " + args +
                       " </dev/null 2>&1").c_str(), "r");
    std::array<char, 4096> buf{};
    for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), p)) > 0;) out.append(buf.data(), n);
    ::pclose(p);
    return out;
  }
  bool relayed(const std::string& args) {
    return run(args).find("lab n1 (in its micro-VM)") != std::string::npos;
  }
  const std::string bin_ = std::string(LABCTL_BINARY_DIR) + "/labctl/labctl";
  std::string state_;
};

// Issue 21 item 11: any positional argument naming a VM-hosted lab relayed the command, so
// `labctl exec native n1` ran in the guest of lab n1.
TEST_F(VmRelayCli, OnlyTheLabArgumentDecides) {
  EXPECT_TRUE(relayed("exec n1 a -- true")) << "control: n1 is VM-hosted";
  EXPECT_FALSE(relayed("exec native n1 -- true")) << run("exec native n1 -- true");
  EXPECT_FALSE(relayed("logs native n1"));
  EXPECT_FALSE(relayed("check native n1"));
  // An option's value is no lab argument, and an option before the lab is skipped.
  EXPECT_FALSE(relayed("logs -n n1 native a"));
  EXPECT_TRUE(relayed("logs -n 5 n1 a"));
  EXPECT_TRUE(relayed("check --timeout 3 n1"));
  EXPECT_TRUE(relayed("ipvs n1 director"));
  EXPECT_FALSE(relayed("ipvs native n1"));
}

}  // namespace
