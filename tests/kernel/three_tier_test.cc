// Kernel tier: the three-tier demo (LVS-DR -> two nginx proxies -> three apps) passes every
// check, and its handshakes check reads, from each node's own TCP counters, that the
// director took part in no handshake while each proxy took one from the client and made one
// to an app per request.
#include <unistd.h>

#include <gtest/gtest.h>

#include "labctl/checks/checks.h"
#include "tests/kernel/kernel_test.h"

namespace labctl {
namespace {

class KernelThreeTier : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "kernel tier needs root";
    if (Status ipvs = test::ipvs_available(); !ipvs) LABCTL_KERNEL_SKIP() << ipvs.error().str();
    if (::access("/usr/sbin/nginx", X_OK) != 0) GTEST_SKIP() << "nginx is not installed (apt-get install nginx)";
  }
  void TearDown() override {
    if (!topo_.name.empty()) {
      EXPECT_TRUE(lab_down(topo_.name));
    }
  }
  Topology topo_;
};

TEST_F(KernelThreeTier, EveryCheckPassesAndOnlyTheProxiesAndAppsShakeHands) {
  auto r = load_topology("three-tier");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r.diagnostics.empty()) << format_diagnostic(r.diagnostics.front());
  Status st = lab_up(*r.topology, make_plan(*r.topology), {});
  ASSERT_TRUE(st) << st.error().str();
  topo_ = *r.topology;
  auto rep = run_checks(topo_, std::vector<std::string>{});
  ASSERT_TRUE(rep) << rep.error().str();
  const std::string text = render_checks(*rep);
  for (const auto& c : rep->results) EXPECT_TRUE(c.passed) << c.name << ": " << c.detail << "\n" << text;
  for (const auto& c : rep->results) {
    if (c.name == "who-shakes-hands") {
      EXPECT_NE(c.detail.find("client: passive +0, active +20"), std::string::npos) << c.detail;
      EXPECT_NE(c.detail.find("director (L4 director): passive +0, active +0, no socket on the VIP"),
                std::string::npos)
          << c.detail;
      EXPECT_NE(c.detail.find("proxy1+proxy2 accepted 20 of 20"), std::string::npos) << c.detail;
      EXPECT_NE(c.detail.find("app3 (app): passive +20, active +0"), std::string::npos) << c.detail;
      EXPECT_NE(c.detail.find("the apps accepted 20 for the proxies' 20"), std::string::npos) << c.detail;
    }
    if (c.name == "proxies-balanced") {
      EXPECT_NE(c.detail.find("proxy1 20, proxy2 20"), std::string::npos) << c.detail;
    }
  }
  std::printf("%s", text.c_str());
}

}  // namespace
}  // namespace labctl
