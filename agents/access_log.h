// The http agent's access log: one line per request, "CLIENT \"METHOD PATH\" STATUS\n",
// e.g. `10.0.0.10:40312 "GET /" 200` (IPv6 clients in brackets, v4-mapped shown as IPv4,
// "-" for a request that never arrived whole and got no answer). Formatted into a caller's
// buffer, without allocating, so the server loop stays cheap: one write(2) per line.
#pragma once

#include <netinet/in.h>

#include <cstddef>
#include <string_view>

namespace labagent {

/// Room for any line format_access_line writes (the request shown is bounded).
inline constexpr std::size_t kAccessLineMax = 256;

/// The request line's method and target ("GET /x" of "GET /x HTTP/1.1"), bytes outside
/// printable ASCII and '"' shown as '?', cut at 160 bytes. Writes the line into out (at least
/// kAccessLineMax bytes) and returns its length. status 0: no answer was sent ("-").
std::size_t format_access_line(char* out, const sockaddr_in6& client, std::string_view request_line,
                               int status);

}  // namespace labagent
