#include "labctl/checks/check_kind.h"

#include <thread>

namespace labctl::check_kind {

static Result<IpvsStats> service_stats(Ctx& ctx, const Node& director, const VirtualService& svc) {
  IpvsStats out;
  bool found = false;
  TRY(ctx.in(director.name, [&]() -> Status {
    TRY_ASSIGN(Ipvs ipvs, Ipvs::open(netns_name(ctx.t.name, director.name)));
    TRY_ASSIGN(auto services, ipvs.services());
    for (const auto& s : services)
      if ((svc.fwmark && s.fwmark == svc.fwmark) ||
          (!svc.fwmark && s.addr == svc.vip && s.port == svc.port)) {
        out = s.stats;
        found = true;
      }
    return {};
  }));
  if (!found) return fail("service " + svc.name + " is not in the director's IPVS table");
  return out;
}

CheckResult bypass(Ctx& ctx, const Check& c) {
  Found f = find_service(ctx.t, c.service);
  if (!f.service) return {c.name, c.kind, false, "no service " + c.service, 0};
  auto before = service_stats(ctx, *f.director, *f.service);
  if (!before) return {c.name, c.kind, false, before.error().str(), 0};
  int failed = 0;
  const int n = param_int(c, "requests", 20);
  auto counts = http_counts(ctx, c, n, &failed);
  if (!counts) return {c.name, c.kind, false, counts.error().str(), 0};
  // Wait for the estimator to publish the requests we just sent.
  IpvsStats now = *before;
  for (auto end = Clock::now() + kCounterSettle; Clock::now() < end; std::this_thread::sleep_for(100ms)) {
    auto s = service_stats(ctx, *f.director, *f.service);
    if (!s) return {c.name, c.kind, false, s.error().str(), 0};
    now = *s;
    if (now.inpkts > before->inpkts) break;
  }
  CheckResult r;
  const uint64_t in = now.inpkts - before->inpkts, out = now.outpkts - before->outpkts;
  r.detail = std::to_string(n) + " requests: the director forwarded " + std::to_string(in) +
             " packets in and " + std::to_string(out) + " out";
  r.passed = in > 0 && out == 0;
  if (in == 0) r.detail += "; the director's counters never moved (did traffic reach it?)";
  else if (out) r.detail += "; replies went back through the director";
  else r.detail += ": replies bypassed it";
  return r;
}

}  // namespace labctl::check_kind
