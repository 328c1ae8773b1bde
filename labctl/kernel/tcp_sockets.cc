#include "labctl/kernel/tcp_sockets.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "labctl/base/fd.h"

namespace labctl {
namespace {

int hex_digit(char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

// "0100A8C0:0050": the address as the kernel's 32-bit words printed in host order, then
// the port; false when malformed.
bool parse_endpoint(std::string_view s, int family, IpAddr& ip, uint16_t& port) {
  const size_t colon = s.find(':');
  const size_t words = family == AF_INET ? 1 : 4;
  if (colon != words * 8 || s.size() != colon + 5) return false;
  ip.family = family;
  for (size_t w = 0; w < words; ++w) {
    uint32_t v = 0;
    for (size_t i = 0; i < 8; ++i) {
      const int d = hex_digit(s[w * 8 + i]);
      if (d < 0) return false;
      v = v << 4 | static_cast<uint32_t>(d);
    }
    std::memcpy(ip.bytes.data() + w * 4, &v, 4);  // host order, as the kernel printed it
  }
  uint32_t p = 0;
  for (size_t i = colon + 1; i < s.size(); ++i) {
    const int d = hex_digit(s[i]);
    if (d < 0) return false;
    p = p << 4 | static_cast<uint32_t>(d);
  }
  port = static_cast<uint16_t>(p);
  if (ip.v4_mapped()) {
    IpAddr v4;
    v4.family = AF_INET;
    std::memcpy(v4.bytes.data(), ip.bytes.data() + 12, 4);
    ip = v4;
  }
  return true;
}

}  // namespace

std::vector<std::array<std::string_view, 4>> proc_net_rows(std::string_view table) {
  std::vector<std::array<std::string_view, 4>> rows;
  size_t pos = table.find('\n');  // past the header line
  while (pos != std::string_view::npos && pos + 1 < table.size()) {
    const size_t end = table.find('\n', pos + 1);
    std::string_view line = table.substr(pos + 1, end == std::string_view::npos ? end : end - pos - 1);
    pos = end;
    std::array<std::string_view, 4> f;
    size_t i = 0, n = 0;
    while (n < 4 && i < line.size()) {
      while (i < line.size() && line[i] == ' ') ++i;
      size_t k = line.find(' ', i);
      if (k == std::string_view::npos) k = line.size();
      if (k > i) f[n++] = line.substr(i, k - i);
      i = k;
    }
    if (n == 4) rows.push_back(f);
  }
  return rows;
}

std::vector<TcpSocket> parse_proc_net_tcp(std::string_view table, int family) {
  std::vector<TcpSocket> out;
  for (const auto& f : proc_net_rows(table)) {
    if (f[3].size() != 2) continue;
    TcpSocket s;
    if (!parse_endpoint(f[1], family, s.local, s.local_port) || !parse_endpoint(f[2], family, s.remote, s.remote_port))
      continue;
    s.state = static_cast<int>(std::strtol(std::string(f[3]).c_str(), nullptr, 16));
    out.push_back(s);
  }
  return out;
}

std::string tcp_state_name(int state) {
  static const char* const names[] = {"?",          "ESTABLISHED", "SYN_SENT", "SYN_RECV",  "FIN_WAIT1", "FIN_WAIT2",
                                      "TIME_WAIT",  "CLOSE",       "CLOSE_WAIT", "LAST_ACK", "LISTEN",    "CLOSING"};
  return state > 0 && state < static_cast<int>(std::size(names)) ? names[state] : "state " + std::to_string(state);
}

Result<std::vector<TcpSocket>> tcp_sockets_here() {
  std::vector<TcpSocket> out;
  for (auto [path, family] : {std::pair{"/proc/thread-self/net/tcp", AF_INET}, std::pair{"/proc/thread-self/net/tcp6", AF_INET6}}) {
    Fd fd(::open(path, O_RDONLY | O_CLOEXEC));
    if (!fd) {
      if (errno == ENOENT && family == AF_INET6) continue;  // a kernel without IPv6
      return fail_errno(std::string("open ") + path, errno);
    }
    std::string text;
    char buf[8192];
    ssize_t n;
    while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
    if (n < 0) return fail_errno(std::string("read ") + path, errno);
    auto socks = parse_proc_net_tcp(text, family);
    out.insert(out.end(), socks.begin(), socks.end());
  }
  return out;
}

}  // namespace labctl
