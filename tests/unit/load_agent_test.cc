// labagent load --json against tiny servers of the test's own on loopback (no root, no lab):
// errors counted by kind (an HTTP status, refused, reset, timeout), keep-alive reusing its
// connections, one connection per request without it, and the latency histogram filled.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {

enum class Mode { Ok, Status503, Reset, Silent };

// A server on 127.0.0.1 (a port of its own) that answers every request as `mode` says, a
// thread per connection; with keep-alive asked, the connection stays open.
class TinyServer {
 public:
  explicit TinyServer(Mode mode) : mode_(mode) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    EXPECT_EQ(::listen(fd_, 64), 0);
    socklen_t len = sizeof sa;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~TinyServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    acceptor_.join();
    ::close(fd_);
    for (auto& t : conns_) t.join();
  }
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] int accepted() const { return accepted_; }

 private:
  void accept_loop() {
    for (;;) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      ++accepted_;
      conns_.emplace_back([this, c] { serve(c); });
    }
  }
  void serve(int c) {
    std::string buf;
    char chunk[4096];
    for (;;) {
      ssize_t n = ::recv(c, chunk, sizeof chunk, 0);
      if (n <= 0 || stop_) break;
      buf.append(chunk, static_cast<size_t>(n));
      const size_t end = buf.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      const bool keep = buf.find("Connection: keep-alive") != std::string::npos;
      buf.erase(0, end + 4);
      if (mode_ == Mode::Silent) {
        // Never answers; the client's timeout ends it.
        while (!stop_ && ::recv(c, chunk, sizeof chunk, 0) > 0) {
        }
        break;
      }
      if (mode_ == Mode::Reset) {
        linger l{1, 0};
        ::setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        break;
      }
      const std::string body = mode_ == Mode::Ok ? "tiny\n" : "busy\n";
      const std::string head = mode_ == Mode::Ok ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.1 503 Service Unavailable\r\n";
      const std::string resp = head + "Content-Length: " + std::to_string(body.size()) + "\r\n" +
                               (keep ? "Connection: keep-alive\r\n" : "Connection: close\r\n") + "\r\n" + body;
      if (::send(c, resp.data(), resp.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(resp.size()) || !keep) break;
    }
    ::close(c);
  }
  Mode mode_;
  int fd_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  std::vector<std::thread> conns_;
};

struct Ran {
  int status = -1;
  nlohmann::json j;
  std::string out;
};

Ran load(const std::string& args) {
  const std::string bin = std::string(LABCTL_BINARY_DIR) + "/agents/labagent";
  Ran r;
  FILE* p = ::popen((bin + " load --json " + args + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), buf.size(), p)) r.out += buf.data();
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  r.j = nlohmann::json::parse(r.out, nullptr, false);
  return r;
}

TEST(LoadAgent, AnHttpStatusIsAnErrorOfItsOwnKind) {
  TinyServer s(Mode::Status503);
  const Ran r = load("--target 127.0.0.1:" + std::to_string(s.port()) + " --count 5");
  ASSERT_FALSE(r.j.is_discarded()) << r.out;
  EXPECT_EQ(r.j["errors"], nlohmann::json({{"http 503", 5}})) << r.out;
  EXPECT_EQ(r.j["answered"], 0);
  EXPECT_EQ(r.status, 1) << "nothing answered";
}

TEST(LoadAgent, ARefusedConnectionIsRefused) {
  int port = 0;
  {
    TinyServer gone(Mode::Ok);
    port = gone.port();
  }  // nothing listens there any more
  const Ran r = load("--target 127.0.0.1:" + std::to_string(port) + " --count 4 --concurrency 2");
  ASSERT_FALSE(r.j.is_discarded()) << r.out;
  EXPECT_EQ(r.j["errors"], nlohmann::json({{"refused", 4}})) << r.out;
}

TEST(LoadAgent, AResetIsReset) {
  TinyServer s(Mode::Reset);
  const Ran r = load("--target 127.0.0.1:" + std::to_string(s.port()) + " --count 3");
  ASSERT_FALSE(r.j.is_discarded()) << r.out;
  EXPECT_EQ(r.j["errors"], nlohmann::json({{"reset", 3}})) << r.out;
}

TEST(LoadAgent, ASilentServerTimesOut) {
  TinyServer s(Mode::Silent);
  const Ran r = load("--target 127.0.0.1:" + std::to_string(s.port()) + " --count 1");
  ASSERT_FALSE(r.j.is_discarded()) << r.out;
  EXPECT_EQ(r.j["errors"], nlohmann::json({{"timeout", 1}})) << r.out;
}

TEST(LoadAgent, KeepAliveReusesItsConnectionsAndEveryAnswerIsTimed) {
  TinyServer s(Mode::Ok);
  const Ran r = load("--target 127.0.0.1:" + std::to_string(s.port()) + " --count 200 --concurrency 2 --keep-alive");
  ASSERT_FALSE(r.j.is_discarded()) << r.out;
  EXPECT_EQ(r.j["answered"], 200);
  EXPECT_EQ(r.j["served"], nlohmann::json({{"tiny", 200}}));
  EXPECT_EQ(r.j["connections"], 2);
  EXPECT_EQ(s.accepted(), 2);
  EXPECT_EQ(r.j["body_bytes"], 1000);
  EXPECT_EQ(r.j["latency_ns"]["count"], 200);
  EXPECT_GT(r.j["latency_ns"]["min"].get<uint64_t>(), 0u);
  EXPECT_GE(r.j["latency_ns"]["max"].get<uint64_t>(), r.j["latency_ns"]["min"].get<uint64_t>());
  EXPECT_EQ(r.status, 0);
}

TEST(LoadAgent, WithoutKeepAliveEveryRequestHasItsConnection) {
  TinyServer s(Mode::Ok);
  const Ran r = load("--target 127.0.0.1:" + std::to_string(s.port()) + " --count 30 --concurrency 3");
  ASSERT_FALSE(r.j.is_discarded()) << r.out;
  EXPECT_EQ(r.j["answered"], 30);
  EXPECT_EQ(r.j["connections"], 30);
  EXPECT_EQ(s.accepted(), 30);
}

TEST(LoadAgent, AnOpenLoopRateSpreadsTheRequestsOverTime) {
  TinyServer s(Mode::Ok);
  // 20 requests at 40/s: the last is due at 0.475 s, so the run takes about half a second
  // (a closed loop would finish them in milliseconds).
  const Ran r = load("--target 127.0.0.1:" + std::to_string(s.port()) + " --count 20 --rate 40 --keep-alive");
  ASSERT_FALSE(r.j.is_discarded()) << r.out;
  EXPECT_EQ(r.j["answered"], 20);
  EXPECT_GE(r.j["seconds"].get<double>(), 0.45) << r.out;
  EXPECT_LE(r.j["seconds"].get<double>(), 2.0) << r.out;  // a loaded machine may be late, never early
}

TEST(LoadAgent, TheTextOutputIsUnchangedWithoutJson) {
  TinyServer s(Mode::Ok);
  const std::string bin = std::string(LABCTL_BINARY_DIR) + "/agents/labagent";
  FILE* p = ::popen((bin + " load --target 127.0.0.1:" + std::to_string(s.port()) + " --count 3 2>&1").c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  std::array<char, 256> buf{};
  while (std::fgets(buf.data(), buf.size(), p)) out += buf.data();
  ::pclose(p);
  EXPECT_EQ(out, "tiny 3\n");
}

}  // namespace
