#include "labctl/checks/check_kind.h"
#include "labctl/checks/diagnose.h"

#include <thread>

namespace labctl::check_kind {
namespace {

// bypass and via-director: the director's IPVS counters before and after the check's
// requests. Packets in must rise; packets out must stay put (DR, TUN: replies go straight to
// the client) or rise too (NAT: replies are rewritten on their way back through it).
CheckResult director_replies(Ctx& ctx, const Check& c, bool want_out) {
  ServiceRef f = ctx.t.service(c.service);
  if (!f.service) return failed(c, "no service " + c.service);
  auto before = director_counters(ctx, *f.director, *f.service);
  if (!before) return failed(c, before.error().str());
  const int n = static_cast<int>(c.params.integer("requests"));
  auto q = send_requests(ctx, c, n);
  if (!q) return failed(c, q.error().str());
  CheckResult r;
  r.detail = exchange_name(c) + ": " + q->text();
  if (q->answered() == 0) {
    r.detail += "; with no answers there is nothing to judge";
    return r;
  }
  // The per-cpu counters are exact at once; the netlink ones wait for the estimator.
  DirectorCounters now = *before;
  for (;;) {
    auto s = director_counters(ctx, *f.director, *f.service);
    if (!s) return failed(c, s.error().str());
    now = *s;
    const bool moved = now.inpkts > before->inpkts && (!want_out || now.outpkts > before->outpkts);
    if (now.exact || moved || ctx.deadline.over()) break;
    ctx.report("waiting for the director's IPVS counters (the estimator lags about 2 s)");
    std::this_thread::sleep_for(std::min<Millis>(100ms, ctx.deadline.left()));
  }
  const uint64_t in = now.inpkts - before->inpkts, out = now.outpkts - before->outpkts;
  r.detail += "; the director counted " + std::to_string(in) + " packets in and " +
              std::to_string(out) + " out" +
              (now.exact ? " (exact per-cpu counters)" : " (estimator counters)");
  r.passed = q->failed == 0 && q->sent == n && in > 0 && (want_out ? out > 0 : out == 0);
  if (in == 0)
    r.detail += "; its counters never moved: the answers did not come through the director";
  else if (want_out)
    r.detail += out ? ": replies passed through it" : "; no reply passed through it";
  else
    r.detail += out ? "; replies went back through the director" : ": replies bypassed it";
  if (q->failed) r.detail += "; but " + std::to_string(q->failed) + " requests failed";
  return r;
}

}  // namespace

extern const KindRun bypass_kind{
    "bypass", [](Ctx& ctx, const Check& c) { return director_replies(ctx, c, false); }, diagnose_lvs,
    {}};
extern const KindRun via_director_kind{
    "via-director", [](Ctx& ctx, const Check& c) { return director_replies(ctx, c, true); },
    diagnose_lvs, {}};

}  // namespace labctl::check_kind
