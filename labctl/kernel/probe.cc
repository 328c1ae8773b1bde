#include "labctl/kernel/probe.h"

#include <arpa/inet.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>

#include "labctl/base/display.h"
#include "labctl/base/fd.h"

namespace labctl {
namespace {

socklen_t fill_sockaddr(const IpAddr& a, uint16_t port, sockaddr_storage& ss) {
  std::memset(&ss, 0, sizeof ss);
  if (a.v4()) {
    auto* s = reinterpret_cast<sockaddr_in*>(&ss);
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    std::memcpy(&s->sin_addr, a.bytes.data(), 4);
    return sizeof *s;
  }
  auto* s = reinterpret_cast<sockaddr_in6*>(&ss);
  s->sin6_family = AF_INET6;
  s->sin6_port = htons(port);
  std::memcpy(&s->sin6_addr, a.bytes.data(), 16);
  return sizeof *s;
}

std::string endpoint(const IpAddr& a, uint16_t port) {
  return (a.v6() ? "[" + a.str() + "]" : a.str()) + ":" + std::to_string(port);
}

using Clock = std::chrono::steady_clock;

Millis left_until(Clock::time_point end) {
  return std::max(Millis{0}, std::chrono::duration_cast<Millis>(end - Clock::now()));
}

// Waits for `events` on fd; ETIMEDOUT when the time runs out.
Status wait_for(int fd, short events, Millis timeout) {
  pollfd p{fd, events, 0};
  int rc;
  do rc = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(0, timeout.count())));
  while (rc < 0 && errno == EINTR);
  if (rc == 0) return fail_errno("timed out", ETIMEDOUT);
  if (rc < 0) return fail_errno("poll", errno);
  return {};
}

Result<Fd> connect_to(const IpAddr& to, uint16_t port, Millis timeout,
                      const std::optional<IpAddr>& source = std::nullopt, uint16_t source_port = 0) {
  Fd fd(::socket(to.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return fail_errno("socket", errno);
  sockaddr_storage ss;
  if (source_port) {
    int one = 1;
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  }
  if (source || source_port) {
    IpAddr any;
    any.family = to.family;
    socklen_t slen = fill_sockaddr(source ? *source : any, source_port, ss);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), slen) != 0)
      return fail_errno(
          (source ? "bind to source address " + source->str() : std::string("bind to source")) +
              (source_port ? " port " + std::to_string(source_port) : ""),
          errno,
          errno == EADDRNOTAVAIL ? "the address must be one of the sending node's own"
          : errno == EADDRINUSE  ? "another socket of the node holds that port"
                                 : "");
  }
  socklen_t len = fill_sockaddr(to, port, ss);
  const std::string where = "connect to " + endpoint(to, port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    if (errno != EINPROGRESS) return fail_errno(where, errno);
    if (Status st = wait_for(fd.get(), POLLOUT, timeout); !st)
      return tl::unexpected(std::move(st.error()).context(where));
    int err = 0;
    socklen_t el = sizeof err;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) return fail_errno(where, err);
  }
  return fd;
}

uint16_t icmp_checksum(const uint8_t* data, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += static_cast<uint32_t>(data[i] << 8 | data[i + 1]);
  if (len & 1) sum += static_cast<uint32_t>(data[len - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return htons(static_cast<uint16_t>(~sum));
}

}  // namespace

Status tcp_connect(const IpAddr& to, uint16_t port, Millis timeout) {
  TRY_ASSIGN(Fd fd, connect_to(to, port, timeout));
  return {};
}

Result<std::string> http_get(const IpAddr& to, uint16_t port, const std::string& path,
                             Millis timeout) {
  return http_get(to, port, path, timeout, HttpGetOptions{});
}

namespace {

// Sends `GET path` on an open connection and reads one reply: until the peer closes, or,
// when `keep_alive`, exactly the head and Content-Length bytes of body (the connection
// stays usable). Returns the body, trailing newlines removed; an error unless HTTP 200.
Result<std::string> http_request(int fd, const IpAddr& to, uint16_t port, const std::string& path,
                                 Clock::time_point end, bool keep_alive) {
  const std::string req = "GET " + path + (keep_alive ? " HTTP/1.1" : " HTTP/1.0") +
                          "\r\nHost: " + to.str() + "\r\n" +
                          (keep_alive ? "Connection: keep-alive\r\n" : "") + "\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
    return fail_errno("send HTTP request to " + endpoint(to, port), errno);
  std::string resp;
  char buf[4096];
  std::optional<size_t> want;  // head and body, once the head says how long the body is
  for (;;) {
    if (want && resp.size() >= *want) break;
    if (Status st = wait_for(fd, POLLIN, left_until(end)); !st)
      return tl::unexpected(std::move(st.error()).context("HTTP reply from " + endpoint(to, port)));
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) return fail_errno("read HTTP reply from " + endpoint(to, port), errno);
    if (n == 0) {
      if (keep_alive && resp.empty())
        return fail("the connection to " + endpoint(to, port) + " was closed before an answer");
      break;
    }
    resp.append(buf, static_cast<size_t>(n));
    if (resp.size() > (1u << 20)) break;
    if (keep_alive && !want)
      if (auto head_end = resp.find("\r\n\r\n"); head_end != std::string::npos) {
        std::string head = resp.substr(0, head_end);
        std::transform(head.begin(), head.end(), head.begin(), [](unsigned char ch) { return std::tolower(ch); });
        if (head.find("\r\nconnection: close") != std::string::npos)
          return fail(endpoint(to, port) + " answered with Connection: close: it does not keep the connection "
                      "open for another request",
                      "the server must support HTTP keep-alive (labagent http does when asked)");
        const auto cl = head.find("\r\ncontent-length:");
        if (cl == std::string::npos)
          return fail(endpoint(to, port) + " answered without a Content-Length: the end of its body is "
                      "unknown on a kept connection");
        want = head_end + 4 + std::strtoul(head.c_str() + cl + 17, nullptr, 10);
      }
  }
  auto head_end = resp.find("\r\n\r\n");
  if (resp.rfind("HTTP/1.", 0) != 0 || head_end == std::string::npos)
    return fail("no HTTP reply from " + endpoint(to, port));
  auto status_line = resp.substr(0, resp.find("\r\n"));
  if (status_line.find(" 200") == std::string::npos)
    return fail(endpoint(to, port) + " answered " + status_line);
  std::string body = resp.substr(head_end + 4);
  while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
  return body;
}

}  // namespace

Result<std::string> http_get(const IpAddr& to, uint16_t port, const std::string& path,
                             Millis timeout, const HttpGetOptions& o) {
  const auto end = Clock::now() + timeout;
  TRY_ASSIGN(Fd fd, connect_to(to, port, timeout, o.source, o.source_port));
  TRY_ASSIGN(std::string body, http_request(fd.get(), to, port, path, end, o.keep_alive));
  if (o.keep) *o.keep = std::move(fd);
  return body;
}

Result<std::string> http_get_kept(const Fd& conn, const IpAddr& to, uint16_t port,
                                  const std::string& path, Millis timeout) {
  return http_request(conn.get(), to, port, path, Clock::now() + timeout, /*keep_alive=*/true);
}

Result<std::string> tcp_banner(const IpAddr& to, uint16_t port, const std::string& want,
                               Millis timeout) {
  const auto end = Clock::now() + timeout;
  TRY_ASSIGN(Fd fd, connect_to(to, port, timeout));
  const std::string where = "banner from " + endpoint(to, port);
  std::string got;
  char buf[512];
  while (got.find('\n') == std::string::npos && got.size() < 4096 &&
         !(got.size() >= want.size() && got.rfind(want, 0) == 0 && !want.empty())) {
    if (Status st = wait_for(fd.get(), POLLIN, left_until(end)); !st) {
      if (!got.empty()) break;  // it spoke, just no line end: judge what came
      return tl::unexpected(std::move(st.error()).context(where + " (the server said nothing)"));
    }
    ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0) return fail_errno("read " + where, errno);
    if (n == 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  if (auto nl = got.find('\n'); nl != std::string::npos) got.resize(nl);
  while (!got.empty() && got.back() == '\r') got.pop_back();
  if (got.rfind(want, 0) != 0)
    return fail(endpoint(to, port) + " said " + shown(got) + ", not " + shown(want) + "...",
                got.empty() ? "the server closed without a word: is it server-speaks-first?" : "");
  return got;
}

Result<std::string> udp_exchange(const IpAddr& to, uint16_t port, const std::string& payload,
                                 Millis timeout) {
  const std::string where = "UDP to " + endpoint(to, port);
  Fd fd(::socket(to.family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return fail_errno("socket", errno);
  sockaddr_storage ss;
  socklen_t len = fill_sockaddr(to, port, ss);
  // Connected: the kernel then delivers only datagrams from exactly to:port, and reports an
  // ICMP port unreachable as ECONNREFUSED on the next receive.
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0)
    return fail_errno(where, errno);
  if (::send(fd.get(), payload.data(), payload.size(), 0) != static_cast<ssize_t>(payload.size()))
    return fail_errno(where, errno);
  if (Status st = wait_for(fd.get(), POLLIN, timeout); !st) {
    Error e = std::move(st.error()).context(where + ": no reply from that address");
    e.hint =
        "a reply from any other source address (a real server answering from its own "
        "address, not the VIP) counts as none";
    return tl::unexpected(std::move(e));
  }
  char buf[65536];
  ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
  if (n < 0)
    return fail_errno(where, errno,
                      errno == ECONNREFUSED ? "nothing listens on that UDP port" : "");
  return std::string(buf, static_cast<size_t>(n));
}

Status icmp_echo(const IpAddr& to, Millis timeout) {
  const bool v6 = to.v6();
  Fd fd(::socket(to.family, SOCK_RAW | SOCK_CLOEXEC, v6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP}));
  if (!fd) return fail_errno("open ICMP socket", errno, "ICMP probes need root");
  const uint16_t id = static_cast<uint16_t>(::getpid() ^ ::gettid());
  uint8_t pkt[16] = {};
  pkt[0] = v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO;
  std::memcpy(pkt + 4, &id, 2);
  pkt[7] = 1;  // sequence
  if (!v6) {   // the kernel computes ICMPv6 checksums itself
    uint16_t ck = icmp_checksum(pkt, sizeof pkt);
    std::memcpy(pkt + 2, &ck, 2);
  }
  sockaddr_storage ss;
  socklen_t len = fill_sockaddr(to, 0, ss);
  if (::sendto(fd.get(), pkt, sizeof pkt, 0, reinterpret_cast<sockaddr*>(&ss), len) < 0)
    return fail_errno("ping " + to.str(), errno);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return fail_errno("ping " + to.str() + ": no reply", ETIMEDOUT);
    TRY(wait_for(fd.get(), POLLIN, left));
    uint8_t in[1500];
    ssize_t n = ::recv(fd.get(), in, sizeof in, 0);
    if (n <= 0) continue;
    // IPv4 raw sockets deliver the IP header too; IPv6 ones do not.
    size_t off = v6 ? 0 : static_cast<size_t>((in[0] & 0x0f) * 4);
    if (static_cast<size_t>(n) < off + 8) continue;
    const uint8_t type = in[off];
    uint16_t rid;
    std::memcpy(&rid, in + off + 4, 2);
    if (type == (v6 ? ICMP6_ECHO_REPLY : ICMP_ECHOREPLY) && rid == id) return {};
  }
}

Result<std::vector<std::optional<double>>> icmp_echoes(const IpAddr& to, int count, Millis interval,
                                                       Millis wait, Clock::time_point end) {
  const bool v6 = to.v6();
  Fd fd(::socket(to.family, SOCK_RAW | SOCK_CLOEXEC, v6 ? int{IPPROTO_ICMPV6} : int{IPPROTO_ICMP}));
  if (!fd) return fail_errno("open ICMP socket", errno, "ICMP probes need root");
  const uint16_t id = static_cast<uint16_t>(::getpid() ^ ::gettid() ^ 0x5a5a);
  sockaddr_storage ss;
  const socklen_t len = fill_sockaddr(to, 0, ss);
  std::vector<Clock::time_point> sent;
  std::vector<std::optional<double>> rtt;
  auto send_next = [&]() -> Status {
    const auto seq = static_cast<uint16_t>(sent.size() + 1);
    uint8_t pkt[16] = {};
    pkt[0] = v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO;
    std::memcpy(pkt + 4, &id, 2);
    const uint16_t nseq = htons(seq);
    std::memcpy(pkt + 6, &nseq, 2);
    if (!v6) {  // the kernel computes ICMPv6 checksums itself
      const uint16_t ck = icmp_checksum(pkt, sizeof pkt);
      std::memcpy(pkt + 2, &ck, 2);
    }
    sent.push_back(Clock::now());
    rtt.emplace_back();
    if (::sendto(fd.get(), pkt, sizeof pkt, 0, reinterpret_cast<sockaddr*>(&ss), len) < 0 && errno != ENOBUFS &&
        errno != EHOSTUNREACH && errno != ENETUNREACH && errno != EAGAIN)
      return fail_errno("ping " + to.str(), errno);
    return {};
  };
  int answered = 0;
  for (;;) {
    const auto now = Clock::now();
    const bool more = static_cast<int>(sent.size()) < count && now < end;
    if (more && (sent.empty() || now >= sent.back() + interval)) {
      TRY(send_next());
      continue;
    }
    if (!more && (answered == static_cast<int>(sent.size()) || sent.empty())) break;
    const auto until = more ? sent.back() + interval : std::min(end, sent.back() + wait);
    if (now >= until) {
      if (!more) break;
      continue;
    }
    pollfd p{fd.get(), POLLIN, 0};
    const auto ms = std::chrono::duration_cast<Millis>(until - now).count() + 1;
    if (::poll(&p, 1, static_cast<int>(ms)) < 0 && errno != EINTR) return fail_errno("poll", errno);
    uint8_t in[1500];
    for (;;) {
      const ssize_t n = ::recv(fd.get(), in, sizeof in, MSG_DONTWAIT);
      if (n <= 0) break;
      const auto got = Clock::now();
      // IPv4 raw sockets deliver the IP header too; IPv6 ones do not.
      const size_t off = v6 ? 0 : static_cast<size_t>((in[0] & 0x0f) * 4);
      if (static_cast<size_t>(n) < off + 8 || in[off] != (v6 ? ICMP6_ECHO_REPLY : ICMP_ECHOREPLY)) continue;
      uint16_t rid, rseq;
      std::memcpy(&rid, in + off + 4, 2);
      std::memcpy(&rseq, in + off + 6, 2);
      const size_t i = static_cast<size_t>(ntohs(rseq)) - 1;
      if (rid != id || i >= sent.size() || rtt[i]) continue;  // not ours, or a duplicate
      rtt[i] = std::chrono::duration<double>(got - sent[i]).count();
      ++answered;
    }
  }
  return rtt;
}

Result<Download> http_download(const IpAddr& to, uint16_t port, const std::string& path, Clock::time_point stop) {
  const std::string where = endpoint(to, port);
  TRY_ASSIGN(Fd fd, connect_to(to, port, left_until(stop)));
  const std::string req = "GET " + path + " HTTP/1.0\r\nHost: " + to.str() + "\r\n\r\n";
  if (::send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size()))
    return fail_errno("send HTTP request to " + where, errno);
  Download d;
  std::string head;
  bool in_body = false;
  static thread_local char buf[1 << 16];
  for (;;) {
    if (Status st = wait_for(fd.get(), POLLIN, left_until(stop)); !st) {
      if (in_body) return d;  // cut at `stop`: what arrived counts
      return tl::unexpected(std::move(st.error()).context("HTTP reply from " + where));
    }
    const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
    if (n < 0) return fail_errno("read HTTP reply from " + where, errno);
    if (n == 0) break;
    if (in_body) {
      d.body_bytes += static_cast<uint64_t>(n);
      continue;
    }
    head.append(buf, static_cast<size_t>(n));
    const size_t end = head.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (head.size() > 16384) return fail("no HTTP reply head from " + where + " in its first 16 KiB");
      continue;
    }
    const std::string status_line = head.substr(0, head.find("\r\n"));
    if (head.rfind("HTTP/1.", 0) != 0) return fail("no HTTP reply from " + where);
    if (status_line.find(" 200") == std::string::npos) return fail(where + " answered " + status_line);
    in_body = true;
    d.body_bytes = head.size() - end - 4;
  }
  if (!in_body) return fail("no HTTP reply from " + where);
  d.whole = true;
  return d;
}

}  // namespace labctl
