// The one-line "why" of each plan step: the LVS course idea behind it (MAC rewrite for DR,
// IP-in-IP for TUN, DNAT for NAT, arp_ignore/arp_announce for a VIP on lo ...). Derived from
// roles (roles.h), never from node names. "" when the step explains itself.
#pragma once

#include <string>

#include "labctl/plan/roles.h"

namespace labctl::why {

[[nodiscard]] std::string switch_netns(const Switch& sw);
[[nodiscard]] std::string bridge(const Roles& r, const Switch& sw);
[[nodiscard]] std::string bridge_up(const Switch& sw);
[[nodiscard]] std::string no_ipv6(const Node& n);
[[nodiscard]] std::string veth(const Node& n, const Interface& i);
[[nodiscard]] std::string link_up(const Node& n, const std::string& dev);
/// Why a node's interface gets a qdisc: what its `impair` does to what leaves it.
[[nodiscard]] std::string impair(const Node& n, const Interface& i);
/// The same for the switch's port of that interface (`port_impair`): what reaches the node.
[[nodiscard]] std::string port_impair(const Node& n, const Interface& i);
[[nodiscard]] std::string address(const Roles& r, const Node& n, const std::string& dev,
                                  const IpPrefix& a);
/// The course's lesson at an interface address: mask AND address = network number; every
/// address of that network is on-link on `dev` (gateway 0.0.0.0 in `route -n`), any other
/// needs a next hop. "" for a host address (/32, /128), which adds no network.
[[nodiscard]] std::string network_number(const IpPrefix& a, const std::string& dev);
[[nodiscard]] std::string sysctl(const Roles& r, const Node& n, const Sysctl& s);
[[nodiscard]] std::string route(const Roles& r, const Node& n, const Route& rt);
[[nodiscard]] std::string enable_ipip(const Roles& r, const Node& n);
/// Why ip6_tunnel is loaded: ip6tnl0 decapsulates IPVS's IPv6 tun packets.
[[nodiscard]] std::string enable_ip6tnl(const Roles& r, const Node& n);
[[nodiscard]] std::string ipip(const Tunnel& t);
[[nodiscard]] std::string service(const VirtualService& s);
[[nodiscard]] std::string dest(const Roles& r, const VirtualService& s, const RealServer& d);
[[nodiscard]] std::string agent(const Node& n, const Agent& a);
/// Why a node gets an nftables table: its marks feed fwmark services.
[[nodiscard]] std::string marks(const Node& n);
/// The node's nftables step: its marks (marks()) and its nat rules.
[[nodiscard]] std::string nft_rules(const Node& n);

/// Why a director runs the IPVS sync daemon in that role (`ipvs_sync`).
[[nodiscard]] std::string ipvs_sync(const Node& n, bool master);

/// What a scheduler does, in a few words ("round robin: ..."); "" for unknown ones.
[[nodiscard]] std::string scheduler(const std::string& name);

}  // namespace labctl::why
