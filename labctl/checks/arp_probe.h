// Asking the wire who owns an IPv4 address: an ARP request broadcast from the calling
// thread's namespace on the interface toward the address, and every reply collected for a
// bounded time. Unlike reading the neighbour table after a connect (which keeps whichever
// answer came first), this sees every node that answers, so "who answers ARP for the VIP"
// has one answer however the race between the answers goes.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "labctl/base/error.h"
#include "labctl/model/ip.h"

namespace labctl {

using Mac = std::array<uint8_t, 6>;

/// "aa:bb:cc:dd:ee:ff" (as LinkInfo::mac); nullopt when it is not one.
[[nodiscard]] std::optional<Mac> parse_mac(const std::string& s);
[[nodiscard]] std::string mac_str(const Mac& m);

/// The 28-byte ARP payload (Ethernet/IPv4) of "who has `target`? tell `sender_ip`".
///   htype 1 | ptype 0x0800 | hlen 6 | plen 4 | oper 1 | sha | spa | tha 0 | tpa
[[nodiscard]] std::vector<uint8_t> arp_request(const Mac& sender_mac, const IpAddr& sender_ip,
                                               const IpAddr& target);
/// The sender MAC of an ARP reply that says "`target` is at <sha>"; nullopt for anything else
/// (requests, other addresses, short or foreign packets).
[[nodiscard]] std::optional<Mac> parse_arp_reply(const uint8_t* data, size_t len, const IpAddr& target);

struct ArpProbeResult {
  std::string dev;           ///< The interface the request went out of.
  IpAddr sender;             ///< The address it was sent from.
  std::vector<Mac> answers;  ///< Every distinct MAC that answered, in order of arrival.
};

/// From the calling thread's namespace: broadcasts "who has `target`" on the interface of
/// the route toward it (which must be on-link: no gateway), twice, 100 ms apart, and
/// collects replies until `wait` has passed. IPv4 only; needs CAP_NET_RAW.
[[nodiscard]] Result<ArpProbeResult> arp_probe(const IpAddr& target, std::chrono::milliseconds wait);

}  // namespace labctl
