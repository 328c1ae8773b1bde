// A captured frame taken apart: Ethernet, ARP, IPv4/IPv6 (every IP header of an IPIP or
// IPv6-in-IP packet, outermost first), and the TCP, UDP or ICMP header inside. Pure byte
// parsing: no kernel, no root; a frame that ends early decodes as far as it goes and says
// where it stopped, so a truncated capture still shows what it has.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "labctl/model/ip.h"

namespace labctl {

using MacAddr = std::array<uint8_t, 6>;

/// "aa:bb:cc:dd:ee:ff".
[[nodiscard]] std::string mac_text(const MacAddr& m);

/// How a frame begins: libpcap's link types that lab interfaces have.
enum class LinkType {
  Ethernet,  ///< DLT_EN10MB: veth, bridges.
  Raw,       ///< DLT_RAW / LINKTYPE_IPV4 / IPV6: an IP header first (tunl0, ipip devices).
  LinuxSll,  ///< DLT_LINUX_SLL: Linux "cooked" capture (16-byte header).
};

/// The LinkType of a libpcap DLT value; nullopt for a link type labs never have.
[[nodiscard]] std::optional<LinkType> link_type_of_dlt(int dlt);

struct EthHeader {
  MacAddr src{};
  MacAddr dst{};
  uint16_t ethertype = 0;       ///< After any VLAN tags.
  std::optional<uint16_t> vlan;  ///< The outermost 802.1Q tag's VLAN id.
};

struct ArpHeader {
  uint16_t op = 0;  ///< 1 request, 2 reply.
  MacAddr sender_mac{};
  IpAddr sender_ip;
  MacAddr target_mac{};
  IpAddr target_ip;
};

struct IpHeader {
  IpAddr src;
  IpAddr dst;
  uint8_t proto = 0;  ///< IPv4 protocol / IPv6 next header (after extension headers).
  uint8_t ttl = 0;    ///< TTL or hop limit.
  uint16_t id = 0;    ///< IPv4 identification (0 for IPv6).
  uint16_t total_len = 0;
  bool fragment = false;  ///< A non-first fragment: no transport header follows.
};

struct L4Header {
  uint8_t proto = 0;  ///< IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6.
  uint16_t sport = 0, dport = 0;
  uint8_t tcp_flags = 0;  ///< FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10 URG 0x20.
  uint32_t seq = 0, ack = 0;
  uint8_t icmp_type = 0, icmp_code = 0;
  uint32_t payload_len = 0;  ///< Bytes after the transport header, as the IP length says.
};

struct Packet {
  std::optional<EthHeader> eth;
  std::optional<ArpHeader> arp;
  std::vector<IpHeader> ip;  ///< Outermost first; two or more: encapsulated (IPIP).
  std::optional<L4Header> l4;
  uint32_t wire_len = 0;      ///< The frame's length on the wire.
  std::string truncated;      ///< Where decoding stopped early ("" when it did not).

  /// The innermost IP header (the packet the application sent), or nullptr.
  [[nodiscard]] const IpHeader* inner() const { return ip.empty() ? nullptr : &ip.back(); }
  /// The outer header of an encapsulated packet, or nullptr.
  [[nodiscard]] const IpHeader* outer() const { return ip.size() > 1 ? &ip.front() : nullptr; }
};

/// Takes apart one captured frame (`caplen` bytes of a `wire_len`-byte frame).
[[nodiscard]] Packet decode_packet(LinkType link, const uint8_t* data, size_t caplen,
                                   uint32_t wire_len);

/// "S", "S.", "P.", "F.", "R" as tcpdump writes TCP flags (with '.' for ACK).
[[nodiscard]] std::string tcp_flags_text(uint8_t flags);
/// One line, tcpdump-like: MACs, then "IPIP 10.0.0.2 > 10.0.0.11:" for every outer header,
/// then the innermost packet ("10.0.0.10.40000 > 10.0.0.100.80: TCP [S] seq 1, len 0").
[[nodiscard]] std::string packet_summary(const Packet& p);
/// Every decoded field, for --json.
[[nodiscard]] nlohmann::json packet_json(const Packet& p);

}  // namespace labctl
