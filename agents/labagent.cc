// labagent: the built-in workloads labctl starts inside lab nodes.
//   http  answers every HTTP request with the node's name (so a client sees who served it)
//   echo  echoes TCP or UDP payloads back
//   load  a bounded HTTP load client that counts which server answered
// Servers write "ready\n" to --ready-fd once listening, so labctl knows they started.
// Everything is bounded and listens only inside the lab namespace labctl put it in.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>
#include <vector>
#include <string>

#include <CLI/CLI.hpp>

namespace {

constexpr int kIoTimeoutMs = 2000;

int die(const std::string& what) {
  std::fprintf(stderr, "labagent: %s: %s\n", what.c_str(), std::strerror(errno));
  return 1;
}

void set_timeouts(int fd, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// A dual-stack socket bound to [::]:port (IPv4 clients arrive as v4-mapped addresses).
int listen_on(uint16_t port, int type) {
  int fd = ::socket(AF_INET6, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1, zero = 0;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(port);
  sa.sin6_addr = in6addr_any;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return -1;
  if (type == SOCK_STREAM && ::listen(fd, 128) != 0) return -1;
  return fd;
}

void signal_ready(int ready_fd) {
  if (ready_fd < 0) return;
  (void)!::write(ready_fd, "ready\n", 6);
  ::close(ready_fd);
}

bool write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads until the end of the request head (blank line), a timeout or 16 KiB.
bool read_request_head(int fd) {
  std::string buf;
  char chunk[2048];
  while (buf.find("\r\n\r\n") == std::string::npos && buf.find("\n\n") == std::string::npos) {
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0 || buf.size() > 16384) return false;
    buf.append(chunk, static_cast<size_t>(n));
  }
  return true;
}

// Ends the process from any of its threads: the first to get here exits, any other waits.
[[noreturn]] void exit_once(int status) {
  static std::mutex once;
  once.lock();
  std::exit(status);
}

int run_http(uint16_t port, const std::string& name, int ready_fd) {
  int lfd = listen_on(port, SOCK_STREAM);
  if (lfd < 0) return die("listen on port " + std::to_string(port));
  signal_ready(ready_fd);
  const std::string body = name + "\n";
  const std::string reply = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\nServer: labagent\r\nX-Served-By: " +
                            name + "\r\nConnection: close\r\n\r\n" + body;
  // Several threads (one per CPU, at least four), each taking connections from the one
  // listening socket (the kernel hands each to one waiting thread): one thread left the
  // other cores idle, and one silent client held up every other for the I/O timeout.
  // Returns only on an error that ends the agent (its exit status).
  auto serve = [&]() -> int {
    for (;;) {
      int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        // Out of descriptors or memory: wait for connections being served to close.
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          ::poll(nullptr, 0, 10);
          continue;
        }
        return die("accept");
      }
      set_timeouts(c, kIoTimeoutMs);
      if (read_request_head(c)) write_all(c, reply);
      ::close(c);
    }
  };
  // exit, not return: the other threads serve from this frame until the process ends.
  for (unsigned i = 1; i < std::max(4u, std::thread::hardware_concurrency()); ++i)
    std::thread([&] { exit_once(serve()); }).detach();
  exit_once(serve());
}

int run_echo_udp(uint16_t port, int ready_fd) {
  int fd = listen_on(port, SOCK_DGRAM);
  if (fd < 0) return die("bind udp port " + std::to_string(port));
  signal_ready(ready_fd);
  char buf[65536];
  for (;;) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return die("recvfrom");
    }
    ::sendto(fd, buf, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&peer), len);
  }
}

int run_echo_tcp(uint16_t port, int ready_fd) {
  int lfd = listen_on(port, SOCK_STREAM);
  if (lfd < 0) return die("listen on port " + std::to_string(port));
  signal_ready(ready_fd);
  for (;;) {
    int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return die("accept");
    }
    // One connection at a time, each bounded by the I/O timeout: enough for lab checks.
    set_timeouts(c, kIoTimeoutMs);
    char buf[16384];
    for (;;) {
      ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0 || !write_all(c, std::string(buf, static_cast<size_t>(n)))) break;
    }
    ::close(c);
  }
}

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
  auto colon = target.rfind(':');
  if (colon == std::string::npos) {
    std::fprintf(stderr, "labagent: --target must be HOST:PORT\n");
    return 2;
  }
  std::string host = target.substr(0, colon), port = target.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    std::fprintf(stderr, "labagent: bad target %s: %s\n", target.c_str(), gai_strerror(rc));
    return 2;
  }
  std::atomic<int> next{0};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  const std::string request = "GET / HTTP/1.0\r\nHost: " + host + "\r\n\r\n";
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

std::string hostname_or(const std::string& fallback) {
  char buf[256] = {};
  return ::gethostname(buf, sizeof buf - 1) == 0 && buf[0] ? buf : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"labagent: workloads for labctl labs (run inside a lab node by labctl)", "labagent"};
  app.set_version_flag("--version", "labagent " LABCTL_VERSION);
  app.require_subcommand(1);
  int ready_fd = -1;
  uint16_t port = 80;
  std::string name;
  bool udp = false;
  std::string target;
  int count = 100, concurrency = 1, seconds = 30;

  auto* http = app.add_subcommand("http", "serve HTTP, answering every request with the node name");
  http->add_option("--port", port, "TCP port to listen on")->default_val(80);
  http->add_option("--name", name, "name to answer with (default: the host name)");
  http->add_option("--ready-fd", ready_fd, "write \"ready\" to this fd once listening");

  auto* echo = app.add_subcommand("echo", "echo TCP (or UDP) payloads back");
  echo->add_option("--port", port, "port to listen on")->default_val(7);
  echo->add_flag("--udp", udp, "UDP instead of TCP");
  echo->add_option("--ready-fd", ready_fd, "write \"ready\" to this fd once listening");

  auto* load = app.add_subcommand("load", "send COUNT HTTP GETs and count who answered");
  load->add_option("--target", target, "HOST:PORT (numeric) to send to")->required();
  load->add_option("--count", count, "number of requests")->default_val(100)->check(CLI::Range(1, 1000000));
  load->add_option("--concurrency", concurrency, "parallel connections")->default_val(1)->check(CLI::Range(1, 256));
  load->add_option("--seconds", seconds, "stop after this many seconds")->default_val(30)->check(CLI::Range(1, 3600));

  CLI11_PARSE(app, argc, argv);
  if (*http) return run_http(port, name.empty() ? hostname_or("labagent") : name, ready_fd);
  if (*echo) return udp ? run_echo_udp(port, ready_fd) : run_echo_tcp(port, ready_fd);
  if (*load) return run_load(target, count, concurrency, seconds);
  return 2;
}
