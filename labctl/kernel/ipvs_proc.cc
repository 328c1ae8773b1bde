#include "labctl/kernel/ipvs_proc.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <sstream>

#include "labctl/base/file.h"

namespace labctl::ipvs {

namespace {

// An address as /proc/net/ip_vs_conn prints it: IPv4 as 8 hex digits of the host-order
// value, IPv6 as %pI6 (eight groups of four hex digits).
std::optional<IpAddr> proc_addr(const std::string& text) {
  if (text.size() == 8 && text.find(':') == std::string::npos) {
    unsigned long v = 0;
    try {
      size_t used = 0;
      v = std::stoul(text, &used, 16);
      if (used != text.size()) return std::nullopt;
    } catch (...) {
      return std::nullopt;
    }
    IpAddr a;
    a.family = AF_INET;
    const uint32_t be = htonl(static_cast<uint32_t>(v));
    std::memcpy(a.bytes.data(), &be, 4);
    return a;
  }
  in6_addr six{};
  if (::inet_pton(AF_INET6, text.c_str(), &six) != 1) return std::nullopt;
  IpAddr a;
  a.family = AF_INET6;
  std::memcpy(a.bytes.data(), &six, 16);
  return a;
}

std::optional<uint16_t> proc_port(const std::string& text) {
  if (text.empty() || text.size() > 4) return std::nullopt;
  try {
    size_t used = 0;
    const unsigned long v = std::stoul(text, &used, 16);
    if (used != text.size()) return std::nullopt;
    return static_cast<uint16_t>(v);
  } catch (...) {
    return std::nullopt;
  }
}

// A connection table of a million entries is about 120 MiB of text.
constexpr size_t kMaxProcBytes = size_t{256} << 20;

Result<std::string> read_proc(const std::string& path) {
  auto text = read_regular_file(path, kMaxProcBytes);
  if (!text && text.error().errnum != 0)
    text.error().hint = "is the ip_vs module loaded in this kernel?";
  return text;
}

}  // namespace

Result<std::vector<IpvsConn>> parse_conn_table(const std::string& text) {
  std::vector<IpvsConn> out;
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    std::istringstream f(line);
    std::string proto, c, cp, v, vp, d, dp, state;
    if (!(f >> proto)) continue;
    if (proto == "Pro") continue;  // the header
    IpvsConn e;
    e.protocol = proto;
    if (!(f >> c >> cp >> v >> vp >> d >> dp >> state >> e.expires))
      return fail("ip_vs_conn line " + std::to_string(n) + " is not as expected: " + line);
    auto ca = proc_addr(c), va = proc_addr(v), da = proc_addr(d);
    auto cpn = proc_port(cp), vpn = proc_port(vp), dpn = proc_port(dp);
    if (!ca || !va || !da || !cpn || !vpn || !dpn)
      return fail("ip_vs_conn line " + std::to_string(n) + " has a bad address or port: " + line);
    e.client = *ca, e.vip = *va, e.dest = *da;
    e.client_port = *cpn, e.vport = *vpn, e.dport = *dpn;
    e.state = state;
    f >> e.pe_name >> e.pe_data;
    out.push_back(std::move(e));
  }
  return out;
}

Result<IpvsTotals> parse_stats_percpu(const std::string& text) {
  IpvsTotals t;
  std::istringstream in(text);
  std::string line;
  bool rows = false, estimator = false, rates_next = false;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string first;
    if (!(f >> first)) continue;
    if (first == "CPU") {
      rows = true;
      continue;
    }
    if (first == "Conns/s") {
      rates_next = true;
      continue;
    }
    if (rates_next) {
      std::istringstream r(line);
      if (!(r >> std::hex >> t.rates.cps >> t.rates.inpps >> t.rates.outpps >> t.rates.inbps >>
            t.rates.outbps))
        return fail("unexpected rate line in ip_vs_stats_percpu: " + line);
      return t;
    }
    if (!rows || estimator) continue;
    if (first == "~") {  // the estimator's copy of the sums: the per-cpu rows are the truth
      estimator = true;
      continue;
    }
    uint64_t conns = 0, inpkts = 0, outpkts = 0, inbytes = 0, outbytes = 0;
    if (!(f >> std::hex >> conns >> inpkts >> outpkts >> inbytes >> outbytes))
      return fail("unexpected line in ip_vs_stats_percpu: " + line);
    t.exact.conns += conns;
    t.exact.inpkts += inpkts;
    t.exact.outpkts += outpkts;
    t.exact.inbytes += inbytes;
    t.exact.outbytes += outbytes;
    ++t.cpus;
  }
  if (!rows || t.cpus == 0) return fail("ip_vs_stats_percpu has no CPU rows");
  return t;
}

Result<std::vector<IpvsConn>> read_conn_table() {
  TRY_ASSIGN(std::string text, read_proc("/proc/thread-self/net/ip_vs_conn"));
  return parse_conn_table(text);
}

Result<IpvsTotals> read_totals() {
  TRY_ASSIGN(std::string text, read_proc("/proc/thread-self/net/ip_vs_stats_percpu"));
  return parse_stats_percpu(text);
}

}  // namespace labctl::ipvs
