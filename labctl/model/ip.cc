#include "labctl/model/ip.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace labctl {

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  char buf[INET6_ADDRSTRLEN] = {};
  std::memcpy(buf, text.data(), text.size());
  IpAddr a;
  if (inet_pton(AF_INET, buf, a.bytes.data()) == 1) {
    a.family = AF_INET;
    return a;
  }
  if (inet_pton(AF_INET6, buf, a.bytes.data()) == 1) {
    a.family = AF_INET6;
    return a;
  }
  return std::nullopt;
}

std::string IpAddr::str() const {
  if (family == 0) return "";
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family, bytes.data(), buf, sizeof buf);
  return buf;
}

bool IpAddr::v4() const { return family == AF_INET; }
bool IpAddr::v6() const { return family == AF_INET6; }

uint32_t IpAddr::v4_be() const {
  uint32_t v = 0;
  std::memcpy(&v, bytes.data(), 4);
  return v;
}

bool IpAddr::unspecified() const {
  return family != 0 && std::all_of(bytes.begin(), bytes.begin() + static_cast<long>(size()),
                                    [](uint8_t b) { return b == 0; });
}

bool IpAddr::multicast() const {
  return v4() ? (bytes[0] & 0xf0) == 0xe0 : v6() && bytes[0] == 0xff;
}

bool IpAddr::loopback() const {
  if (v4()) return bytes[0] == 127;
  if (!v6()) return false;
  return std::all_of(bytes.begin(), bytes.begin() + 15, [](uint8_t b) { return b == 0; }) && bytes[15] == 1;
}

bool IpAddr::v4_mapped() const {
  return v6() && std::all_of(bytes.begin(), bytes.begin() + 10, [](uint8_t b) { return b == 0; }) &&
         bytes[10] == 0xff && bytes[11] == 0xff;
}

std::optional<IpPrefix> IpPrefix::parse(std::string_view text, bool allow_bare) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    if (!allow_bare) return std::nullopt;
    auto a = IpAddr::parse(text);
    if (!a) return std::nullopt;
    return IpPrefix{*a, a->max_prefix()};
  }
  auto a = IpAddr::parse(text.substr(0, slash));
  if (!a) return std::nullopt;
  auto len_text = text.substr(slash + 1);
  int len = -1;
  auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
  if (ec != std::errc() || end != len_text.data() + len_text.size() || len < 0 ||
      len > a->max_prefix())
    return std::nullopt;
  return IpPrefix{*a, len};
}

std::string IpPrefix::str() const { return addr.str() + "/" + std::to_string(len); }

IpPrefix IpPrefix::network() const {
  IpPrefix p = *this;
  for (std::size_t i = 0; i < p.addr.size(); ++i) {
    int bits = len - static_cast<int>(i) * 8;
    uint8_t mask = bits >= 8 ? 0xff : bits <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - bits));
    p.addr.bytes[i] &= mask;
  }
  return p;
}

IpPrefix IpPrefix::broadcast() const {
  IpPrefix p = *this;
  for (std::size_t i = 0; i < p.addr.size(); ++i) {
    int bits = len - static_cast<int>(i) * 8;
    uint8_t mask = bits >= 8 ? 0xff : bits <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - bits));
    p.addr.bytes[i] |= static_cast<uint8_t>(~mask);
  }
  return p;
}

bool IpPrefix::contains(const IpAddr& a) const {
  if (a.family != addr.family) return false;
  return IpPrefix{a, len}.network().addr == network().addr;
}

bool IpPrefix::overlaps(const IpPrefix& o) const {
  if (o.addr.family != addr.family) return false;
  int l = std::min(len, o.len);
  return IpPrefix{addr, l}.network() == IpPrefix{o.addr, l}.network();
}

}  // namespace labctl
