#include "labctl/trace/packet.h"

#include <netinet/in.h>
#include <pcap/dlt.h>
#include <sys/socket.h>

#include <fmt/format.h>

namespace labctl {
namespace {

constexpr uint16_t kEthIpv4 = 0x0800, kEthArp = 0x0806, kEthIpv6 = 0x86dd, kEthVlan = 0x8100,
                   kEthQinQ = 0x88a8;
constexpr size_t kEthLen = 14, kSllLen = 16, kArpLen = 28, kIpv6Len = 40, kTcpMin = 20,
                 kUdpLen = 8, kIcmpMin = 4;
constexpr uint8_t kProtoIpip = 4, kProtoIpv6InIp = 41;

uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

MacAddr mac_at(const uint8_t* p) {
  MacAddr m{};
  std::copy_n(p, 6, m.begin());
  return m;
}

IpAddr ip_at(const uint8_t* p, int family) {
  IpAddr a;
  a.family = family;
  std::copy_n(p, family == AF_INET ? 4 : 16, a.bytes.begin());
  return a;
}

// A cursor over the captured bytes: every read checks what is left first.
struct Bytes {
  const uint8_t* p;
  size_t left;
  bool has(size_t n) const { return left >= n; }
  void skip(size_t n) { p += n, left -= n; }
};

bool decode_l4(Packet& pkt, Bytes b, uint8_t proto, uint32_t l4_len) {
  L4Header h;
  h.proto = proto;
  switch (proto) {
    case IPPROTO_TCP: {
      if (!b.has(kTcpMin)) return pkt.truncated = "TCP header", false;
      h.sport = be16(b.p), h.dport = be16(b.p + 2);
      h.seq = be32(b.p + 4), h.ack = be32(b.p + 8);
      const uint32_t off = uint32_t{static_cast<uint8_t>(b.p[12] >> 4)} * 4;
      h.tcp_flags = b.p[13] & 0x3f;
      h.payload_len = l4_len > off ? l4_len - off : 0;
      break;
    }
    case IPPROTO_UDP:
      if (!b.has(kUdpLen)) return pkt.truncated = "UDP header", false;
      h.sport = be16(b.p), h.dport = be16(b.p + 2);
      h.payload_len = l4_len > kUdpLen ? l4_len - static_cast<uint32_t>(kUdpLen) : 0;
      break;
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6:
      if (!b.has(kIcmpMin)) return pkt.truncated = "ICMP header", false;
      h.icmp_type = b.p[0], h.icmp_code = b.p[1];
      h.payload_len = l4_len > kIcmpMin ? l4_len - static_cast<uint32_t>(kIcmpMin) : 0;
      break;
    default:
      return true;  // another protocol: the IP header says which
  }
  pkt.l4 = h;
  return true;
}

// An IP packet (v4 or v6 by its version nibble) and whatever it carries, recursing into
// IPIP and IPv6-in-IP. Depth is bounded: a crafted packet of nested headers stops at 4.
void decode_ip(Packet& pkt, Bytes b, int depth = 0) {
  if (depth >= 4) return void(pkt.truncated = "more than 4 nested IP headers");
  if (!b.has(1)) return void(pkt.truncated = "IP header");
  IpHeader h;
  uint32_t payload_len = 0;
  const int version = b.p[0] >> 4;
  if (version == 4) {
    const size_t ihl = size_t{static_cast<uint8_t>(b.p[0] & 0x0f)} * 4;
    if (ihl < 20 || !b.has(ihl)) return void(pkt.truncated = "IPv4 header");
    h.total_len = be16(b.p + 2);
    h.id = be16(b.p + 4);
    h.fragment = (be16(b.p + 6) & 0x1fff) != 0;
    h.ttl = b.p[8];
    h.proto = b.p[9];
    h.src = ip_at(b.p + 12, AF_INET);
    h.dst = ip_at(b.p + 16, AF_INET);
    payload_len = h.total_len > ihl ? h.total_len - static_cast<uint32_t>(ihl) : 0;
    b.skip(ihl);
  } else if (version == 6) {
    if (!b.has(kIpv6Len)) return void(pkt.truncated = "IPv6 header");
    payload_len = be16(b.p + 4);
    h.total_len = static_cast<uint16_t>(std::min<uint32_t>(payload_len + kIpv6Len, 0xffff));
    h.proto = b.p[6];
    h.ttl = b.p[7];
    h.src = ip_at(b.p + 8, AF_INET6);
    h.dst = ip_at(b.p + 24, AF_INET6);
    b.skip(kIpv6Len);
    // Hop-by-hop, routing and destination options: skip to the transport header.
    for (int ext = 0; ext < 8 && (h.proto == 0 || h.proto == 43 || h.proto == 60); ++ext) {
      if (!b.has(2)) return pkt.ip.push_back(h), void(pkt.truncated = "IPv6 extension header");
      const size_t len = (size_t{b.p[1]} + 1) * 8;
      if (!b.has(len)) return pkt.ip.push_back(h), void(pkt.truncated = "IPv6 extension header");
      h.proto = b.p[0];
      payload_len = payload_len > len ? payload_len - static_cast<uint32_t>(len) : 0;
      b.skip(len);
    }
    if (h.proto == 44) h.fragment = true;
  } else {
    return void(pkt.truncated = fmt::format("IP header of version {}", version));
  }
  pkt.ip.push_back(h);
  if (h.fragment) return;
  if (h.proto == kProtoIpip || h.proto == kProtoIpv6InIp) return decode_ip(pkt, b, depth + 1);
  decode_l4(pkt, b, h.proto, payload_len);
}

void decode_arp(Packet& pkt, Bytes b) {
  if (!b.has(kArpLen)) return void(pkt.truncated = "ARP payload");
  // Ethernet/IPv4 only: hardware type 1, protocol 0x0800, lengths 6 and 4.
  if (be16(b.p) != 1 || be16(b.p + 2) != kEthIpv4 || b.p[4] != 6 || b.p[5] != 4) return;
  ArpHeader a;
  a.op = be16(b.p + 6);
  a.sender_mac = mac_at(b.p + 8);
  a.sender_ip = ip_at(b.p + 14, AF_INET);
  a.target_mac = mac_at(b.p + 18);
  a.target_ip = ip_at(b.p + 24, AF_INET);
  pkt.arp = a;
}

void decode_ethertype(Packet& pkt, Bytes b, uint16_t type) {
  if (type == kEthIpv4 || type == kEthIpv6) decode_ip(pkt, b);
  else if (type == kEthArp) decode_arp(pkt, b);
}

std::string addr_port(const IpAddr& a, uint16_t port) {
  return a.v6() ? fmt::format("[{}].{}", a.str(), port) : fmt::format("{}.{}", a.str(), port);
}

const char* proto_name(uint8_t proto) {
  switch (proto) {
    case IPPROTO_TCP: return "TCP";
    case IPPROTO_UDP: return "UDP";
    case IPPROTO_ICMP: return "ICMP";
    case IPPROTO_ICMPV6: return "ICMPv6";
    case kProtoIpip: return "IPIP";
    case kProtoIpv6InIp: return "IPv6-in-IP";
    default: return nullptr;
  }
}

std::string icmp_text(const L4Header& l) {
  if (l.proto == IPPROTO_ICMP) {
    switch (l.icmp_type) {
      case 0: return "echo reply";
      case 8: return "echo request";
      case 3: return fmt::format("destination unreachable (code {})", l.icmp_code);
      case 11: return "time exceeded";
    }
  } else {
    switch (l.icmp_type) {
      case 128: return "echo request";
      case 129: return "echo reply";
      case 1: return fmt::format("destination unreachable (code {})", l.icmp_code);
      case 135: return "neighbour solicitation";
      case 136: return "neighbour advertisement";
    }
  }
  return fmt::format("type {} code {}", l.icmp_type, l.icmp_code);
}

}  // namespace

std::string mac_text(const MacAddr& m) {
  return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5]);
}

std::optional<LinkType> link_type_of_dlt(int dlt) {
  switch (dlt) {
    case DLT_EN10MB: return LinkType::Ethernet;
    case DLT_RAW:
    case DLT_IPV4:
    case DLT_IPV6: return LinkType::Raw;
    case DLT_LINUX_SLL: return LinkType::LinuxSll;
    default: return std::nullopt;
  }
}

Packet decode_packet(LinkType link, const uint8_t* data, size_t caplen, uint32_t wire_len) {
  Packet pkt;
  pkt.wire_len = wire_len;
  Bytes b{data, caplen};
  switch (link) {
    case LinkType::Raw:
      decode_ip(pkt, b);
      break;
    case LinkType::LinuxSll:
      // packet type (2) | ARPHRD (2) | address length (2) | address (8) | protocol (2)
      if (!b.has(kSllLen)) return pkt.truncated = "Linux cooked header", pkt;
      {
        const uint16_t type = be16(b.p + 14);
        b.skip(kSllLen);
        decode_ethertype(pkt, b, type);
      }
      break;
    case LinkType::Ethernet: {
      if (!b.has(kEthLen)) return pkt.truncated = "Ethernet header", pkt;
      EthHeader e;
      e.dst = mac_at(b.p);
      e.src = mac_at(b.p + 6);
      e.ethertype = be16(b.p + 12);
      b.skip(kEthLen);
      for (int tags = 0; tags < 2 && (e.ethertype == kEthVlan || e.ethertype == kEthQinQ); ++tags) {
        if (!b.has(4)) return pkt.eth = e, pkt.truncated = "VLAN tag", pkt;
        if (!e.vlan) e.vlan = be16(b.p) & 0x0fff;
        e.ethertype = be16(b.p + 2);
        b.skip(4);
      }
      pkt.eth = e;
      decode_ethertype(pkt, b, e.ethertype);
      break;
    }
  }
  return pkt;
}

std::string tcp_flags_text(uint8_t f) {
  std::string s;
  if (f & 0x02) s += 'S';
  if (f & 0x01) s += 'F';
  if (f & 0x04) s += 'R';
  if (f & 0x08) s += 'P';
  if (f & 0x20) s += 'U';
  if (f & 0x10) s += '.';
  return s.empty() ? "none" : s;
}

std::string packet_summary(const Packet& p) {
  std::string s;
  if (p.eth) s += fmt::format("{} > {}", mac_text(p.eth->src), mac_text(p.eth->dst));
  if (p.eth && p.eth->vlan) s += fmt::format(" vlan {}", *p.eth->vlan);
  auto sep = [&] {
    if (!s.empty()) s += ", ";
  };
  if (p.arp) {
    sep();
    if (p.arp->op == 1)
      s += fmt::format("ARP who-has {} tell {}", p.arp->target_ip.str(), p.arp->sender_ip.str());
    else if (p.arp->op == 2)
      s += fmt::format("ARP reply {} is-at {}", p.arp->sender_ip.str(), mac_text(p.arp->sender_mac));
    else
      s += fmt::format("ARP op {}", p.arp->op);
  }
  for (size_t i = 0; i + 1 < p.ip.size(); ++i) {
    sep();
    const char* what = proto_name(p.ip[i].proto);
    s += fmt::format("{} {} > {} ttl {}", what ? what : "IP", p.ip[i].src.str(), p.ip[i].dst.str(),
                     p.ip[i].ttl);
    s += ":";
  }
  if (const IpHeader* in = p.inner()) {
    if (!s.empty()) s += p.ip.size() > 1 ? " " : ", ";
    if (p.l4 && (p.l4->proto == IPPROTO_TCP || p.l4->proto == IPPROTO_UDP)) {
      s += fmt::format("{} > {}: {}", addr_port(in->src, p.l4->sport), addr_port(in->dst, p.l4->dport),
                       proto_name(p.l4->proto));
      if (p.l4->proto == IPPROTO_TCP) {
        s += fmt::format(" [{}] seq {}", tcp_flags_text(p.l4->tcp_flags), p.l4->seq);
        if (p.l4->tcp_flags & 0x10) s += fmt::format(" ack {}", p.l4->ack);
      }
      s += fmt::format(", len {}", p.l4->payload_len);
    } else if (p.l4) {
      s += fmt::format("{} > {}: {} {}", in->src.str(), in->dst.str(), proto_name(p.l4->proto),
                       icmp_text(*p.l4));
    } else {
      const char* what = proto_name(in->proto);
      s += fmt::format("{} > {}: {}", in->src.str(), in->dst.str(),
                       what ? std::string(what) : fmt::format("proto {}", in->proto));
      if (in->fragment) s += " fragment";
    }
    s += fmt::format(" ttl {}", in->ttl);
  } else if (p.eth && !p.arp) {
    sep();
    s += fmt::format("ethertype 0x{:04x}, length {}", p.eth->ethertype, p.wire_len);
  }
  if (!p.truncated.empty()) s += " [cut short in the " + p.truncated + "]";
  return s;
}

nlohmann::json packet_json(const Packet& p) {
  nlohmann::json j = nlohmann::json::object();
  j["length"] = p.wire_len;
  if (p.eth) {
    j["eth"] = {{"src", mac_text(p.eth->src)}, {"dst", mac_text(p.eth->dst)},
                {"ethertype", p.eth->ethertype}};
    if (p.eth->vlan) j["eth"]["vlan"] = *p.eth->vlan;
  }
  if (p.arp)
    j["arp"] = {{"op", p.arp->op == 1 ? "request" : p.arp->op == 2 ? "reply" : "other"},
                {"sender_mac", mac_text(p.arp->sender_mac)}, {"sender_ip", p.arp->sender_ip.str()},
                {"target_mac", mac_text(p.arp->target_mac)}, {"target_ip", p.arp->target_ip.str()}};
  nlohmann::json ips = nlohmann::json::array();
  for (const auto& h : p.ip)
    ips.push_back({{"src", h.src.str()}, {"dst", h.dst.str()}, {"proto", h.proto}, {"ttl", h.ttl},
                   {"id", h.id}, {"length", h.total_len}});
  if (!p.ip.empty()) j["ip"] = ips;  // outermost first
  if (p.l4) {
    const auto& l = *p.l4;
    nlohmann::json t = {{"proto", proto_name(l.proto)}};
    if (l.proto == IPPROTO_TCP || l.proto == IPPROTO_UDP) {
      t["sport"] = l.sport;
      t["dport"] = l.dport;
    }
    if (l.proto == IPPROTO_TCP) {
      t["flags"] = tcp_flags_text(l.tcp_flags);
      t["seq"] = l.seq;
      t["ack"] = l.ack;
    }
    if (l.proto == IPPROTO_ICMP || l.proto == IPPROTO_ICMPV6) {
      t["type"] = l.icmp_type;
      t["code"] = l.icmp_code;
    }
    t["payload"] = l.payload_len;
    j["l4"] = t;
  }
  if (!p.truncated.empty()) j["truncated"] = p.truncated;
  return j;
}

}  // namespace labctl
