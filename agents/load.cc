// labagent load: a bounded HTTP load client that counts which server answered.
#include <netdb.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "agents/common.h"
#include "agents/subcommand.h"
#include "labctl/model/load_target.h"

namespace labagent {
namespace {

// The load client: a fixed pool of threads (one per CPU, never more than connections),
// each driving its share of the connections without blocking (epoll, edge-triggered), as
// wrk does. A thread per connection spent its time switching threads, and a shared
// mutex and map per request made the threads wait for each other: each thread now
// counts into its own tally, reuses its buffers, and the tallies are added at the end.
// Every connection carries one request (the servers answer HTTP/1.0, Connection: close):
// it ends when the response is complete (Content-Length) or the server closes.
struct LoadTally {
  std::map<std::string, int> served;
  int failed = 0;
};

struct LoadConn {
  int fd = -1;
  size_t sent = 0;
  std::string resp;
  std::chrono::steady_clock::time_point expires;
};

// Where the head of a response ends (after its blank line), or npos.
size_t head_end(const std::string& resp) {
  size_t e = resp.find("\r\n\r\n");
  return e == std::string::npos ? e : e + 4;
}

// The Content-Length of a response head, or -1.
long content_length(const std::string& resp, size_t end) {
  static constexpr char kName[] = "\r\ncontent-length:";
  for (size_t i = resp.find("\r\n"); i != std::string::npos && i < end; i = resp.find("\r\n", i + 2))
    if (::strncasecmp(resp.c_str() + i, kName, sizeof kName - 1) == 0)
      return std::strtol(resp.c_str() + i + sizeof kName - 1, nullptr, 10);
  return -1;
}

// A response is complete once its head and Content-Length bytes of body are in.
bool response_complete(const std::string& resp) {
  size_t end = head_end(resp);
  if (end == std::string::npos) return false;
  long len = content_length(resp, end);
  return len >= 0 && resp.size() >= end + static_cast<size_t>(len);
}

// The body of an HTTP/1.x response, trailing newlines cut ("" when it is none).
std::string response_body(const std::string& resp) {
  size_t end = head_end(resp);
  if (resp.rfind("HTTP/1.", 0) != 0 || end == std::string::npos) return "";
  long len = content_length(resp, end);
  std::string body = resp.substr(end, len >= 0 ? static_cast<size_t>(len) : std::string::npos);
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
  return body;
}

// One thread's share: `conns` connections, each sending requests one after the other while
// request numbers (`next` < count) and time are left.
LoadTally load_worker(const addrinfo* ai, const std::string& request, int conns,
                      std::atomic<int>& next, int count,
                      std::chrono::steady_clock::time_point deadline) {
  using Clock = std::chrono::steady_clock;
  LoadTally tally;
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) {
    std::fprintf(stderr, "labagent: epoll: %s\n", std::strerror(errno));
    tally.failed = conns;
    return tally;
  }
  std::vector<LoadConn> cs(static_cast<size_t>(conns));
  int active = 0;
  // Starts connection i's next request; false when no request is left to take.
  auto start = [&](size_t i) {
    LoadConn& c = cs[i];
    while (next.fetch_add(1) < count && Clock::now() < deadline) {
      c.fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
      ev.data.u64 = i;
      if (c.fd >= 0 && (::connect(c.fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS) &&
          ::epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev) == 0) {
        c.sent = 0;
        c.resp.clear();
        c.expires = Clock::now() + std::chrono::milliseconds(kIoTimeoutMs);
        return true;
      }
      if (c.fd >= 0) ::close(c.fd);
      c.fd = -1;
      ++tally.failed;
    }
    return false;
  };
  auto finish = [&](size_t i, bool ok) {
    LoadConn& c = cs[i];
    ::close(c.fd);
    c.fd = -1;
    std::string who = ok ? response_body(c.resp) : "";
    if (who.empty()) ++tally.failed;
    else ++tally.served[who];
    if (!start(i)) --active;
  };
  for (size_t i = 0; i < cs.size(); ++i) active += start(i);
  char buf[16384];
  epoll_event evs[64];
  auto next_scan = Clock::now() + std::chrono::milliseconds(100);
  while (active > 0) {
    int n = ::epoll_wait(ep, evs, 64, 100);
    if (n < 0 && errno != EINTR) {
      std::fprintf(stderr, "labagent: epoll_wait: %s\n", std::strerror(errno));
      for (size_t i = 0; i < cs.size(); ++i)
        if (cs[i].fd >= 0) ::close(cs[i].fd), ++tally.failed;
      break;
    }
    for (int k = 0; k < n; ++k) {
      const size_t i = evs[k].data.u64;
      LoadConn& c = cs[i];
      if (c.sent < request.size()) {
        // Writable once connected; a failed connect shows as send's error.
        ssize_t w = ::send(c.fd, request.data() + c.sent, request.size() - c.sent, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN) {
          finish(i, false);
          continue;
        }
        if (w > 0) c.sent += static_cast<size_t>(w);
      }
      if (c.sent < request.size() || !(evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
      // Edge-triggered: read until the response is complete, the server closed, or nothing
      // more is there yet.
      for (;;) {
        ssize_t r = ::recv(c.fd, buf, sizeof buf, 0);
        if (r > 0) {
          c.resp.append(buf, static_cast<size_t>(r));
          if (!response_complete(c.resp)) continue;
          finish(i, true);
        } else if (r == 0) {
          finish(i, true);
        } else if (errno != EAGAIN) {
          finish(i, false);
        }
        break;
      }
    }
    if (auto now = Clock::now(); now >= next_scan) {
      next_scan = now + std::chrono::milliseconds(100);
      for (size_t i = 0; i < cs.size(); ++i)
        if (cs[i].fd >= 0 && now >= cs[i].expires) finish(i, false);
    }
  }
  ::close(ep);
  return tally;
}

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
  std::atomic<int> next{0};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  const int threads = std::min(concurrency, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  std::vector<LoadTally> tallies(static_cast<size_t>(threads));
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    const int conns = concurrency / threads + (t < concurrency % threads);
    auto work = [&, t, conns] { tallies[static_cast<size_t>(t)] = load_worker(res, request, conns, next, count, deadline); };
    if (t + 1 < threads) workers.emplace_back(work);
    else work();
  }
  for (auto& w : workers) w.join();
  ::freeaddrinfo(res);
  std::map<std::string, int> served;
  int failed = 0;
  for (const auto& tally : tallies) {
    for (const auto& [who, n] : tally.served) served[who] += n;
    failed += tally.failed;
  }
  for (const auto& [who, n] : served) std::printf("%s %d\n", who.c_str(), n);
  if (failed) std::printf("failed %d\n", failed);
  return served.empty() ? 1 : 0;
}

std::string target;
int count = 100, concurrency = 1, seconds = 30;

CLI::App* add(CLI::App& app) {
  auto* load = app.add_subcommand("load", "send COUNT HTTP GETs and count who answered");
  load->add_option("--target", target, "http://ADDRESS[:PORT][/PATH] or ADDRESS:PORT (numeric) to send to")->required();
  load->add_option("--count", count, "number of requests")->default_val(100)->check(CLI::Range(1, 1000000));
  load->add_option("--concurrency", concurrency, "parallel connections")->default_val(1)->check(CLI::Range(1, 256));
  load->add_option("--seconds", seconds, "stop after this many seconds")->default_val(30)->check(CLI::Range(1, 3600));
  return load;
}

int run() { return run_load(target, count, concurrency, seconds); }

const Registered registered{{"load", add, run}};

}  // namespace
}  // namespace labagent
