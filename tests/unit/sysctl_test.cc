#include "labctl/kernel/sysctl.h"

#include <gtest/gtest.h>

namespace labctl {
namespace {

TEST(SysctlPath, MapsDottedKeysUnderProcSys) {
  EXPECT_EQ(*sysctl_path("net.ipv4.conf.all.arp_ignore"), "/proc/sys/net/ipv4/conf/all/arp_ignore");
  EXPECT_EQ(*sysctl_path("net.ipv4.ip_forward"), "/proc/sys/net/ipv4/ip_forward");
}

TEST(SysctlPath, RejectsNonNetAndMalformedKeys) {
  EXPECT_FALSE(sysctl_path("kernel.panic"));
  EXPECT_FALSE(sysctl_path("net..ipv4"));
  EXPECT_FALSE(sysctl_path("net.ipv4."));
  EXPECT_FALSE(sysctl_path("net.ipv4.conf.a/b.rp_filter"));
  EXPECT_FALSE(sysctl_path("net"));
  auto e = sysctl_path("vm.swappiness");
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("not a net.* key"), std::string::npos);
}

}  // namespace
}  // namespace labctl
