// Network probes used by checks and trace, run from whatever namespace the calling thread is in:
// TCP connect, a minimal HTTP GET, a banner read, a UDP exchange and an ICMP echo. Every one
// is bounded by its timeout as a whole (not per read), so a check can hand a probe exactly
// what is left of its own deadline.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "labctl/base/error.h"
#include "labctl/base/fd.h"
#include "labctl/model/ip.h"

namespace labctl {

using Millis = std::chrono::milliseconds;

[[nodiscard]] Status tcp_connect(const IpAddr& to, uint16_t port, Millis timeout);
/// The response body of `GET path` (trailing newlines removed); an error unless HTTP 200.
[[nodiscard]] Result<std::string> http_get(const IpAddr& to, uint16_t port, const std::string& path,
                                           Millis timeout);
/// How http_get connects, for checks that need several client addresses or open connections.
struct HttpGetOptions {
  /// Bind to this local address first: one node stands in for several clients (sh, dh and
  /// persistence hash or remember the source address).
  std::optional<IpAddr> source;
  /// Bind to this local port first (0: the kernel picks one): a flow a check can find
  /// again by its ports, in a router's conntrack table (SO_REUSEADDR).
  uint16_t source_port = 0;
  /// When set, receives the connection after the answer, still open on this side: the
  /// director keeps counting it as an active connection (DR, TUN) until it is closed.
  Fd* keep = nullptr;
  /// Ask the server to keep the connection open (HTTP/1.1, Connection: keep-alive) and read
  /// exactly one answer (its Content-Length), so that `keep` can carry more requests
  /// (http_get_kept).
  bool keep_alive = false;
};
[[nodiscard]] Result<std::string> http_get(const IpAddr& to, uint16_t port, const std::string& path,
                                           Millis timeout, const HttpGetOptions& o);
/// One more request on a connection kept by http_get (keep_alive and keep): its body, or an
/// error when the connection was reset, closed or is silent (`to` and `port` name it).
[[nodiscard]] Result<std::string> http_get_kept(const Fd& conn, const IpAddr& to, uint16_t port,
                                                const std::string& path, Millis timeout);
/// Connects and reads what a server-speaks-first service (SSH, SMTP, FTP) says, until it
/// starts with `want`, a line ends, the peer closes, or time runs out; an error unless what
/// was read starts with `want`. Returns the first line read.
[[nodiscard]] Result<std::string> tcp_banner(const IpAddr& to, uint16_t port,
                                             const std::string& want, Millis timeout);
/// Sends `payload` in one datagram from a connected UDP socket and returns the first reply.
/// Connected: a reply from any other address or port (a DR real server answering from its
/// own address instead of the VIP) never arrives, and an ICMP port unreachable fails it.
[[nodiscard]] Result<std::string> udp_exchange(const IpAddr& to, uint16_t port,
                                               const std::string& payload, Millis timeout);
/// One ICMP (or ICMPv6) echo request and its reply.
[[nodiscard]] Status icmp_echo(const IpAddr& to, Millis timeout);
/// `count` echo requests, one every `interval` as `ping -i` sends them (not waiting for
/// answers), then up to `wait` for the last answers; never past `end`, where it stops
/// sending. Each sent echo's round trip in seconds, in the order sent; nullopt for one
/// that got no answer. Fewer than `count` when `end` came first.
[[nodiscard]] Result<std::vector<std::optional<double>>> icmp_echoes(
    const IpAddr& to, int count, Millis interval, Millis wait, std::chrono::steady_clock::time_point end);

/// What http_download read.
struct Download {
  uint64_t body_bytes = 0;  ///< Of the response body (not the head).
  bool whole = false;       ///< The server closed the connection: the body is all there.
};
/// GETs `path` over HTTP/1.0 and reads the reply, counting the body's bytes without keeping
/// them, until the server closes or `stop` comes (then it is cut, not failed). An error
/// when no connection, no reply head or a status other than 200 arrives before `stop`.
[[nodiscard]] Result<Download> http_download(const IpAddr& to, uint16_t port, const std::string& path,
                                             std::chrono::steady_clock::time_point stop);

}  // namespace labctl
