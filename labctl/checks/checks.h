// Running a lab's checks: assertions that prove a live lab behaves as LVS theory says.
// Each check runs its traffic from inside its `from` node's namespace and reads the
// kernel's own view (IPVS counters, neighbour tables) to judge it.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
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
  std::string expected;       ///< What passing means for its kind (check_expectation()).
  double deadline_ms = 0;     ///< The deadline it ran under.
};

struct CheckReport {
  std::string lab;
  std::vector<CheckResult> results;
  [[nodiscard]] bool passed() const;
};

/// Fails, naming it with a did-you-mean hint, when a name in `only` is none of the lab's
/// checks: `labctl check LAB typo` must never run nothing and call that a pass.
[[nodiscard]] Status check_names_known(const Topology& t, const std::vector<std::string>& only);

struct CheckOptions {
  std::vector<std::string> only;  ///< Run only these checks (by name); all when empty.
  /// Replaces every check's own deadline (`timeout` key, else its kind's default).
  std::optional<std::chrono::milliseconds> timeout;
  /// Called with each verdict as soon as it is reached, before the next check starts.
  std::function<void(const CheckResult&)> on_result;
  /// Called while a check runs with what it is doing ("12 of 40 requests") and for how
  /// long it has run; the caller decides whether and how to show it.
  std::function<void(const Check&, const std::string& what, std::chrono::milliseconds elapsed)>
      on_progress;
  /// In a lab across hosts: runs `labctl ARGS...` on another host and returns what it
  /// printed, so a check reads nodes of other hosts (the director's IPVS table, a node's
  /// /proc/net); empty: every node a check reads must be on this host.
  std::function<Result<std::string>(const std::string& host, const std::vector<std::string>& args)> on_host;
};

/// The time a check of this kind gets by default (docs/checks.md has the table).
[[nodiscard]] std::chrono::milliseconds default_deadline(const std::string& kind);
/// The check's own deadline: its `timeout` key, else its kind's default.
[[nodiscard]] std::chrono::milliseconds check_deadline(const Check& c);
/// What passing means for a kind of check: "every real server answers in the scheduler's
/// proportions". Used as the "expected" half of a failure message.
[[nodiscard]] std::string check_expectation(const std::string& kind);

/// Runs the lab's checks in file order, each under its deadline. Errors only when a name in
/// `only` is unknown or the lab is not up; a failing check is a result, not an error.
[[nodiscard]] Result<CheckReport> run_checks(const Topology& t, const CheckOptions& o);
[[nodiscard]] Result<CheckReport> run_checks(const Topology& t,
                                             const std::vector<std::string>& only = {});

/// One verdict as printed: "  PASS  name (kind): detail", plus its causes and fixes.
[[nodiscard]] std::string render_check(const CheckResult& r);
/// The closing line: "dr-demo: 4 of 5 checks passed in 2.1 s".
[[nodiscard]] std::string render_summary(const CheckReport& r);
[[nodiscard]] std::string render_checks(const CheckReport& r);
[[nodiscard]] nlohmann::json checks_json(const CheckReport& r);
/// The report checks_json wrote (another labctl's `check --json`, for `labctl test`); an
/// error naming what is missing when `j` is not one.
[[nodiscard]] Result<CheckReport> check_report_from_json(const nlohmann::json& j);

/// Expected share of requests per real server for a balance check: equal for rr, by weight
/// for weighted and least-connection schedulers; empty when the scheduler (or persistence)
/// sends one client to a single server. Servers of weight 0 get nothing.
[[nodiscard]] std::vector<double> expected_shares(const std::string& scheduler, bool persistent,
                                                  const std::vector<int>& weights);
/// The same for a service as the topology declares it.
[[nodiscard]] std::vector<double> expected_shares(const VirtualService& s);

}  // namespace labctl
