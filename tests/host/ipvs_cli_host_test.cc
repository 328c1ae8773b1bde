// Host tier: `labctl ipvs` on a kernel without IPVS (this machine's). A lab without services
// is real here: the command picks (or refuses) its director, names what exists for every
// unknown name with exit 2, and says which kernel feature is missing instead of a bare
// errno. The kernel tier (tests/kernel/ipvs_cli_test.cc) covers a kernel with IPVS.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "labctl/base/shell_quote.h"
#include "tests/host/host_test.h"
#include "tests/kernel/kernel_test.h"

namespace labctl {
namespace {

using ::testing::HasSubstr;

const std::string kLabctl = LABCTL_BINARY_DIR "/labctl/labctl";

std::pair<std::string, int> run(const std::string& args) {
  std::string out;
  FILE* p = ::popen((kLabctl + " " + args + " 2>&1").c_str(), "r");
  if (!p) return {out, -1};
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int st = ::pclose(p);
  return {out, WIFEXITED(st) ? WEXITSTATUS(st) : -1};
}

TEST(IpvsCliHost, NamesWhatExistsAndTheMissingKernelFeature) {
  LABCTL_REQUIRE_ROOT();
  if (test::ipvs_available()) GTEST_SKIP() << "this kernel has IPVS: the kernel tier covers it";
  const std::string lab = test::unique_name("ipvsctl");
  const std::string file = ::testing::TempDir() + "/" + lab + ".toml";
  std::ofstream(file) << "version = 1\nname = \"" << lab << "\"\n[switches.lan]\n"
                      << "[nodes.n1]\ninterfaces.eth0 = { switch = \"lan\", addresses = "
                         "[\"10.99.0.1/24\"] }\n";
  auto [up, up_rc] = run("up " + shell_quote(file));
  ASSERT_EQ(up_rc, 0) << up;

  auto [none, none_rc] = run("ipvs " + lab);
  EXPECT_EQ(none_rc, 2) << none;
  EXPECT_THAT(none, HasSubstr("has no director (no node has IPVS services)"));
  auto [bad_node, bad_node_rc] = run("ipvs " + lab + " nope");
  EXPECT_EQ(bad_node_rc, 2) << bad_node;
  EXPECT_THAT(bad_node, HasSubstr("its nodes: n1"));
  auto [bad_svc, bad_svc_rc] = run("ipvs " + lab + " drain web rs1");
  EXPECT_EQ(bad_svc_rc, 2) << bad_svc;
  EXPECT_THAT(bad_svc, HasSubstr("has no service web"));
  auto [usage, usage_rc] = run("ipvs " + lab + " set-weight web");
  EXPECT_EQ(usage_rc, 2) << usage;
  EXPECT_THAT(usage, HasSubstr("expected SERVICE SERVER WEIGHT"));
  auto [no_ipvs, no_ipvs_rc] = run("ipvs " + lab + " n1");
  EXPECT_EQ(no_ipvs_rc, 1) << no_ipvs;
  EXPECT_THAT(no_ipvs, HasSubstr("this kernel has no IPVS (CONFIG_IP_VS)"));
  EXPECT_THAT(no_ipvs, HasSubstr("labctl vm exec"));

  auto [down, down_rc] = run("down " + lab);
  EXPECT_EQ(down_rc, 0) << down;
  auto [gone, gone_rc] = run("ipvs " + lab);
  EXPECT_EQ(gone_rc, 1) << gone;
  EXPECT_THAT(gone, HasSubstr("is not up"));
  std::filesystem::remove(file);
}

}  // namespace
}  // namespace labctl
