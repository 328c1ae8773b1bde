#include "labctl/checks/check_kind.h"
#include "labctl/checks/diagnose.h"
#include "labctl/checks/proxy_ports.h"

#include <algorithm>

namespace labctl::check_kind {
namespace {

CheckResult http(Ctx& ctx, const Check& c) {
  CheckResult r;
  // Enough requests that a balanced service shows each expected body at least once.
  int n = std::max<int>(4, 2 * static_cast<int>(c.expect.size()));
  auto q = send_requests(ctx, c, n);
  if (!q) return failed(c, exchange_name(c) + " from " + c.from + ": " + q.error().str());
  r.detail = exchange_name(c) + " x" + std::to_string(n) + ": " + q->text();
  r.passed = q->failed == 0 && q->sent == n;
  if (!c.expect.empty() && q->answered()) {
    bool any = false;
    for (const auto& [body, k] : q->counts)
      for (const auto& e : c.expect)
        if (body.find(e) != std::string::npos) any = true;
    if (!any) r.passed = false, r.detail += "; none contained an expected body";
  }
  return r;
}

}  // namespace

extern const KindRun http_kind{"http", http, diagnose_through_proxies, {}};

}  // namespace labctl::check_kind
