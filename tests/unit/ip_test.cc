#include "labctl/model/ip.h"

#include <sys/socket.h>

#include <gtest/gtest.h>

namespace labctl {
namespace {

TEST(IpAddr, ParsesV4AndV6) {
  auto a = IpAddr::parse("10.0.0.1");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->family, AF_INET);
  EXPECT_EQ(a->str(), "10.0.0.1");
  auto b = IpAddr::parse("fd00::1");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->family, AF_INET6);
  EXPECT_EQ(b->str(), "fd00::1");
  EXPECT_FALSE(IpAddr::parse("10.0.0.256"));
  EXPECT_FALSE(IpAddr::parse(""));
  EXPECT_FALSE(IpAddr::parse("rs1"));
}

TEST(IpPrefix, ParsesAndRejects) {
  auto p = IpPrefix::parse("10.0.0.7/24");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->len, 24);
  EXPECT_EQ(p->str(), "10.0.0.7/24");
  EXPECT_EQ(p->network().str(), "10.0.0.0/24");
  EXPECT_FALSE(IpPrefix::parse("10.0.0.7/33"));
  EXPECT_FALSE(IpPrefix::parse("10.0.0.7/"));
  EXPECT_FALSE(IpPrefix::parse("10.0.0.7/2x"));
  EXPECT_FALSE(IpPrefix::parse("10.0.0.7"));
  EXPECT_EQ(IpPrefix::parse("10.0.0.7", true)->len, 32);
  EXPECT_EQ(IpPrefix::parse("fd00::1/64")->network().str(), "fd00::/64");
}

TEST(IpPrefix, ContainsAndOverlaps) {
  auto p = *IpPrefix::parse("192.168.1.10/24");
  EXPECT_TRUE(p.contains(*IpAddr::parse("192.168.1.200")));
  EXPECT_FALSE(p.contains(*IpAddr::parse("192.168.2.1")));
  EXPECT_FALSE(p.contains(*IpAddr::parse("fd00::1")));
  EXPECT_TRUE(p.overlaps(*IpPrefix::parse("192.168.0.0/16")));
  EXPECT_FALSE(p.overlaps(*IpPrefix::parse("192.168.2.0/24")));
  EXPECT_EQ(IpAddr::parse("1.2.3.4")->v4_be(), 0x04030201u);
}

}  // namespace
}  // namespace labctl
