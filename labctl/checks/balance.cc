#include "labctl/checks/check_kind.h"
#include "labctl/checks/diagnose.h"
#include "labctl/checks/sched_judge.h"

#include <algorithm>
#include <cmath>

namespace labctl::check_kind {
namespace {

struct Server {
  std::string who;  ///< The node whose HTTP agent answers with its name, or the address.
  int weight = 0;
  double share = 0;
};

std::vector<std::string> share_problems(const std::vector<Server>& servers, const Requests& q,
                                        double tol) {
  std::vector<sched::Share> shares;
  for (const auto& s : servers) shares.push_back({s.who, s.share});
  return sched::share_problems(shares, q.counts, q.sent, q.planned, tol);
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += "; " + x;
  return s;
}

// "; " and the director's entries a reused client port follows past the scheduler, if any.
std::string reused(Ctx& ctx, const Check& c, const ServiceRef& f, const LiveService& live) {
  std::string note = reused_ports(ctx, *f.director, *f.service, live, c.from);
  return note.empty() ? "" : "; " + note;
}

// Judged by the director's IPVS table as it is now (scheduler, persistence, real servers
// and their weights), not the topology file: a live `ipvsadm -e ... -w 0` changes what is
// right.
CheckResult balance(Ctx& ctx, const Check& c) {
  CheckResult r;
  ServiceRef f = ctx.t.service(c.service);
  if (!f.service) return failed(c, "no service " + c.service);
  auto live = live_service(ctx, *f.director, *f.service);
  if (!live) return failed(c, live.error().str());
  if (live->dests.empty())
    return failed(c, "the director's IPVS table has no real servers for " + ipvs::service_name(*f.service));
  const std::string& sched = live->service.scheduler;
  const bool persistent = (live->service.flags & 0x1) != 0;  // IP_VS_SVC_F_PERSISTENT
  std::vector<Server> servers;
  for (const auto& d : live->dests) servers.push_back({who_has(ctx.t, d.addr), d.weight, 0});
  std::sort(servers.begin(), servers.end(), [](const Server& a, const Server& b) { return a.who < b.who; });
  std::vector<int> weights;
  std::string table;
  for (const auto& s : servers) {
    weights.push_back(s.weight);
    table += (table.empty() ? "" : ", ") + s.who + " " + std::to_string(s.weight);
  }
  const auto shares = expected_shares(sched, persistent, weights);
  for (size_t i = 0; i < shares.size(); ++i) servers[i].share = shares[i];
  const std::string source = "weights from the director's IPVS table (" + sched +
                             (persistent ? ", persistent" : "") + "): " + table;

  const int n = static_cast<int>(c.params.integer("requests"));
  const double tol = c.params.number("tolerance");
  auto q = send_requests(ctx, c, n, [&](const Requests& so_far) -> std::string {
    if (shares.empty())
      return so_far.counts.size() > 1 ? "answers came from more than one server" : "";
    auto why = share_problems(servers, so_far, tol);
    return why.empty() ? "" : "the share is already missed";
  });
  if (!q) return failed(c, q.error().str());
  r.detail = q->text() + "; " + source;
  r.passed = q->failed == 0 && q->sent == n;
  if (q->answered() == 0) return r;
  if (shares.empty()) {
    // Source hashing or persistence: one client always lands on the same server.
    const bool one = q->counts.size() == 1;
    r.passed = r.passed && one;
    r.detail += one ? "; one client sticks to one server, as " + sched +
                          (persistent ? " with persistence" : "") + " should"
                    : "; expected a single server for one client";
    if (!one) r.detail += reused(ctx, c, f, *live);
    return r;
  }
  auto why = share_problems(servers, *q, tol);
  if (why.empty() && !q->stopped.empty()) {
    // Stopped by failures before any share was missed: say who has not answered yet.
    std::string silent;
    for (const auto& s : servers)
      if (s.share > 0 && !q->counts.count(s.who)) silent += (silent.empty() ? "" : ", ") + s.who;
    if (!silent.empty()) why.push_back("no answer yet from " + silent);
  }
  if (!why.empty()) r.passed = false, r.detail += joined(why) + reused(ctx, c, f, *live);
  else if (r.passed)
    r.detail += tol == 0 ? "; exactly " + sched + "'s share"
                         : "; within " + std::to_string(static_cast<int>(std::lround(tol * 100))) + "% of " +
                               sched + "'s share";
  return r;
}

}  // namespace

extern const KindRun balance_kind{"balance", balance, diagnose_lvs, {}};

}  // namespace labctl::check_kind
