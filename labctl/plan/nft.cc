#include "labctl/plan/nft.h"

#include <fmt/format.h>

namespace labctl {
namespace {

std::string port_set(const std::vector<uint16_t>& ports) {
  if (ports.size() == 1) return std::to_string(ports[0]);
  return fmt::format("{{ {} }}", fmt::join(ports, ", "));
}

// A host prefix is written as the bare address, as nft lists it back.
std::string prefix_text(const IpPrefix& p) {
  return p.len == p.addr.max_prefix() ? p.addr.str() : p.network().str();
}

}  // namespace

std::string nft_rule(const MarkRule& m) {
  std::vector<std::string> w;
  // Interface names are quoted: nft would take a bare word that names a symbol otherwise.
  if (!m.iif.empty()) w.push_back(fmt::format("iifname \"{}\"", m.iif));
  if (m.src)
    w.push_back(fmt::format("{} saddr {}", m.src->addr.v4() ? "ip" : "ip6", prefix_text(*m.src)));
  if (m.dst)
    w.push_back(fmt::format("{} daddr {}", m.dst->addr.v4() ? "ip" : "ip6", prefix_text(*m.dst)));
  if (m.proto) {
    const char* p = to_string(*m.proto);
    // A port match implies its protocol; without ports the protocol is matched alone.
    if (m.sport.empty() && m.dport.empty()) w.push_back(fmt::format("meta l4proto {}", p));
    if (!m.sport.empty()) w.push_back(fmt::format("{} sport {}", p, port_set(m.sport)));
    if (!m.dport.empty()) w.push_back(fmt::format("{} dport {}", p, port_set(m.dport)));
  }
  w.push_back(fmt::format("meta mark set {}", m.mark));
  return fmt::format("{}", fmt::join(w, " "));
}

std::string nft_mark_ruleset(const Node& n) {
  if (n.marks.empty()) return "";
  std::string out = fmt::format("table inet {} {{\n", kNftTable);
  out += "  chain prerouting {\n";
  out += "    type filter hook prerouting priority mangle; policy accept;\n";
  for (const auto& m : n.marks) out += "    " + nft_rule(m) + "\n";
  out += "  }\n}\n";
  return out;
}

}  // namespace labctl
