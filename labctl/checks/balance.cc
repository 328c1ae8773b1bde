#include "labctl/checks/check_kind.h"

#include <cmath>

namespace labctl::check_kind {

CheckResult balance(Ctx& ctx, const Check& c) {
  CheckResult r;
  Found f = find_service(ctx.t, c.service);
  if (!f.service) return {c.name, c.kind, false, "no service " + c.service, 0};
  const auto& svc = *f.service;
  const int n = param_int(c, "requests", 60);
  const double tol = param_double(c, "tolerance", 0.25);
  int failed = 0;
  auto counts = http_counts(ctx, c, n, &failed);
  if (!counts) return {c.name, c.kind, false, counts.error().str(), 0};
  r.detail = counts_text(*counts) + " of " + std::to_string(n);
  if (failed) r.detail += " (" + std::to_string(failed) + " failed)";
  auto shares = expected_shares(svc);
  r.passed = failed == 0;
  if (shares.empty()) {
    // Source hashing or persistence: one client always lands on the same server.
    r.passed = r.passed && counts->size() == 1;
    r.detail += counts->size() == 1 ? "; one client sticks to one server, as " + svc.scheduler +
                                          (svc.persistence ? " with persistence" : "") + " should"
                                    : "; expected a single server for one client";
    return r;
  }
  std::string why;
  for (size_t i = 0; i < svc.real_servers.size(); ++i) {
    const auto& rs = svc.real_servers[i];
    const std::string who = rs.node.empty() ? rs.addr.str() : rs.node;
    const int got = counts->count(who) ? counts->at(who) : 0;
    const double want = shares[i] * n;
    if (shares[i] == 0) {
      if (got) why += "; " + who + " has weight 0 but answered";
      continue;
    }
    if (got == 0) why += "; " + who + " never answered";
    else if (std::abs(got - want) > tol * want)
      why += "; " + who + " got " + std::to_string(got) + ", expected about " +
             std::to_string(static_cast<int>(std::lround(want)));
  }
  if (!why.empty()) r.passed = false, r.detail += why;
  else r.detail += "; within " + std::to_string(static_cast<int>(tol * 100)) + "% of " + svc.scheduler + "'s share";
  return r;
}

}  // namespace labctl::check_kind
