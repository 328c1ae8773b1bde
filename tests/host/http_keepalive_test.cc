// Host tier: labagent http keeps a connection open when its client asks for it
// (Connection: keep-alive), on a thread of its own, so that a failover check can hold
// connections through a VIP across a takeover; every other request is answered and closed
// as before. In a throwaway namespace, loopback only.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "labctl/base/fd.h"
#include "labctl/kernel/netns.h"
#include "labctl/kernel/probe.h"
#include "labctl/kernel/process.h"
#include "labctl/kernel/rtnl.h"
#include "tests/host/host_test.h"

namespace labctl {
namespace {
using namespace std::chrono_literals;

constexpr const char* kLabagent = LABCTL_BINARY_DIR "/agents/labagent";

class HttpKeepAlive : public ::testing::Test {
 protected:
  void SetUp() override {
    LABCTL_REQUIRE_ROOT();
    name_ = test::unique_name("labctl-test-ka");
    ASSERT_TRUE(create_netns(name_));
    auto fd = open_netns(name_);
    ASSERT_TRUE(fd);
    fd_ = std::move(*fd);
    ASSERT_TRUE(run_in_netns(fd_.get(), []() -> Status {
      TRY_ASSIGN(Rtnl r, Rtnl::open());
      return r.apply([&](RtnlBatch& batch) { return batch.link_up("lo"); });
    }));
    SpawnOptions o;
    o.netns_fd = fd_.get();
    o.argv = {kLabagent, "http", "--port", "8080", "--name", "n1", "--ready-fd", "3"};
    o.ready_timeout = 3s;
    auto pid = spawn_in_netns(o);
    ASSERT_TRUE(pid) << pid.error().str();
  }
  void TearDown() override {
    if (name_.empty()) return;
    stop_processes_in_netns(netns_path(name_), 500ms);
    EXPECT_TRUE(delete_netns(name_));
  }
  std::string name_;
  Fd fd_;
};

TEST_F(HttpKeepAlive, AskedConnectionsStayOpenForMoreRequestsBeyondTheServingThreads) {
  const IpAddr lo = *IpAddr::parse("127.0.0.1");
  // More held connections than the server's serving threads (at least four): each kept one
  // has a thread of its own, so none blocks the next accept.
  std::vector<Fd> held(8);
  ASSERT_TRUE(run_in_netns(fd_.get(), [&]() -> Status {
    for (auto& fd : held) {
      HttpGetOptions o;
      o.keep = &fd;
      o.keep_alive = true;
      TRY_ASSIGN(std::string body, http_get(lo, 8080, "/", 2000ms, o));
      if (body != "n1") return fail("answered " + body);
    }
    // A request that does not ask is answered and closed, as before.
    Fd plain;
    HttpGetOptions o;
    o.keep = &plain;
    TRY_ASSIGN(std::string body, http_get(lo, 8080, "/", 2000ms, o));
    if (body != "n1") return fail("plain request answered " + body);
    char c;
    if (::recv(plain.get(), &c, 1, 0) != 0) return fail("a plain request's connection stayed open");
    return {};
  }));
  // Each held connection answers again, twice, on the same socket.
  for (int round = 0; round < 2; ++round)
    for (auto& fd : held) {
      auto r = http_get_kept(fd, lo, 8080, "/", 2000ms);
      ASSERT_TRUE(r) << r.error().str();
      EXPECT_EQ(*r, "n1");
    }
  // The client closing its end ends the server's side too: a new request is served.
  held.clear();
  std::string body;
  ASSERT_TRUE(run_in_netns(fd_.get(), [&]() -> Status {
    TRY_ASSIGN(body, http_get(lo, 8080, "/", 2000ms));
    return {};
  }));
  EXPECT_EQ(body, "n1");
}

}  // namespace
}  // namespace labctl
