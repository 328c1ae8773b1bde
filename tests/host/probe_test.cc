// Host tier: the probes checks use, from inside a throwaway namespace (loopback only).
#include "labctl/kernel/probe.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstring>

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
    return r.apply([&](RtnlBatch& batch) { return batch.link_up("lo"); });
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

// What sticky and least-conn need: a GET from a chosen source address, and its connection
// handed back open after the answer (the server has closed its half: a read gives EOF).
TEST(HostProbe, HttpGetFromASourceAddressKeepsItsConnection) {
  LABCTL_REQUIRE_ROOT();
  const std::string name = test::unique_name("labctl-test-probe");
  ASSERT_TRUE(create_netns(name));
  auto fd = open_netns(name);
  ASSERT_TRUE(fd);
  ASSERT_TRUE(run_in_netns(fd->get(), []() -> Status {
    TRY_ASSIGN(Rtnl r, Rtnl::open());
    return r.apply([&](RtnlBatch& batch) { return batch.link_up("lo"); });
  }));
  SpawnOptions o;
  o.netns_fd = fd->get();
  o.argv = {LABCTL_BINARY_DIR "/agents/labagent", "http", "--port", "8080", "--name", "probe-node",
            "--ready-fd", "3"};
  o.ready_timeout = 3s;
  ASSERT_TRUE(spawn_in_netns(o));
  const auto lo = *IpAddr::parse("127.0.0.1");
  Fd kept;
  std::string body;
  Status foreign;
  ASSERT_TRUE(run_in_netns(fd->get(), [&]() -> Status {
    HttpGetOptions h;
    h.source = IpAddr::parse("127.0.0.2");  // all of 127/8 is local on lo
    h.keep = &kept;
    TRY_ASSIGN(body, http_get(lo, 8080, "/", 2000ms, h));
    HttpGetOptions bad;
    bad.source = IpAddr::parse("192.0.2.1");  // no address of this namespace
    auto r = http_get(lo, 8080, "/", 2000ms, bad);
    if (!r) foreign = tl::unexpected(r.error());
    return {};
  }));
  EXPECT_EQ(body, "probe-node");
  ASSERT_TRUE(kept.valid());
  sockaddr_in local{};
  socklen_t len = sizeof local;
  ASSERT_EQ(::getsockname(kept.get(), reinterpret_cast<sockaddr*>(&local), &len), 0);
  EXPECT_EQ(std::memcmp(&local.sin_addr, IpAddr::parse("127.0.0.2")->bytes.data(), 4), 0);
  char c;
  EXPECT_EQ(::recv(kept.get(), &c, 1, MSG_DONTWAIT), 0) << "the server closed its half; ours is still open";
  ASSERT_FALSE(foreign);
  EXPECT_EQ(foreign.error().errnum, EADDRNOTAVAIL);
  EXPECT_NE(foreign.error().str().find("bind to source address 192.0.2.1"), std::string::npos)
      << foreign.error().str();
  kept.reset();
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
