// Host tier: real named namespaces on this kernel. Needs root.
#include "labctl/kernel/netns.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <random>

#include <gtest/gtest.h>

#include "tests/host/host_test.h"

namespace labctl {
namespace {

bool ip_netns_lists(const std::string& name) {
  FILE* p = ::popen("ip netns list", "r");
  if (!p) return false;
  char line[512];
  bool found = false;
  while (std::fgets(line, sizeof line, p))
    if (std::string(line).rfind(name + " ", 0) == 0 || std::string(line) == name + "\n") found = true;
  ::pclose(p);
  return found;
}

TEST(HostNetns, CreateShowsInIpNetnsThenDeleteLeavesNothing) {
  LABCTL_REQUIRE_ROOT();
  const std::string name = test::unique_name("labctl-test-ns");
  ASSERT_TRUE(create_netns(name)) << "create";
  EXPECT_TRUE(ip_netns_lists(name));
  auto again = create_netns(name);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().errnum, EEXIST);
  ASSERT_TRUE(delete_netns(name));
  EXPECT_FALSE(ip_netns_lists(name));
  auto names = list_netns();
  EXPECT_EQ(std::find(names.begin(), names.end(), name), names.end());
  EXPECT_TRUE(delete_netns(name)) << "deleting twice is not an error";
}

TEST(HostNetns, InsideRunsInTheNewNamespaceBeforePublishing) {
  LABCTL_REQUIRE_ROOT();
  const std::string name = test::unique_name("labctl-test-ns");
  std::string inode_inside;
  ASSERT_TRUE(create_netns(name, [&]() -> Status {
    char buf[64] = {};
    ssize_t n = ::readlink("/proc/thread-self/ns/net", buf, sizeof buf - 1);
    if (n > 0) inode_inside.assign(buf, static_cast<size_t>(n));
    EXPECT_NE(::access(netns_path(name).c_str(), F_OK), -1) << "placeholder exists";
    return {};
  }));
  char self[64] = {};
  ASSERT_GT(::readlink("/proc/self/ns/net", self, sizeof self - 1), 0);
  EXPECT_NE(inode_inside, std::string(self)) << "ran in a new namespace, not ours";
  auto fd = open_netns(name);
  ASSERT_TRUE(fd);
  std::string seen;
  ASSERT_TRUE(run_in_netns(fd->get(), [&]() -> Status {
    char buf[64] = {};
    ssize_t n = ::readlink("/proc/thread-self/ns/net", buf, sizeof buf - 1);
    seen.assign(buf, static_cast<size_t>(std::max<ssize_t>(n, 0)));
    return {};
  }));
  EXPECT_EQ(seen, inode_inside);
  ASSERT_TRUE(delete_netns(name));
}

TEST(HostNetns, FailingInsideRemovesThePlaceholder) {
  LABCTL_REQUIRE_ROOT();
  const std::string name = test::unique_name("labctl-test-ns");
  auto st = create_netns(name, [] { return Status(fail("boom")); });
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("boom"), std::string::npos);
  EXPECT_EQ(::access(netns_path(name).c_str(), F_OK), -1);
}

}  // namespace
}  // namespace labctl
