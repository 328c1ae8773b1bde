// The course's next hop, for explain: a route sends what its mask matches to a next hop,
// whose MAC the frame then carries, so ARP asks for the next hop and never for the far
// address (route -n's flags UG, UGH for a host route). Each address step's own why teaches
// its network number (why::network_number).
#pragma once

#include <string>
#include <vector>

#include "labctl/model/topology.h"

namespace labctl {

/// "255.255.255.0" for 24 (IPv4 prefix lengths only).
[[nodiscard]] std::string ipv4_mask(int len);
/// One sentence for each of `n`'s routes.
[[nodiscard]] std::vector<std::string> next_hop_lessons(const Topology& t, const Node& n);

}  // namespace labctl
