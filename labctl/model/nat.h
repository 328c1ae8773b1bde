// The `nat` rules as the validator sees them: which rule of a node rewrites a connection,
// what source a connection shows once it has crossed the lab's masquerading and
// source-NAT nodes, and whether a real server takes a VIP by redirect. Pure, over the
// parsed topology; the LVS rules (lvs.cc) ask it, and check_nat() reports what is wrong
// with the rules themselves.
#pragma once

#include <optional>
#include <string>

#include "labctl/model/diag.h"
#include "labctl/model/segments.h"
#include "labctl/model/topology.h"

namespace labctl::topo {

/// The first packet of a connection, as far as nat rules look at it. What is unknown
/// (a client's port, its exact address) is left open, and a rule that needs it is not
/// counted on.
struct Flow {
  std::optional<Proto> proto;  ///< nullopt: not known (a fwmark service).
  IpPrefix src;                ///< The sources it stands for: a host, or a network of clients.
  IpAddr dst;
  uint16_t dport = 0;  ///< 0: not known.
  std::string iif;     ///< "": sent by the node itself.
  std::string oif;     ///< "": not routed yet (prerouting).
};

/// Whether `r` matches every packet `f` stands for.
[[nodiscard]] bool nat_matches(const NatRule& r, const Flow& f);
/// The index in n.nat of the rule that rewrites `f`: the first matching one of its chain
/// (source NAT: masquerade and snat; else dnat and redirect), or nullopt.
[[nodiscard]] std::optional<std::size_t> nat_rule_for(const Node& n, const Flow& f,
                                                      bool source_nat);
/// The address the kernel picks as source on `out` towards `next` (the gateway or the
/// destination): one in the same subnet, else the first of the family. As the kernel
/// does for a route without a preferred source, and for masquerade.
[[nodiscard]] std::optional<IpAddr> source_on(const Interface& out, const IpAddr& next);
/// The source a connection from node `from` to `dst` shows when it reaches node `to`:
/// `from`'s own address, rewritten by every masquerade or snat rule on the way (`from`'s
/// too). nullopt when the routing tables do not bring it to `to`.
[[nodiscard]] std::optional<IpAddr> source_at(const Net& net, const Topology& t, const Node& from,
                                              const IpAddr& dst, std::optional<Proto> proto,
                                              uint16_t dport, const Node& to);
/// Whether node `n` takes packets for `vip` arriving on `iif` by a redirect rule (or a
/// dnat to one of its own addresses) instead of holding the VIP itself.
[[nodiscard]] bool takes_by_redirect(const Net& net, const Node& n, const IpAddr& vip,
                                     std::optional<Proto> proto, uint16_t port,
                                     const std::string& iif);

/// The checks of each node's nat rules against the rest of the lab: interfaces it names
/// exist, an snat address is the node's own, a dnat target is held by some node, a node
/// that dnats elsewhere forwards.
void check_nat(const Topology& t, const Net& net, Reporter& r);

}  // namespace labctl::topo
