// Kernel tier: needs a kernel with IPVS and IPIP (natively, or inside labctl vm exec).
// Asserts that the environment the other kernel tests rely on is really there.
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "labctl/kernel/features.h"

namespace labctl {
namespace {

TEST(KernelGuest, IpvsFamilyResolvesAndProcNetIpVsIsReadable) {
  ASSERT_EQ(::geteuid(), 0u) << "the kernel tier runs as root";
  IpvsProbe p = probe_ipvs({"rr", "sh"});
  ASSERT_TRUE(p.family) << p.family.error().str();
  ASSERT_EQ(p.schedulers.size(), 2u);
  EXPECT_TRUE(p.schedulers[0]) << p.schedulers[0].error().str();
  EXPECT_TRUE(p.schedulers[1]) << p.schedulers[1].error().str();
  std::ifstream in("/proc/net/ip_vs");
  std::string first;
  ASSERT_TRUE(std::getline(in, first)) << "ip_vs is loaded once the family resolved";
  EXPECT_EQ(first.rfind("IP Virtual Server version", 0), 0u) << first;
}

TEST(KernelGuest, IpipTunnelsCanBeCreated) {
  Status st = probe_ipip();
  EXPECT_TRUE(st) << st.error().str();
}

TEST(KernelGuest, DoctorReportsIpvsEverySchedulerAndIpip) {
  FILE* p = ::popen(LABCTL_BINARY_DIR "/labctl/labctl doctor --json", "r");
  ASSERT_TRUE(p);
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  ASSERT_EQ(::pclose(p), 0);
  auto j = nlohmann::json::parse(out);
  int schedulers = 0;
  for (const auto& c : j["checks"]) {
    std::string id = c["id"];
    if (id == "ipvs" || id == "ipip" || id.rfind("ipvs-scheduler", 0) == 0) {
      EXPECT_TRUE(c["ok"].get<bool>()) << id << ": " << c["detail"];
      schedulers += id.rfind("ipvs-scheduler-", 0) == 0;
    }
  }
  EXPECT_EQ(schedulers, static_cast<int>(kIpvsSchedulers.size()));
}

}  // namespace
}  // namespace labctl
