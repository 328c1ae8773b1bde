#include "labctl/checks/check_kind.h"


namespace labctl::check_kind {

CheckResult reach(Ctx& ctx, const Check& c, bool want) {
  CheckResult r;
  auto to = IpAddr::parse(c.to);
  if (!to) return {c.name, c.kind, false, "bad target address " + c.to, 0};
  Status st = ctx.in(c.from, [&] {
    return c.port ? tcp_connect(*to, c.port, kProbeTimeout) : icmp_echo(*to, kProbeTimeout);
  });
  const std::string how = c.port ? "TCP connect to " + target_of(c) : "ping " + c.to;
  r.passed = static_cast<bool>(st) == want;
  r.detail = st ? how + " from " + c.from + " succeeded" : how + " from " + c.from + " failed: " + st.error().str();
  if (!want && st) r.detail += " (it must not)";
  return r;
}

}  // namespace labctl::check_kind
