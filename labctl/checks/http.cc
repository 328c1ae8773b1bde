#include "labctl/checks/check_kind.h"


namespace labctl::check_kind {

CheckResult http(Ctx& ctx, const Check& c) {
  CheckResult r;
  int failed = 0;
  // Enough requests that a balanced service shows each expected body at least once.
  int n = std::max<int>(4, 2 * static_cast<int>(c.expect.size()));
  auto counts = http_counts(ctx, c, n, &failed);
  if (!counts) return {c.name, c.kind, false, "GET http://" + target_of(c) + " from " + c.from + ": " + counts.error().str(), 0};
  r.detail = "GET http://" + target_of(c) + " x" + std::to_string(n) + ": " + counts_text(*counts);
  if (failed) r.detail += ", " + std::to_string(failed) + " failed";
  r.passed = failed == 0;
  if (!c.expect.empty()) {
    bool any = false;
    for (const auto& [body, k] : *counts)
      for (const auto& e : c.expect)
        if (body.find(e) != std::string::npos) any = true;
    if (!any) r.passed = false, r.detail += "; none contained an expected body";
  }
  return r;
}

}  // namespace labctl::check_kind
