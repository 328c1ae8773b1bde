// A read-only view of a parsed topology as a network: which interfaces share an L2
// segment (which node owns an address is Topology::owner_of), and where a node's routing table sends a packet.
// The validator uses it for gateways and for the LVS reachability rules.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "labctl/model/topology.h"

namespace labctl::topo {

class Net {
 public:
  explicit Net(const Topology& t) : t_(t) {}

  /// "switch:<name>" or "link:<a>:<if>~<b>:<if>" (ends sorted), "" for an unconnected one.
  [[nodiscard]] std::string segment(const Node& n, const Interface& i) const;
  /// Interface pairs (a's, b's) that sit on one segment.
  [[nodiscard]] std::vector<std::pair<const Interface*, const Interface*>> shared(const Node& a,
                                                                                const Node& b) const;
  [[nodiscard]] bool share_segment(const Node& a, const Node& b) const { return !shared(a, b).empty(); }

  [[nodiscard]] bool has_device(const Node& n, const std::string& dev) const;
  [[nodiscard]] std::vector<std::string> device_names(const Node& n) const;
  /// Whether any address of the node (interfaces, lo, tunl0, tunnels) is `a`.
  [[nodiscard]] bool owns(const Node& n, const IpAddr& a) const;
  /// The interface whose subnet holds `a` (host prefixes hold nothing), or nullptr.
  [[nodiscard]] const Interface* connected_interface(const Node& n, const IpAddr& a) const;
  [[nodiscard]] std::vector<std::string> connected_subnets(const Node& n) const;
  [[nodiscard]] std::optional<IpAddr> first_address(const Node& n, int family = 0) const;

  struct NextHop {
    const Interface* out = nullptr;  ///< nullptr when the route leaves through a tunnel.
    std::optional<IpAddr> gw;        ///< Unset: dst is on the link.
  };
  /// Longest-prefix match over connected subnets and the node's routes.
  [[nodiscard]] std::optional<NextHop> lookup(const Node& n, const IpAddr& dst) const;
  /// Follows the routing tables hop by hop from `from`; "" when a packet for dst reaches
  /// node `to`, else a sentence saying where it gets lost.
  [[nodiscard]] std::string trace(const Node& from, const IpAddr& dst, const Node& to) const;
  /// The integer value the lab sets for sysctl `key` on the node, if it sets one.
  [[nodiscard]] std::optional<long> sysctl(const Node& n, const std::string& key) const;
  [[nodiscard]] bool forwards(const Node& n, int family) const;

 private:
  const Topology& t_;
};

}  // namespace labctl::topo
