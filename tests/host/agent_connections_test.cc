// Host tier: how labagent's load client and HTTP server handle their connections, inside a
// throwaway namespace (loopback only). The load client drives several connections per
// thread without blocking and takes an answer as complete at its Content-Length (or when
// the server closes); the HTTP server serves on several threads, so one silent client
// cannot hold up the others. Servers made of test code play the odd servers.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "labctl/kernel/netns.h"
#include "labctl/kernel/process.h"
#include "labctl/kernel/rtnl.h"
#include "tests/host/host_test.h"
#include "tests/support/kill_sweep.h"

namespace labctl {
namespace {
using namespace std::chrono_literals;

constexpr const char* kLabagent = LABCTL_BINARY_DIR "/agents/labagent";

class AgentConnections : public ::testing::Test {
 protected:
  void SetUp() override {
    LABCTL_REQUIRE_ROOT();
    name_ = test::unique_name("labctl-test-conn");
    ASSERT_TRUE(create_netns(name_));
    auto fd = open_netns(name_);
    ASSERT_TRUE(fd);
    fd_ = std::move(*fd);
    ASSERT_TRUE(run_in_netns(fd_.get(), []() -> Status {
      TRY_ASSIGN(Rtnl r, Rtnl::open());
      return r.apply([&](RtnlBatch& batch) { return batch.link_up("lo"); });
    }));
  }
  void TearDown() override {
    if (name_.empty()) return;
    stop_processes_in_netns(netns_path(name_), 500ms);
    EXPECT_TRUE(delete_netns(name_));
  }
  /// `labagent load` inside the namespace: its output and, last, "exit N".
  std::string load(int port, int count, int concurrency, int seconds) {
    return test::run_capture("ip netns exec " + name_ + " " + kLabagent + " load --target 127.0.0.1:" +
                             std::to_string(port) + " --count " + std::to_string(count) +
                             " --concurrency " + std::to_string(concurrency) + " --seconds " +
                             std::to_string(seconds) + " 2>&1; echo exit $?");
  }
  std::string name_;
  Fd fd_;
};

void write_str(int fd, const std::string& s) {
  (void)!::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
}

// Reads a request head; false if the client went away first.
bool read_head(int fd) {
  std::string got;
  char buf[1024];
  while (got.find("\r\n\r\n") == std::string::npos) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    got.append(buf, static_cast<size_t>(n));
  }
  return true;
}

// Waits until the client closes its end.
void until_closed(int fd) {
  char buf[1024];
  while (::recv(fd, buf, sizeof buf, 0) > 0) {
  }
}

// A server made of test code: listens on 127.0.0.1 inside the namespace and gives each
// connection (numbered from 0) to `serve` on a thread of its own, then closes it.
class TestServer {
 public:
  TestServer(int ns_fd, std::function<void(int fd, int n)> serve) : serve_(std::move(serve)) {
    Status st = run_in_netns(ns_fd, [&]() -> Status {
      lfd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      socklen_t len = sizeof sa;
      if (::bind(lfd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(lfd_, 64) != 0 ||
          ::getsockname(lfd_, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
        return fail("test server socket");
      port_ = ntohs(sa.sin_port);
      return {};
    });
    EXPECT_TRUE(st) << st.error().str();
    acceptor_ = std::thread([this] {
      for (int n = 0;; ++n) {
        int c = ::accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;  // shut down
        std::lock_guard<std::mutex> lock(mu_);
        conns_.emplace_back([this, c, n] {
          serve_(c, n);
          ::close(c);
        });
      }
    });
  }
  ~TestServer() {
    ::shutdown(lfd_, SHUT_RDWR);
    acceptor_.join();
    for (auto& t : conns_) t.join();
    ::close(lfd_);
  }
  [[nodiscard]] int port() const { return port_; }

 private:
  std::function<void(int, int)> serve_;
  int lfd_ = -1;
  int port_ = 0;
  std::mutex mu_;
  std::vector<std::thread> conns_;
  std::thread acceptor_;
};

TEST_F(AgentConnections, LoadCountsEveryAnswerOnceAcrossConnectionsAndThreads) {
  // Two "servers" behind one port: even connections answer rs1, odd ones rs2.
  TestServer s(fd_.get(), [](int fd, int n) {
    if (read_head(fd))
      write_str(fd, std::string("HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\n") + (n % 2 ? "rs2\n" : "rs1\n"));
  });
  EXPECT_EQ(load(s.port(), 40, 8, 20), "rs1 20\nrs2 20\nexit 0\n");
}

TEST_F(AgentConnections, LoadTakesAnAnswerAsCompleteAtItsContentLength) {
  // This server never closes first: the answer is complete once Content-Length bytes are
  // in. A client waiting for the close would wait out its 2 s timeout per request and
  // get through 1 of these 10 in the 1 s it has.
  TestServer s(fd_.get(), [](int fd, int) {
    if (!read_head(fd)) return;
    write_str(fd, "HTTP/1.1 200 OK\r\ncontent-length: 6\r\nConnection: keep-alive\r\n\r\nkept\r\n");
    until_closed(fd);
  });
  EXPECT_EQ(load(s.port(), 10, 1, 1), "kept 10\nexit 0\n");
}

TEST_F(AgentConnections, LoadReadsAnAnswerWithoutContentLengthUntilTheServerCloses) {
  // Head and body in separate writes, apart in time: the body is what came before the close.
  TestServer s(fd_.get(), [](int fd, int) {
    if (!read_head(fd)) return;
    write_str(fd, "HTTP/1.0 200 OK\r\nServer: test\r\n\r\n");
    std::this_thread::sleep_for(20ms);
    write_str(fd, "split");
    std::this_thread::sleep_for(20ms);
    write_str(fd, "-body\n");
  });
  EXPECT_EQ(load(s.port(), 6, 3, 20), "split-body 6\nexit 0\n");
}

TEST_F(AgentConnections, LoadCountsSilenceAndRefusalAsFailedAndEnds) {
  // Accepts, reads the request and never answers: each request fails after the client's
  // 2 s I/O timeout, and the client still ends.
  TestServer silent(fd_.get(), [](int fd, int) {
    if (read_head(fd)) until_closed(fd);
  });
  EXPECT_EQ(load(silent.port(), 3, 3, 20), "failed 3\nexit 1\n");
  // Nobody listens on port 1: refused at once.
  EXPECT_EQ(load(1, 5, 2, 20), "failed 5\nexit 1\n");
}

TEST_F(AgentConnections, HttpAgentServesOthersWhileOneClientStaysSilent) {
  SpawnOptions o;
  o.netns_fd = fd_.get();
  o.argv = {kLabagent, "http", "--port", "8080", "--name", "n1", "--ready-fd", "3"};
  o.ready_timeout = 3s;
  auto pid = spawn_in_netns(o);
  ASSERT_TRUE(pid) << pid.error().str();
  // A client that connects and sends nothing: a server with one thread would wait for it
  // for its 2 s timeout, and the load below (1 s) would get at most one answer.
  int silent = -1;
  ASSERT_TRUE(run_in_netns(fd_.get(), [&]() -> Status {
    silent = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(8080);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(silent, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return fail("connect");
    return {};
  }));
  std::this_thread::sleep_for(100ms);  // accepted by now
  EXPECT_EQ(load(8080, 10, 1, 1), "n1 10\nexit 0\n");
  ::close(silent);
}

}  // namespace
}  // namespace labctl
