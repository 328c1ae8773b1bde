#include "agents/access_log.h"

#include <arpa/inet.h>

#include <cstdio>
#include <cstring>

namespace labagent {

std::size_t format_access_line(char* out, const sockaddr_in6& client, std::string_view request_line,
                               int status) {
  char addr[INET6_ADDRSTRLEN] = "?";
  const bool v4 = IN6_IS_ADDR_V4MAPPED(&client.sin6_addr);
  if (v4)
    ::inet_ntop(AF_INET, &client.sin6_addr.s6_addr[12], addr, sizeof addr);
  else
    ::inet_ntop(AF_INET6, &client.sin6_addr, addr, sizeof addr);
  // "GET /path HTTP/1.1" -> "GET /path": the protocol says nothing the status does not.
  std::string_view req = request_line;
  if (auto sp = req.rfind(' ');
      sp != std::string_view::npos && req.substr(sp + 1).starts_with("HTTP/"))
    req = req.substr(0, sp);
  if (req.size() > 160) req = req.substr(0, 160);
  char shown[161];
  for (std::size_t i = 0; i < req.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(req[i]);
    shown[i] = c < 0x20 || c >= 0x7f || c == '"' ? '?' : static_cast<char>(c);
  }
  if (req.empty()) shown[0] = '-';
  const int len = static_cast<int>(req.empty() ? 1 : req.size());
  char st[12] = "-";
  if (status > 0) std::snprintf(st, sizeof st, "%d", status);
  const int n =
      std::snprintf(out, kAccessLineMax, v4 ? "%s:%u \"%.*s\" %s\n" : "[%s]:%u \"%.*s\" %s\n", addr,
                    ntohs(client.sin6_port), len, shown, st);
  return n < 0 ? 0 : std::min<std::size_t>(static_cast<std::size_t>(n), kAccessLineMax - 1);
}

}  // namespace labagent
