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
#include <sys/socket.h>
#include <unistd.h>

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

int run_http(uint16_t port, const std::string& name, int ready_fd) {
  int lfd = listen_on(port, SOCK_STREAM);
  if (lfd < 0) return die("listen on port " + std::to_string(port));
  signal_ready(ready_fd);
  const std::string body = name + "\n";
  const std::string reply = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\nServer: labagent\r\nX-Served-By: " +
                            name + "\r\nConnection: close\r\n\r\n" + body;
  for (;;) {
    int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return die("accept");
    }
    set_timeouts(c, kIoTimeoutMs);
    if (read_request_head(c)) write_all(c, reply);
    ::close(c);
  }
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

// One HTTP GET; returns the body ("" on failure).
std::string http_get(const addrinfo* ai, const std::string& host) {
  int fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  set_timeouts(fd, kIoTimeoutMs);
  std::string body;
  if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
      write_all(fd, "GET / HTTP/1.0\r\nHost: " + host + "\r\n\r\n")) {
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
  std::map<std::string, int> served;
  int failed = 0;
  std::mutex mu;
  std::atomic<int> next{0};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  // Each worker takes request numbers until `count` are taken or time is up.
  auto worker = [&] {
    while (next.fetch_add(1) < count && std::chrono::steady_clock::now() < deadline) {
      std::string who = http_get(res, host);
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
