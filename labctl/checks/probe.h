// Network probes used by checks, run from whatever namespace the calling thread is in:
// TCP connect, a minimal HTTP GET, and an ICMP echo. Every one is bounded by a timeout.
#pragma once

#include <chrono>
#include <string>

#include "labctl/base/error.h"
#include "labctl/model/ip.h"

namespace labctl {

using Millis = std::chrono::milliseconds;

[[nodiscard]] Status tcp_connect(const IpAddr& to, uint16_t port, Millis timeout);
/// The response body of `GET path` (trailing newlines removed); an error unless HTTP 200.
[[nodiscard]] Result<std::string> http_get(const IpAddr& to, uint16_t port,
                                           const std::string& path, Millis timeout);
/// One ICMP (or ICMPv6) echo request and its reply.
[[nodiscard]] Status icmp_echo(const IpAddr& to, Millis timeout);

}  // namespace labctl
