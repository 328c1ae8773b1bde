// The course's network layer, for explain: an interface address AND its mask is its network
// number, and every address of that network is on-link (route -n: Gateway 0.0.0.0), reached
// by ARP for itself; a route sends what its mask matches to a next hop, whose MAC the frame
// then carries. Derived from the topology, in the course's words.
#pragma once

#include <string>
#include <vector>

#include "labctl/model/topology.h"

namespace labctl {

/// "255.255.255.0" for 24 (IPv4 prefix lengths only).
[[nodiscard]] std::string ipv4_mask(int len);
/// One sentence for each address on `n`'s interfaces and for each of its routes.
[[nodiscard]] std::vector<std::string> network_lessons(const Topology& t, const Node& n);

}  // namespace labctl
