// nftables rulesets applied through libnftables, nftables' own library: the parser and
// netlink code of the `nft` command, so the text `labctl up --dry-run` shows as `nft -f -`
// is exactly what is applied, and a ruleset goes to the kernel as one transaction (all of
// it or none). Hand-built libnftnl expressions would duplicate nft's grammar and its
// expression encoding for no gain.
#pragma once

#include <string>

#include "labctl/base/error.h"

namespace labctl {

/// Applies `ruleset` (nft syntax) in the calling thread's network namespace as one
/// transaction. `what` names the step for the error, which carries nft's own message and a
/// hint (a kernel without nf_tables, missing privileges).
[[nodiscard]] Status nft_apply(const std::string& ruleset, const std::string& what);

/// The hint for nft's error text (exposed for tests); "" when there is nothing to add.
[[nodiscard]] std::string nft_hint(const std::string& nft_error);

}  // namespace labctl
