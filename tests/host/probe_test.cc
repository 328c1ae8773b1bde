// Host tier: the probes checks use, from inside a throwaway namespace (loopback only).
#include "labctl/checks/probe.h"

#include <chrono>

#include <gtest/gtest.h>

#include "labctl/kernel/netns.h"
#include "labctl/kernel/process.h"
#include "labctl/kernel/rtnl.h"
#include "tests/host/host_test.h"

namespace labctl {
namespace {
using namespace std::chrono_literals;

TEST(HostProbe, TcpHttpAndIcmpInsideANamespace) {
  LABCTL_REQUIRE_ROOT();
  const std::string name = test::unique_name("labctl-test-probe");
  ASSERT_TRUE(create_netns(name));
  auto fd = open_netns(name);
  ASSERT_TRUE(fd);
  ASSERT_TRUE(run_in_netns(fd->get(), []() -> Status {
    TRY_ASSIGN(Rtnl r, Rtnl::open());
    return r.link_up("lo");
  }));
  SpawnOptions o;
  o.netns_fd = fd->get();
  o.argv = {LABCTL_BINARY_DIR "/agents/labagent", "http", "--port", "8080", "--name", "probe-node",
            "--ready-fd", "3"};
  o.ready_timeout = 3s;
  ASSERT_TRUE(spawn_in_netns(o));
  const auto lo4 = *IpAddr::parse("127.0.0.1"), lo6 = *IpAddr::parse("::1");
  std::string body4, body6;
  Status refused, ping4, ping6;
  ASSERT_TRUE(run_in_netns(fd->get(), [&]() -> Status {
    TRY_ASSIGN(body4, http_get(lo4, 8080, "/", 2000ms));
    TRY_ASSIGN(body6, http_get(lo6, 8080, "/x", 2000ms));
    refused = tcp_connect(lo4, 8081, 2000ms);
    ping4 = icmp_echo(lo4, 2000ms);
    ping6 = icmp_echo(lo6, 2000ms);
    return {};
  }));
  EXPECT_EQ(body4, "probe-node");
  EXPECT_EQ(body6, "probe-node");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().errnum, ECONNREFUSED);
  EXPECT_TRUE(ping4) << ping4.error().str();
  EXPECT_TRUE(ping6) << ping6.error().str();
  stop_processes_in_netns(netns_path(name), 1s);
  EXPECT_TRUE(delete_netns(name));
}

TEST(HostProbe, PingWithLoopbackDownFails) {
  LABCTL_REQUIRE_ROOT();
  // A fresh namespace has lo down, so not even 127.0.0.1 answers; nothing leaves it.
  Status st = run_in_new_netns([] { return icmp_echo(*IpAddr::parse("127.0.0.1"), 300ms); });
  EXPECT_FALSE(st);
}

}  // namespace
}  // namespace labctl
