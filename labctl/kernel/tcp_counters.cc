#include "labctl/kernel/tcp_counters.h"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <vector>

#include "labctl/base/fd.h"

namespace labctl {
namespace {

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') ++i;
    size_t k = line.find(' ', i);
    if (k == std::string_view::npos) k = line.size();
    if (k > i) out.push_back(line.substr(i, k - i));
    i = k;
  }
  return out;
}

}  // namespace

TcpCounters operator-(const TcpCounters& a, const TcpCounters& b) {
  auto d = [](uint64_t x, uint64_t y) { return x >= y ? x - y : 0; };
  return {d(a.active_opens, b.active_opens), d(a.passive_opens, b.passive_opens),
          d(a.attempt_fails, b.attempt_fails), d(a.estab_resets, b.estab_resets), a.curr_estab,
          d(a.out_rsts, b.out_rsts)};
}

Result<TcpCounters> parse_snmp_tcp(std::string_view snmp) {
  // Two lines start with "Tcp:": the names, then the values, in the same order.
  std::vector<std::string_view> names, values;
  size_t pos = 0;
  while (pos < snmp.size()) {
    size_t end = snmp.find('\n', pos);
    if (end == std::string_view::npos) end = snmp.size();
    std::string_view line = snmp.substr(pos, end - pos);
    pos = end + 1;
    if (line.substr(0, 4) != "Tcp:") continue;
    (names.empty() ? names : values) = words(line.substr(4));
    if (!values.empty()) break;
  }
  if (names.empty() || values.empty())
    return fail("/proc/net/snmp has no Tcp: lines", "is this a Linux /proc of a network namespace?");
  if (names.size() != values.size())
    return fail("/proc/net/snmp's Tcp: lines disagree: " + std::to_string(names.size()) + " names, " +
                std::to_string(values.size()) + " values");
  TcpCounters c;
  const std::pair<std::string_view, uint64_t*> wanted[] = {
      {"ActiveOpens", &c.active_opens}, {"PassiveOpens", &c.passive_opens},
      {"AttemptFails", &c.attempt_fails}, {"EstabResets", &c.estab_resets},
      {"CurrEstab", &c.curr_estab},      {"OutRsts", &c.out_rsts}};
  for (const auto& [name, field] : wanted) {
    bool found = false;
    for (size_t i = 0; i < names.size() && !found; ++i) {
      if (names[i] != name) continue;
      found = true;
      const auto v = values[i];
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), *field);
      if (ec != std::errc{} || p != v.data() + v.size())
        return fail("/proc/net/snmp: Tcp " + std::string(name) + " is '" + std::string(v) + "', not a count");
    }
    if (!found) return fail("/proc/net/snmp has no Tcp " + std::string(name) + " counter");
  }
  return c;
}

Result<TcpCounters> tcp_counters_here() {
  const char* path = "/proc/thread-self/net/snmp";
  Fd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) return fail_errno(std::string("open ") + path, errno);
  std::string text;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  if (n < 0) return fail_errno(std::string("read ") + path, errno);
  return parse_snmp_tcp(text);
}

TcpCensus census(const std::vector<TcpSocket>& sockets) {
  TcpCensus c;
  for (const auto& s : sockets) {
    if (s.state == TCP_LISTEN) {
      ++c.listening;
      continue;
    }
    ++c.connected;
    ++c.by_state[tcp_state_name(s.state)];
  }
  return c;
}

Result<TcpCensus> tcp_census_here() {
  TRY_ASSIGN(auto sockets, tcp_sockets_here());
  return census(sockets);
}

}  // namespace labctl
