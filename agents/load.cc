// labagent load: a bounded HTTP load client that counts which server answered.
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agents/common.h"
#include "labctl/model/load_target.h"

namespace labagent {
namespace {

// One HTTP GET; returns the body ("" on failure).
std::string http_get(const addrinfo* ai, const std::string& request) {
  int fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  set_timeouts(fd, kIoTimeoutMs);
  std::string body;
  if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
      write_all(fd, request)) {
    std::string resp;
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) resp.append(buf, static_cast<size_t>(n));
    auto head_end = resp.find("\r\n\r\n");
    if (resp.rfind("HTTP/1.", 0) == 0 && head_end != std::string::npos) {
      body = resp.substr(head_end + 4);
      while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
    }
  }
  ::close(fd);
  return body;
}

}  // namespace

int run_load(const std::string& target, int count, int concurrency, int seconds) {
  auto parsed = labctl::parse_load_target(target);
  if (!parsed) {
    std::fprintf(stderr, "labagent: %s (%s)\n", parsed.error().message.c_str(), parsed.error().hint.c_str());
    return 2;
  }
  const std::string request =
      "GET " + parsed->path + " HTTP/1.0\r\nHost: " + parsed->host_header() + "\r\n\r\n";
  const std::string host = parsed->addr.str(), port = std::to_string(parsed->port);
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    std::fprintf(stderr, "labagent: bad target %s: %s\n", target.c_str(), gai_strerror(rc));
    return 2;
  }
  std::map<std::string, int> served;
  int failed = 0;
  std::mutex mu;
  std::atomic<int> next{0};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  // Each worker takes request numbers until `count` are taken or time is up.
  auto worker = [&] {
    while (next.fetch_add(1) < count && std::chrono::steady_clock::now() < deadline) {
      std::string who = http_get(res, request);
      std::lock_guard<std::mutex> lock(mu);
      if (who.empty()) ++failed;
      else ++served[who];
    }
  };
  std::vector<std::thread> workers;
  for (int i = 1; i < concurrency; ++i) workers.emplace_back(worker);
  worker();
  for (auto& w : workers) w.join();
  ::freeaddrinfo(res);
  for (const auto& [who, n] : served) std::printf("%s %d\n", who.c_str(), n);
  if (failed) std::printf("failed %d\n", failed);
  return served.empty() ? 1 : 0;
}

}  // namespace labagent
