// Host tier: labctl doctor on this kernel. Probes must leave the root namespace as it was.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>

#include "labctl/doctor/doctor.h"
#include "labctl/kernel/features.h"
#include "labctl/kernel/netns.h"
#include "tests/host/host_test.h"

namespace labctl {
namespace {

std::string root_links() {
  std::string out;
  FILE* p = ::popen("ip -o link show | cut -d: -f2", "r");
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  ::pclose(p);
  return out;
}

const DoctorCheck* find(const DoctorReport& r, const std::string& id) {
  for (const auto& c : r.checks)
    if (c.id == id) return &c;
  return nullptr;
}

TEST(HostDoctor, NamespacesVethBridgeOkAndNothingLeftBehind) {
  LABCTL_REQUIRE_ROOT();
  std::string links = root_links();
  auto ns = list_netns();
  DoctorReport r = run_doctor();
  for (const char* id : {"netns", "veth", "bridge", "sysctls"}) {
    const DoctorCheck* c = find(r, id);
    ASSERT_TRUE(c) << id;
    EXPECT_TRUE(c->ok) << id << ": " << c->detail;
  }
  EXPECT_EQ(root_links(), links) << "doctor changed the root namespace";
  EXPECT_EQ(list_netns(), ns);
}

// This host's kernel has no module support and neither IPVS nor IPIP built in: the report
// must say so with the kernel's reason and point at the micro-VM.
TEST(HostDoctor, IpvsAndIpipMissingWithReasonsOnAKernelWithoutThem) {
  LABCTL_REQUIRE_ROOT();
  if (::access("/proc/modules", F_OK) == 0)
    GTEST_SKIP() << "this kernel loads modules: IPVS/IPIP may well be available";
  if (::access("/proc/net/ip_vs", F_OK) == 0 || ::access("/sys/module/ipip", F_OK) == 0)
    GTEST_SKIP() << "this kernel has IPVS or IPIP built in";
  DoctorReport r = run_doctor();
  const DoctorCheck* ipvs = find(r, "ipvs");
  ASSERT_TRUE(ipvs);
  EXPECT_FALSE(ipvs->ok);
  EXPECT_NE(ipvs->detail.find("\"IPVS\""), std::string::npos) << ipvs->detail;
  EXPECT_NE(ipvs->hint.find("labctl vm exec"), std::string::npos);
  const DoctorCheck* ipip = find(r, "ipip");
  ASSERT_TRUE(ipip);
  EXPECT_FALSE(ipip->ok);
  EXPECT_NE(ipip->detail.find("EOPNOTSUPP"), std::string::npos) << ipip->detail;
  EXPECT_NE(ipip->hint.find("labctl vm exec"), std::string::npos);
  EXPECT_GT(r.missing(), 0);
}

// The impairment rows agree with the probes `up`'s preflight uses, and a missing netem
// names its config option and the micro-VM (this host: tbf ok, netem missing).
TEST(HostDoctor, ImpairmentRowsSayWhatPreflightWouldAndHowToGetNetem) {
  LABCTL_REQUIRE_ROOT();
  std::string links = root_links();
  DoctorReport r = run_doctor();
  const DoctorCheck* netem = find(r, "netem");
  const DoctorCheck* tbf = find(r, "tbf");
  ASSERT_TRUE(netem);
  ASSERT_TRUE(tbf);
  EXPECT_EQ(tbf->ok, static_cast<bool>(probe_tbf())) << tbf->detail;
  const Status has_netem = probe_netem();
  EXPECT_EQ(netem->ok, static_cast<bool>(has_netem)) << netem->detail;
  if (!has_netem) {
    EXPECT_NE(netem->hint.find("CONFIG_NET_SCH_NETEM"), std::string::npos) << netem->hint;
    EXPECT_NE(netem->hint.find("labctl vm exec"), std::string::npos) << netem->hint;
  }
  EXPECT_EQ(root_links(), links) << "the probes changed the root namespace";
}

// The VXLAN row agrees with the probe `up`'s preflight uses for a lab stretched across hosts.
TEST(HostDoctor, VxlanRowSaysWhatPreflightWould) {
  LABCTL_REQUIRE_ROOT();
  std::string links = root_links();
  DoctorReport r = run_doctor();
  const DoctorCheck* vxlan = find(r, "vxlan");
  ASSERT_TRUE(vxlan);
  const Status has = probe_vxlan();
  EXPECT_EQ(vxlan->ok, static_cast<bool>(has)) << vxlan->detail;
  if (!has) {
    EXPECT_NE(vxlan->hint.find("CONFIG_VXLAN"), std::string::npos) << vxlan->hint;
  }
  EXPECT_EQ(root_links(), links) << "the probes changed the root namespace";
}

TEST(HostDoctor, CliExitsZeroAndJsonParses) {
  LABCTL_REQUIRE_ROOT();
  FILE* p = ::popen(LABCTL_BINARY_DIR "/labctl/labctl doctor --json", "r");
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  int st = ::pclose(p);
  EXPECT_EQ(st, 0) << "a report, even with features missing";
  auto j = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out;
  EXPECT_TRUE(j["checks"].is_array());
  EXPECT_GT(j["checks"].size(), 5u);
}

}  // namespace
}  // namespace labctl
