// Running a lab's checks: assertions that prove a live lab behaves as LVS theory says.
// Each check runs its traffic from inside its `from` node's namespace and reads the
// kernel's own view (IPVS counters, neighbour tables) to judge it.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "labctl/base/error.h"
#include "labctl/model/topology.h"

namespace labctl {

/// A likely reason a check failed, found by reading the lab back from the kernel, with the
/// topology line that would fix it.
struct Cause {
  std::string node;  ///< The node where the cause was found.
  std::string what;  ///< "rs1 answers ARP for the VIP 10.10.0.100: arp_ignore is 0 on eth0".
  std::string fix;   ///< "[nodes.rs1.sysctl] net.ipv4.conf.all.arp_ignore = 1".
};

struct CheckResult {
  std::string name;
  std::string kind;
  bool passed = false;
  std::string detail;  ///< What was seen: "rs1 30, rs2 30 (expected 50% each ±25%)".
  double ms = 0;
  std::vector<Cause> causes;  ///< For a failed check: what in the lab explains it, if found.
};

struct CheckReport {
  std::string lab;
  std::vector<CheckResult> results;
  [[nodiscard]] bool passed() const;
};

/// Fails, naming it with a did-you-mean hint, when a name in `only` is none of the lab's
/// checks: `labctl check LAB typo` must never run nothing and call that a pass.
[[nodiscard]] Status check_names_known(const Topology& t, const std::vector<std::string>& only);

/// Runs the lab's checks in file order (only those named in `only`, when not empty).
/// Errors only when the lab is not up; a failing check is a result, not an error.
[[nodiscard]] Result<CheckReport> run_checks(const Topology& t,
                                             const std::vector<std::string>& only = {});

[[nodiscard]] std::string render_checks(const CheckReport& r);
[[nodiscard]] nlohmann::json checks_json(const CheckReport& r);

/// Expected share of requests per real server for a balance check: equal for rr, by weight
/// for weighted and least-connection schedulers; empty when the scheduler (or persistence)
/// sends one client to a single server. Servers of weight 0 get nothing.
[[nodiscard]] std::vector<double> expected_shares(const VirtualService& s);

}  // namespace labctl
