#include "labctl/checks/check_kind.h"
#include "labctl/checks/diagnose.h"

namespace labctl::check_kind {
namespace {

// A probe bounded by the deadline: a UDP exchange or banner read when the check says so,
// else a TCP connect when there is a port, else an ICMP echo. A probe that got no answer in
// its time is sent again, with twice the time, while the deadline allows: on a loaded
// machine or a slow link (delay = "300ms") one late answer is not "unreachable", and
// no-reach passes only when nothing answered in its whole window. A definite answer
// (refused, unreachable) decides at once.
CheckResult reach(Ctx& ctx, const Check& c, bool want) {
  CheckResult r;
  const bool udp = c.params.udp(), banner = c.params.has("banner");
  std::string answer;
  auto once = [&](Millis timeout) -> Status {
    if (udp || banner) {
      TRY_ASSIGN(answer, exchange(c, c.to, timeout));
      return {};
    }
    return c.port ? tcp_connect(c.to, c.port, timeout) : icmp_echo(c.to, timeout);
  };
  Status st = ctx.in(c.from, [&]() -> Status { return patiently(ctx.deadline, once); });
  const std::string how = udp || banner ? exchange_name(c)
                          : c.port      ? "TCP connect to " + target_of(c)
                                        : "ping " + c.to_text;
  r.passed = static_cast<bool>(st) == want;
  r.detail = st ? how + " from " + c.from + " succeeded" : how + " from " + c.from + " failed: " + st.error().str();
  if (st && !answer.empty()) r.detail += " (" + shown(answer, 60) + ")";
  if (!want && st) r.detail += " (it must not)";
  return r;
}

}  // namespace

extern const KindRun reach_kind{
    "reach", [](Ctx& ctx, const Check& c) { return reach(ctx, c, true); }, diagnose_lvs, {}};
// A failed no-reach reached its target: no missing lab line explains that, so no diagnosis.
extern const KindRun no_reach_kind{
    "no-reach", [](Ctx& ctx, const Check& c) { return reach(ctx, c, false); }, nullptr, {}};

}  // namespace labctl::check_kind
