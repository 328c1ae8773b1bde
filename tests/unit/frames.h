// Hand-built frames for the packet decoder and walk tests: each builder writes the header
// bytes as the RFCs lay them out, so the tests never run the code under test to make them.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "labctl/model/ip.h"

namespace labctl::test {

using Bytes = std::vector<uint8_t>;

inline void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
inline void put32(Bytes& b, uint32_t v) {
  put16(b, static_cast<uint16_t>(v >> 16));
  put16(b, static_cast<uint16_t>(v));
}
inline void put_ip(Bytes& b, const std::string& a) {
  auto ip = *IpAddr::parse(a);
  b.insert(b.end(), ip.bytes.begin(), ip.bytes.begin() + static_cast<long>(ip.size()));
}
inline void put_mac(Bytes& b, const std::string& m) {
  unsigned x[6];
  std::sscanf(m.c_str(), "%x:%x:%x:%x:%x:%x", &x[0], &x[1], &x[2], &x[3], &x[4], &x[5]);
  for (unsigned v : x) b.push_back(static_cast<uint8_t>(v));
}

/// TCP header (20 bytes, no options) followed by `payload` bytes of zeros.
inline Bytes tcp(uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq, uint32_t ack, size_t payload = 0) {
  Bytes b;
  put16(b, sport);
  put16(b, dport);
  put32(b, seq);
  put32(b, ack);
  b.push_back(5 << 4);  // data offset 5 words
  b.push_back(flags);
  put16(b, 64240);  // window
  put16(b, 0);      // checksum (not checked)
  put16(b, 0);      // urgent
  b.resize(b.size() + payload, 0);
  return b;
}

inline Bytes udp(uint16_t sport, uint16_t dport, size_t payload) {
  Bytes b;
  put16(b, sport);
  put16(b, dport);
  put16(b, static_cast<uint16_t>(8 + payload));
  put16(b, 0);
  b.resize(b.size() + payload, 'x');
  return b;
}

/// IPv4 header (20 bytes) around `payload`.
inline Bytes ipv4(const std::string& src, const std::string& dst, uint8_t proto, const Bytes& payload,
                  uint8_t ttl = 64, uint16_t id = 0x1234) {
  Bytes b;
  b.push_back(0x45);
  b.push_back(0);
  put16(b, static_cast<uint16_t>(20 + payload.size()));
  put16(b, id);
  put16(b, 0x4000);  // DF, offset 0
  b.push_back(ttl);
  b.push_back(proto);
  put16(b, 0);
  put_ip(b, src);
  put_ip(b, dst);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

inline Bytes ipv6(const std::string& src, const std::string& dst, uint8_t next, const Bytes& payload,
                  uint8_t hops = 64) {
  Bytes b{0x60, 0, 0, 0};
  put16(b, static_cast<uint16_t>(payload.size()));
  b.push_back(next);
  b.push_back(hops);
  put_ip(b, src);
  put_ip(b, dst);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

inline Bytes eth(const std::string& src, const std::string& dst, uint16_t type, const Bytes& payload) {
  Bytes b;
  put_mac(b, dst);
  put_mac(b, src);
  put16(b, type);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

inline Bytes arp(uint16_t op, const std::string& sha, const std::string& spa, const std::string& tha,
                 const std::string& tpa) {
  Bytes b;
  put16(b, 1);
  put16(b, 0x0800);
  b.push_back(6);
  b.push_back(4);
  put16(b, op);
  put_mac(b, sha);
  put_ip(b, spa);
  put_mac(b, tha);
  put_ip(b, tpa);
  return b;
}

}  // namespace labctl::test
