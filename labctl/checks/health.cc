// health: a real server's agent stops; keepalived's health checker must take the server
// out of every director's IPVS table (or leave it at weight 0 with inhibit_on_failure),
// and put it back once the agent runs again. The tables are read from each director's
// kernel, not from keepalived or labctl.
#include <algorithm>
#include <thread>

#include "labctl/checks/check_kind.h"
#include "labctl/checks/diagnose.h"
#include "labctl/lab/agent_control.h"
#include "labctl/model/agent_spec.h"
#include "labctl/model/keepalived.h"

namespace labctl::check_kind {
namespace {

constexpr Millis kPollEvery{100};

// "in" (weight > 0), "inhibited" (weight 0) or "out" of `director`'s table for the service.
Result<std::string> presence(Ctx& ctx, const Node& director, const VirtualService& svc,
                             const IpAddr& addr, uint16_t port) {
  TRY_ASSIGN(LiveService live, live_service(ctx, director, svc));
  for (const auto& d : live.dests)
    if (d.addr == addr && d.port == port) return std::string(d.weight > 0 ? "in" : "inhibited");
  return std::string("out");
}

CheckResult health(Ctx& ctx, const Check& c) {
  ServiceRef f = ctx.t.service(c.service);
  if (!f.service) return failed(c, "no service " + c.service);
  const std::string& server = c.params.text("server");
  const RealServer* rs = nullptr;
  for (const auto& r : f.service->real_servers)
    if (r.node == server) rs = &r;
  const Node* rsn = ctx.t.node(server);
  if (!rs || !rsn) return failed(c, server + " is not a real server of " + c.service);
  const uint16_t port = rs->port ? rs->port : f.service->port;
  const Agent* agent = nullptr;
  for (const auto& a : rsn->agents)
    if (a.port == port && !topo::agent_is_client(a)) agent = &a;
  if (!agent) return failed(c, server + " has no agent on port " + std::to_string(port));
  std::vector<const Node*> directors;
  bool inhibit = false;
  for (const auto& r : keepalived_agents_of(ctx.t, c.service)) {
    if (std::find(directors.begin(), directors.end(), r.node) == directors.end())
      directors.push_back(r.node);
    for (const auto& ks : r.agent->keepalived->services)
      if (ks.name == c.service && ks.inhibit_on_failure) inhibit = true;
  }
  if (directors.empty()) return failed(c, "service " + c.service + " is not managed by keepalived");
  const std::string who = server + " (" + rs->addr.str() + ":" + std::to_string(port) + ")";
  const std::string gone = inhibit ? "inhibited" : "out";

  // Every director's table, one word per director: "dir1 in, dir2 in".
  auto table = [&](std::string& text) -> Result<std::vector<std::string>> {
    std::vector<std::string> out;
    text.clear();
    for (const Node* d : directors) {
      TRY_ASSIGN(std::string p, presence(ctx, *d, *f.service, rs->addr, port));
      out.push_back(p);
      text += (text.empty() ? "" : ", ") + d->name + ": " + p;
    }
    return out;
  };
  auto all_are = [](const std::vector<std::string>& v, const std::string& want) {
    return std::all_of(v.begin(), v.end(), [&](const std::string& s) { return s == want; });
  };
  const auto ms = [](Clock::duration d) {
    return std::to_string(std::chrono::duration_cast<Millis>(d).count());
  };

  std::string text;
  auto before = table(text);
  if (!before) return failed(c, "reading the directors' IPVS tables: " + before.error().str());
  if (!all_are(*before, "in"))
    return failed(
        c, who +
               " is not an active real server in every director's IPVS table before its agent "
               "stops (" +
               text + "): keepalived's check already fails it, or it never added it");

  // Waits until every director shows `want`; the time it took, or nullopt at `until`.
  auto await = [&](const std::string& want, Clock::time_point from,
                   Clock::time_point until) -> std::optional<Clock::duration> {
    while (Clock::now() < until) {
      auto now = table(text);
      if (now && all_are(*now, want)) return Clock::now() - from;
      std::this_thread::sleep_for(kPollEvery);
    }
    return std::nullopt;
  };

  const auto stopped_at = Clock::now();
  if (Status s = stop_agent_of(ctx, server, agent->name, 5s); !s)
    return failed(c, "stopping " + server + ":" + agent->name + ": " + s.error().str());
  ctx.report("stopped " + server + ":" + agent->name);
  auto left = await(gone, stopped_at, ctx.deadline.end);
  std::string detail;
  bool ok = true;
  if (!left) {
    ok = false;
    detail = "after " + server + ":" + agent->name + " stopped, " + who +
             " stayed in the IPVS table (" + text + ", expected " + gone + " everywhere) for " +
             ms(Clock::now() - stopped_at) + " ms: keepalived's health check does not notice it";
  } else {
    detail = who +
             (inhibit ? " stayed in every director's IPVS table at weight 0 ("
                      : " left every director's IPVS table (") +
             text + ") " + ms(*left) + " ms after " + server + ":" + agent->name + " stopped";
  }
  // Restoring is not cut short by the deadline: the lab must be left as it was found.
  const auto started_at = Clock::now();
  if (Status s = start_agent_of(ctx, server, agent->name); !s)
    return failed(c, detail + "; starting " + server + ":" + agent->name +
                         " again failed: " + s.error().str());
  auto back = await("in", started_at, std::max(ctx.deadline.end, started_at + 10s));
  if (!back)
    return failed(c, detail + "; after " + server + ":" + agent->name + " was started again " +
                         who + " did not return (" + text + ")");
  detail += "; it returned " + ms(*back) + " ms after the agent was started again";
  return verdict(c, ok, detail);
}

}  // namespace

extern const KindRun health_kind{"health", health, diagnose_lvs, {}};

}  // namespace labctl::check_kind
