// IPv4/IPv6 addresses and prefixes as values: parsed once, compared, printed.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace labctl {

struct IpAddr {
  int family = 0;                  ///< AF_INET or AF_INET6; 0 when unset.
  std::array<uint8_t, 16> bytes{};  ///< Network byte order; IPv4 uses the first 4.

  static std::optional<IpAddr> parse(std::string_view text);
  [[nodiscard]] std::string str() const;
  [[nodiscard]] bool v4() const;
  [[nodiscard]] bool v6() const;
  [[nodiscard]] std::size_t size() const { return v4() ? 4 : 16; }
  [[nodiscard]] int max_prefix() const { return v4() ? 32 : 128; }
  /// The IPv4 address as a network-order u32 (as libnl and IPVS want it).
  [[nodiscard]] uint32_t v4_be() const;
  [[nodiscard]] bool unspecified() const;  ///< 0.0.0.0 or ::
  [[nodiscard]] bool multicast() const;    ///< 224.0.0.0/4 or ff00::/8
  [[nodiscard]] bool loopback() const;     ///< 127.0.0.0/8 or ::1
  [[nodiscard]] bool v4_mapped() const;    ///< ::ffff:0:0/96
  auto operator<=>(const IpAddr&) const = default;
};

struct IpPrefix {
  IpAddr addr;  ///< The address as written (host bits kept: "10.0.0.1/24" is an interface address).
  int len = 0;

  /// Parses "A/N"; a bare address is accepted only when allow_bare (then len is the max).
  static std::optional<IpPrefix> parse(std::string_view text, bool allow_bare = false);
  [[nodiscard]] std::string str() const;
  [[nodiscard]] IpPrefix network() const;  ///< Host bits cleared.
  [[nodiscard]] IpPrefix broadcast() const;  ///< Host bits set (IPv4's directed broadcast).
  [[nodiscard]] bool contains(const IpAddr& a) const;
  [[nodiscard]] bool overlaps(const IpPrefix& o) const;
  auto operator<=>(const IpPrefix&) const = default;
};

}  // namespace labctl
