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

// The match part of a mark or nat rule: the fields they share, in one order.
template <class Rule>
std::vector<std::string> matches(const Rule& m, const std::string& oif = "") {
  std::vector<std::string> w;
  // Interface names are quoted: nft would take a bare word that names a symbol otherwise.
  if (!m.iif.empty()) w.push_back(fmt::format("iifname \"{}\"", m.iif));
  if (!oif.empty()) w.push_back(fmt::format("oifname \"{}\"", oif));
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
  return w;
}

}  // namespace

std::string nft_rule(const MarkRule& m) {
  std::vector<std::string> w = matches(m);
  w.push_back(fmt::format("meta mark set {}", m.mark));
  return fmt::format("{}", fmt::join(w, " "));
}

namespace {

std::string table(const std::string& chains) {
  return fmt::format("table inet {} {{\n{}}}\n", kNftTable, chains);
}

std::string chain(const char* name, const char* type, const std::vector<std::string>& rules) {
  if (rules.empty()) return "";
  std::string out = fmt::format("  chain {} {{\n    {}; policy accept;\n", name, type);
  for (const auto& r : rules) out += "    " + r + "\n";
  return out + "  }\n";
}

std::string mark_chain(const Node& n) {
  std::vector<std::string> rules;
  for (const auto& m : n.marks) rules.push_back(nft_rule(m));
  return chain("prerouting", "type filter hook prerouting priority mangle", rules);
}

}  // namespace

std::string nft_mark_ruleset(const Node& n) { return n.marks.empty() ? "" : table(mark_chain(n)); }

std::string nft_nat_rule(const NatRule& r) {
  std::vector<std::string> w = matches(r, r.oif);
  // In an inet table nft needs the family of an address it writes (`dnat ip to ...`).
  auto target = [&] {
    if (!r.to) return fmt::format(":{}", r.to_port);
    const char* fam = r.to->v4() ? "ip" : "ip6";
    if (!r.to_port) return fmt::format("{} to {}", fam, r.to->str());
    if (r.to->v4()) return fmt::format("{} to {}:{}", fam, r.to->str(), r.to_port);
    return fmt::format("{} to [{}]:{}", fam, r.to->str(), r.to_port);
  };
  switch (r.type) {
    case NatType::Masquerade:
      w.push_back("masquerade");
      break;
    case NatType::Snat:
      w.push_back("snat " + target());
      break;
    case NatType::Dnat:
      w.push_back("dnat " + target());
      break;
    case NatType::Redirect:
      w.push_back(r.to_port ? "redirect to " + target() : "redirect");
      break;
  }
  return fmt::format("{}", fmt::join(w, " "));
}

std::string nft_ruleset(const Node& n) {
  if (n.marks.empty() && n.nat.empty()) return "";
  std::vector<std::string> pre, post;
  for (const auto& r : n.nat) (r.source_nat() ? post : pre).push_back(nft_nat_rule(r));
  return table(mark_chain(n) +
               chain("nat_prerouting", "type nat hook prerouting priority dstnat", pre) +
               chain("nat_postrouting", "type nat hook postrouting priority srcnat", post));
}

}  // namespace labctl
