// A node's `marks` and `nat` rules as an nftables ruleset: the text `nft -f` reads and libnftables
// parses the same way. Pure (topology in, text out), so dry-run shows exactly what `up`
// applies and tests compare it as a value.
#pragma once

#include <string>

#include "labctl/model/topology.h"

namespace labctl {

/// The nftables table labctl owns in a node's namespace ("table inet labctl").
inline constexpr const char* kNftTable = "labctl";

/// One nft rule for `m`, e.g. `ip daddr 10.0.0.100 tcp dport { 80, 443 } meta mark set 1`.
[[nodiscard]] std::string nft_rule(const MarkRule& m);
/// The whole ruleset for the node's marks: table inet labctl, chain prerouting (a filter
/// chain at mangle priority, before routing and so before IPVS's LOCAL_IN hook), its rules
/// in the order written. "" when the node has no marks.
[[nodiscard]] std::string nft_mark_ruleset(const Node& n);

/// One nft rule for `r`, e.g. `oifname "eth1" masquerade` or
/// `ip daddr 10.0.0.100 tcp dport 80 redirect to :8080`.
[[nodiscard]] std::string nft_nat_rule(const NatRule& r);
/// The node's whole table, what `up` applies as one transaction: the marks' chain, then
/// chain nat_prerouting (type nat, priority dstnat) with the dnat and redirect rules and
/// chain nat_postrouting (type nat, priority srcnat) with masquerade and snat, each only
/// when it has rules, in the order written. "" when the node has neither marks nor nat.
[[nodiscard]] std::string nft_ruleset(const Node& n);

}  // namespace labctl
