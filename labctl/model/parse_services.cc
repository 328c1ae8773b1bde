// Phase one, LVS: virtual services and their real servers, and a node's packet rules (marks,
// nat) that services and checks lean on.
#include <arpa/inet.h>

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "labctl/base/display.h"
#include "labctl/model/diag.h"
#include "labctl/model/parser.h"
#include "labctl/model/rules.h"

namespace labctl::topo {

std::optional<FwdMethod> Parser::method(const toml::table& t, const std::string& where, Pos tpos) {
  auto m = str(t, "method", where, tpos);
  if (!m) return std::nullopt;
  if (auto fm = parse_method(*m)) return fm;
  std::string hint =
      did_you_mean(*m, {"nat", "dr", "tun", "local"}, "one of nat (-m), dr (-g), tun (-i), local (the director itself)");
  if (*m == "masq" || *m == "masquerading") hint = "did you mean 'nat'? (ipvsadm -m)";
  if (*m == "gatewaying" || *m == "direct") hint = "did you mean 'dr'? (ipvsadm -g)";
  if (*m == "ipip" || *m == "tunnel") hint = "did you mean 'tun'? (ipvsadm -i)";
  r_.error(pos_at(t, "method", tpos), fmt::format("unknown forwarding method {} in {}", shown(*m), where), hint);
  return std::nullopt;
}

VirtualService Parser::parse_service(const std::string& node, const Entry& e) {
  VirtualService s;
  s.name = e.name;
  s.pos = e.key_pos;
  name_ok(s.name, e.key_pos, "service");
  std::string where = "service " + plain(s.name);
  const toml::table* t = table_of(*e.value, where, e.key_pos);
  if (!t) return s;
  Pos tp = pos_or(*t, e.key_pos);
  s.keys = key_positions(*t);
  (void)node;
  unknown_keys(*t, {"proto", "vip", "port", "fwmark", "family", "scheduler", "persistence",
                    "netmask", "sched_flags", "one_packet", "method", "real_servers"},
               where, tp);
  if (t->get("fwmark")) {
    s.fwmark = static_cast<uint32_t>(integer(*t, "fwmark", where, tp, 1, UINT32_MAX).value_or(0));
    for (const char* k : {"vip", "port", "proto"})
      if (t->get(k))
        r_.error(pos_at(*t, k, tp), fmt::format("{} is a fwmark service and cannot have '{}'", where, k),
                 "a fwmark service matches packets by firewall mark; the mark rules pick address and port");
    auto fam = str(*t, "family", where, tp).value_or("ipv4");
    if (fam == "ipv4")
      s.vip = *IpAddr::parse("0.0.0.0");
    else if (fam == "ipv6")
      s.vip = *IpAddr::parse("::");
    else
      r_.error(pos_at(*t, "family", tp), fmt::format("family of {} must be \"ipv4\" or \"ipv6\"", where));
  } else {
    if (t->get("family"))
      r_.error(pos_at(*t, "family", tp), fmt::format("'family' in {} applies only to fwmark services", where),
               "the VIP's address decides the family");
    if (auto vip = address(*t, "vip", where, tp, true)) {
      s.vip = *vip;
      // IPVS would take 0.0.0.0 as a service address, but no packet is ever sent to it:
      // the service could never be reached. A fwmark service is the way to match any.
      if (vip->unspecified())
        r_.error(pos_at(*t, "vip", tp),
                 fmt::format("vip {} of {} is the unspecified address: no client can connect to it", vip->str(),
                             where),
                 "give the service's address, or use fwmark = <mark> to match packets by firewall mark");
    }
    // Port 0 is IPVS's "any port" service; the rule that it needs persistence is checked
    // below, once persistence is read.
    s.port = static_cast<uint16_t>(integer(*t, "port", where, tp, 0, 65535, true).value_or(0));
    auto proto = str(*t, "proto", where, tp).value_or("tcp");
    if (auto p = parse_proto(proto))
      s.proto = *p;
    else
      r_.error(pos_at(*t, "proto", tp),
               fmt::format("proto of {} must be \"tcp\", \"udp\" or \"sctp\", not {}", where, shown(proto)),
               did_you_mean(proto, {"tcp", "udp", "sctp"}, "for other protocols use a fwmark service"));
  }
  if (auto sched = str(*t, "scheduler", where, tp)) {
    if (is_scheduler(*sched))
      s.scheduler = *sched;
    else
      r_.error(pos_at(*t, "scheduler", tp), fmt::format("unknown scheduler {} in {}", shown(*sched), where),
               did_you_mean(*sched, schedulers(), fmt::format("known: {}", fmt::join(schedulers(), ", "))));
  } else {
    s.scheduler = "wlc";  // ipvsadm's default
  }
  s.persistence =
      static_cast<uint32_t>(integer(*t, "persistence", where, tp, 0, kMaxPersistence).value_or(0));
  service_options(s, *t, where, tp);
  FwdMethod default_method = method(*t, where, tp).value_or(FwdMethod::Dr);
  if (const auto* rs = t->get("real_servers")) {
    const auto* arr = rs->as_array();
    if (!arr) {
      r_.error(pos_or(*rs, tp), fmt::format("real_servers of {} must be a list of tables", where),
               "e.g. real_servers = [{ node = \"rs1\" }, { address = \"10.0.0.12\" }]");
    } else {
      for (std::size_t idx = 0; idx < arr->size(); ++idx) {
        std::string rwhere = fmt::format("real server {} of {}", idx + 1, where);
        if (const auto* rt = table_of((*arr)[idx], rwhere, pos_or(*rs, tp)))
          s.real_servers.push_back(
              parse_real_server(rwhere, *rt, pos_or(*rt, pos_or(*rs, tp)), default_method));
      }
    }
  }
  return s;
}

void Parser::service_options(VirtualService& s, const toml::table& t, const std::string& where, Pos tp) {
  // The kernel schedules a non-persistent port-0 service never: ip_vs_schedule() drops each
  // packet ("port zero only supported in persistent services"), and ipvsadm refuses it.
  const toml::node* port = t.get("port");
  if (!s.fwmark && port && port->value<int64_t>() == int64_t{0} && s.persistence == 0)
    r_.error(pos_at(t, "port", tp),
             fmt::format("port 0 (any port) of {} needs persistence", where),
             "IPVS schedules a port-0 service only by persistence templates; add persistence = "
             "<seconds>, e.g. 300, or give the port");
  if (const toml::node* nm = t.get("netmask")) {
    Pos p = pos_or(*nm, tp);
    const int max = s.vip.v6() ? 128 : 32;
    std::optional<int> len;
    if (const auto* i = nm->as_integer()) {
      if (i->get() < 0 || i->get() > max)
        r_.error(p, fmt::format("netmask of {} is {}, out of range 0..{} (a prefix length)", where, i->get(), max));
      else
        len = static_cast<int>(i->get());
    } else if (const auto* str_v = nm->as_string()) {
      // ipvsadm's own spelling for IPv4 (-M 255.255.255.0); it must be a contiguous mask.
      auto mask = IpAddr::parse(str_v->get());
      int bits = 0;
      bool contiguous = mask && mask->v4() && s.vip.v4();
      if (contiguous) {
        uint32_t m = ntohl(mask->v4_be());
        while (bits < 32 && (m & (0x80000000u >> bits))) ++bits;
        contiguous = bits == 32 || (m << bits) == 0;
      }
      if (contiguous)
        len = bits;
      else
        r_.error(p, fmt::format("netmask {} of {} is not a contiguous IPv4 mask", shown(str_v->get()), where),
                 s.vip.v6() ? "an IPv6 service takes a prefix length, e.g. netmask = 64"
                            : "give a prefix length (netmask = 24) or a mask like \"255.255.255.0\"");
    } else {
      r_.error(p, fmt::format("netmask of {} must be a prefix length or an IPv4 mask, not {}", where, type_name(*nm)));
    }
    if (len && s.persistence == 0)
      r_.error(p, fmt::format("netmask of {} applies only to a persistent service", where),
               "the netmask says which clients share a persistence template; add persistence = <seconds>");
    else
      s.netmask = len;
  }
  for (auto& [name, p] : strings(t, "sched_flags", where, tp)) {
    const SchedFlag* f = find_sched_flag(name);
    if (!f) {
      std::vector<std::string> names;
      for (const auto& x : sched_flags()) names.push_back(x.name);
      r_.error(p, fmt::format("unknown scheduler flag {} in {}", shown(name), where),
               did_you_mean(name, names, fmt::format("known: {}", fmt::join(names, ", "))));
      continue;
    }
    // The flag bits are private to a scheduler: sh-port on rr would be SCHED2 that rr
    // ignores (ipvsadm refuses it as "incompatible scheduler flag").
    if (f->scheduler != s.scheduler) {
      r_.error(p, fmt::format("scheduler flag {} of {} is for scheduler {}, and the service uses {}", name, where,
                              f->scheduler, s.scheduler),
               fmt::format("set scheduler = \"{}\", or drop the flag", f->scheduler));
      continue;
    }
    if (std::find(s.sched_flags.begin(), s.sched_flags.end(), name) != s.sched_flags.end()) {
      r_.error(p, fmt::format("scheduler flag {} of {} is given twice", name, where));
      continue;
    }
    s.sched_flags.push_back(name);
  }
  if (auto op = boolean(t, "one_packet", where, tp)) {
    // ip_vs_onepacket_enabled() applies it to UDP only; a fwmark service may carry UDP.
    if (*op && !s.fwmark && s.proto != Proto::Udp)
      r_.error(pos_at(t, "one_packet", tp),
               fmt::format("one_packet of {} needs a UDP service, and this one is {}", where, to_string(s.proto)),
               "one-packet scheduling sends each UDP datagram to a server of its own; it has no "
               "meaning for connections (ipvsadm: \"only for UDP virtual services\")");
    else
      s.one_packet = *op;
  }
}

std::vector<uint16_t> Parser::ports(const toml::table& t, std::string_view key, const std::string& where,
                                    Pos tpos) {
  std::vector<uint16_t> out;
  const toml::node* n = t.get(key);
  if (!n) return out;
  Pos p = pos_or(*n, tpos);
  std::vector<const toml::node*> items;
  if (const auto* a = n->as_array()) {
    for (const auto& el : *a) items.push_back(&el);
    if (a->empty()) r_.error(p, fmt::format("'{}' of {} is an empty list", key, where), "leave it out to match any port");
  } else {
    items.push_back(n);
  }
  if (items.size() > kMaxMarkPorts) {
    r_.error(p, fmt::format("'{}' of {} lists {} ports, more than {}", key, where, items.size(), kMaxMarkPorts),
             "split the rule, or mark by address");
    return out;
  }
  for (const auto* el : items) {
    const auto* i = el->as_integer();
    if (!i || i->get() < 1 || i->get() > 65535) {
      r_.error(pos_or(*el, p), fmt::format("'{}' of {} must be a port 1..65535 or a list of them", key, where));
      continue;
    }
    auto port = static_cast<uint16_t>(i->get());
    if (std::find(out.begin(), out.end(), port) != out.end())
      r_.error(pos_or(*el, p), fmt::format("'{}' of {} lists port {} twice", key, where, port));
    else
      out.push_back(port);
  }
  return out;
}

std::optional<IpPrefix> Parser::match_prefix(const toml::table& t, std::string_view key, const std::string& where,
                                             Pos tpos) {
  auto text = str(t, key, where, tpos);
  if (!text) return std::nullopt;
  Pos p = pos_at(t, key, tpos);
  auto pfx = IpPrefix::parse(*text, /*allow_bare=*/true);
  if (!pfx) {
    r_.error(p, fmt::format("'{}' of {} is not an address or prefix: {}", key, where, shown(*text)),
             "e.g. \"10.0.0.100\" or \"10.0.0.0/24\"");
    return std::nullopt;
  }
  if (pfx->network() != *pfx) {
    r_.error(p, fmt::format("'{}' of {}: {} has host bits set", key, where, shown(*text)),
             fmt::format("did you mean \"{}\"?", pfx->network().str()));
    return std::nullopt;
  }
  return pfx;
}

std::vector<MarkRule> Parser::parse_marks(const std::string& node, const toml::node& n, Pos tpos) {
  std::vector<MarkRule> out;
  const auto* arr = n.as_array();
  if (!arr) {
    r_.error(pos_or(n, tpos), fmt::format("marks of node {} must be a list of tables", plain(node)),
             "write each rule as [[nodes." + plain(node) + ".marks]] with proto, dst, dport and mark");
    return out;
  }
  for (std::size_t idx = 0; idx < arr->size(); ++idx) {
    std::string where = fmt::format("mark rule {} of node {}", idx + 1, plain(node));
    const toml::table* t = table_of((*arr)[idx], where, pos_or(n, tpos));
    if (!t) continue;
    Pos tp = pos_or(*t, pos_or(n, tpos));
    MarkRule m;
    m.pos = tp;
    m.keys = key_positions(*t);
    unknown_keys(*t, {"proto", "src", "dst", "sport", "dport", "iif", "mark"}, where, tp);
    m.mark = static_cast<uint32_t>(integer(*t, "mark", where, tp, 1, UINT32_MAX, true).value_or(0));
    if (auto proto = str(*t, "proto", where, tp)) {
      m.proto = parse_proto(*proto);
      if (!m.proto)
        r_.error(pos_at(*t, "proto", tp), fmt::format("proto of {} must be \"tcp\", \"udp\" or \"sctp\", not {}",
                                                      where, shown(*proto)),
                 did_you_mean(*proto, {"tcp", "udp", "sctp"}, "leave proto out to match every protocol"));
    }
    m.src = match_prefix(*t, "src", where, tp);
    m.dst = match_prefix(*t, "dst", where, tp);
    if (m.src && m.dst && m.src->addr.family != m.dst->addr.family)
      r_.error(pos_at(*t, "dst", tp), fmt::format("{} mixes address families: src is IPv{}, dst is IPv{}", where,
                                                  m.src->addr.v4() ? 4 : 6, m.dst->addr.v4() ? 4 : 6),
               "a packet is IPv4 or IPv6: write one rule per family");
    m.sport = ports(*t, "sport", where, tp);
    m.dport = ports(*t, "dport", where, tp);
    for (const char* key : {"sport", "dport"})
      if (t->get(key) && !t->get("proto"))
        r_.error(pos_at(*t, key, tp), fmt::format("{} matches a port ('{}') but names no proto", where, key),
                 "ports belong to a protocol: add proto = \"tcp\", \"udp\" or \"sctp\"");
    m.iif = str(*t, "iif", where, tp).value_or("");
    if (t->get("iif"))
      if (auto why = bad_ifname(m.iif)) r_.error(pos_at(*t, "iif", tp), fmt::format("iif {} of {} {}", shown(m.iif), where, *why));
    out.push_back(std::move(m));
  }
  return out;
}

// A nat rule matches like a mark rule and says what to rewrite. Beyond the shape of each
// value, a rule must not NAT everything by accident: a source NAT names where (oif, src or
// dst), a destination NAT what it takes (dst or dport).
std::vector<NatRule> Parser::parse_nat(const std::string& node, const toml::node& n, Pos tpos) {
  std::vector<NatRule> out;
  const auto* arr = n.as_array();
  if (!arr) {
    r_.error(pos_or(n, tpos), fmt::format("nat of node {} must be a list of tables", plain(node)),
             "write each rule as [[nodes." + plain(node) + ".nat]] with type and what it matches");
    return out;
  }
  static const std::vector<std::string> types = {"masquerade", "snat", "dnat", "redirect"};
  for (std::size_t idx = 0; idx < arr->size(); ++idx) {
    std::string where = fmt::format("nat rule {} of node {}", idx + 1, plain(node));
    const toml::table* t = table_of((*arr)[idx], where, pos_or(n, tpos));
    if (!t) continue;
    Pos tp = pos_or(*t, pos_or(n, tpos));
    NatRule r;
    r.pos = tp;
    r.keys = key_positions(*t);
    unknown_keys(*t, {"type", "proto", "src", "dst", "sport", "dport", "iif", "oif", "to"}, where,
                 tp);
    auto type = str(*t, "type", where, tp, true);
    if (!type) continue;
    if (*type == "masquerade")
      r.type = NatType::Masquerade;
    else if (*type == "snat")
      r.type = NatType::Snat;
    else if (*type == "dnat")
      r.type = NatType::Dnat;
    else if (*type == "redirect")
      r.type = NatType::Redirect;
    else {
      std::string hint = did_you_mean(*type, types, "one of masquerade, snat, dnat, redirect");
      if (*type == "masq" || *type == "MASQUERADE") hint = "did you mean 'masquerade'?";
      r_.error(pos_at(*t, "type", tp), fmt::format("unknown type {} of {}", shown(*type), where),
               hint);
      continue;
    }
    if (auto proto = str(*t, "proto", where, tp)) {
      r.proto = parse_proto(*proto);
      if (!r.proto)
        r_.error(pos_at(*t, "proto", tp),
                 fmt::format("proto of {} must be \"tcp\", \"udp\" or \"sctp\", not {}", where,
                             shown(*proto)),
                 did_you_mean(*proto, {"tcp", "udp", "sctp"},
                              "leave proto out to match every protocol"));
    }
    r.src = match_prefix(*t, "src", where, tp);
    r.dst = match_prefix(*t, "dst", where, tp);
    if (r.src && r.dst && r.src->addr.family != r.dst->addr.family)
      r_.error(pos_at(*t, "dst", tp),
               fmt::format("{} mixes address families: src is IPv{}, dst is IPv{}", where,
                           r.src->addr.v4() ? 4 : 6, r.dst->addr.v4() ? 4 : 6),
               "a packet is IPv4 or IPv6: write one rule per family");
    r.sport = ports(*t, "sport", where, tp);
    r.dport = ports(*t, "dport", where, tp);
    for (const char* key : {"sport", "dport"})
      if (t->get(key) && !t->get("proto"))
        r_.error(pos_at(*t, key, tp),
                 fmt::format("{} matches a port ('{}') but names no proto", where, key),
                 "ports belong to a protocol: add proto = \"tcp\", \"udp\" or \"sctp\"");
    for (const char* key : {"iif", "oif"}) {
      std::string dev = str(*t, key, where, tp).value_or("");
      if (t->get(key))
        if (auto why = bad_ifname(dev))
          r_.error(pos_at(*t, key, tp),
                   fmt::format("{} {} of {} {}", key, shown(dev), where, *why));
      (std::string(key) == "iif" ? r.iif : r.oif) = dev;
    }
    // Routing picks the output interface after prerouting: a dnat or redirect rule cannot
    // know it (nft would accept oifname there and never match).
    if (t->get("oif") && !r.source_nat())
      r_.error(
          pos_at(*t, "oif", tp),
          fmt::format("{} is a {} rule, which runs in prerouting, before routing picks an output "
                      "interface: it cannot match oif",
                      where, *type),
          "match the input interface with iif, or the destination with dst");
    nat_to(r, *t, where, tp);
    if (r.source_nat() && r.oif.empty() && !r.src && !r.dst)
      r_.error(
          tp,
          fmt::format("{} would {} every packet node {} sends or forwards", where,
                      r.type == NatType::Snat ? "rewrite the source of" : "masquerade",
                      plain(node)),
          "say which packets: oif = \"<the interface towards them>\", src = \"<their network>\" or "
          "dst = \"<where they go>\"");
    if (!r.source_nat() && !r.dst && r.dport.empty())
      r_.error(tp, fmt::format("{} would take every packet node {} receives", where, plain(node)),
               "say which packets: dst = \"<the address it takes>\" and/or proto with dport");
    out.push_back(std::move(r));
  }
  return out;
}

void Parser::nat_to(NatRule& r, const toml::table& t, const std::string& where, Pos tp) {
  const toml::node* to = t.get("to");
  if (r.type == NatType::Masquerade) {
    if (to)
      r_.error(pos_or(*to, tp),
               fmt::format("{} masquerades, which takes the address of the interface the packet "
                           "leaves by: it has no 'to'",
                           where),
               "for a fixed address use type = \"snat\" with to = \"<address>\"");
    return;
  }
  if (r.type == NatType::Redirect) {
    if (!to) return;
    if (to->is_string())
      r_.error(pos_or(*to, tp),
               fmt::format("'to' of {} must be a port: a redirect delivers to node itself", where),
               "e.g. to = 8080; to send to another address use type = \"dnat\"");
    else
      r.to_port = static_cast<uint16_t>(integer(t, "to", where, tp, 1, 65535).value_or(0));
  } else {
    auto text = str(t, "to", where, tp, true);
    if (!text) return;
    Pos p = pos_or(*to, tp);
    std::string addr = *text, port;
    if (!addr.empty() && addr.front() == '[') {
      auto close = addr.find("]:");
      if (close != std::string::npos) {
        port = addr.substr(close + 2);
        addr = addr.substr(1, close - 1);
      }
    } else if (std::count(addr.begin(), addr.end(), ':') == 1) {
      port = addr.substr(addr.find(':') + 1);
      addr = addr.substr(0, addr.find(':'));
    }
    auto a = IpAddr::parse(addr);
    if (!a || a->unspecified() || a->multicast()) {
      r_.error(p,
               fmt::format("'to' of {} is not an address, ADDRESS:PORT or [IPv6]:PORT: {}", where,
                           shown(*text)),
               fmt::format("e.g. to = \"10.0.0.5\", \"10.0.0.5:8080\" or \"[fd00::5]:8080\"{}",
                           a ? " (a unicast address)" : ""));
      return;
    }
    r.to = a;
    if (!port.empty()) {
      int v = 0;
      bool digits = port.size() <= 5 && std::all_of(port.begin(), port.end(),
                                                    [](char c) { return c >= '0' && c <= '9'; });
      if (digits) v = std::stoi(port);
      if (!digits || v < 1 || v > 65535) {
        r_.error(p, fmt::format("'to' of {} has port {}, not 1..65535", where, shown(port)));
        return;
      }
      r.to_port = static_cast<uint16_t>(v);
    }
    for (const auto* m : {&r.src, &r.dst})
      if (*m && (*m)->addr.family != a->family) {
        r_.error(p,
                 fmt::format(
                     "'to' of {} is IPv{} but the rule matches IPv{} packets: it would never apply",
                     where, a->v4() ? 4 : 6, a->v4() ? 6 : 4),
                 "a packet keeps its address family: write to of the family the rule matches");
        break;
      }
  }
  if (r.to_port && !r.proto)
    r_.error(pos_or(*to, tp),
             fmt::format("'to' of {} maps a port but the rule names no proto", where),
             "a port belongs to a protocol: add proto = \"tcp\", \"udp\" or \"sctp\"");
}

RealServer Parser::parse_real_server(const std::string& where, const toml::table& t, Pos tpos,
                                     FwdMethod default_method) {
  RealServer rs;
  rs.pos = tpos;
  rs.keys = key_positions(t);
  unknown_keys(t, {"node", "address", "port", "method", "weight", "u_thresh", "l_thresh"}, where, tpos);
  rs.node = str(t, "node", where, tpos).value_or("");
  if (auto a = address(t, "address", where, tpos)) rs.addr = *a;
  if (!t.get("node") && !t.get("address"))
    missing("node' or 'address", where, tpos, "name the real server: node = \"rs1\" or address = \"10.0.0.11\"");
  rs.port = static_cast<uint16_t>(integer(t, "port", where, tpos, 1, 65535).value_or(0));
  rs.method = method(t, where, tpos).value_or(default_method);
  rs.weight = static_cast<int>(integer(t, "weight", where, tpos, 0, 65535).value_or(1));
  auto u = integer(t, "u_thresh", where, tpos, 0, UINT32_MAX);
  auto l = integer(t, "l_thresh", where, tpos, 0, UINT32_MAX);
  rs.u_thresh = static_cast<uint32_t>(u.value_or(0));
  rs.l_thresh = static_cast<uint32_t>(l.value_or(0));
  if (rs.l_thresh && rs.u_thresh && rs.l_thresh > rs.u_thresh)
    r_.error(pos_at(t, "l_thresh", tpos),
             fmt::format("l_thresh {} of {} is above its u_thresh {}", rs.l_thresh, where, rs.u_thresh),
             "the lower threshold (when the server is used again) must not exceed the upper one");
  return rs;
}

}  // namespace labctl::topo
