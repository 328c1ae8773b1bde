// least-conn: lc, wlc, sed and nq promise that each new connection goes to the real server
// with the fewest connections (per weight). The check makes the load uneven on purpose: it
// holds `hold` connections open (each gets its answer, then stays open on the client's
// side, so a DR or TUN director, which never sees the server's half, keeps counting it
// active), then opens `requests` short ones. Before every connection it reads the
// director's own counters (IpvsDest active/inactive) and computes which servers the
// kernel's rule allows; the server that answers must be one of them. Nothing here trusts
// labctl's records: the numbers are the kernel's and the verdict is the answers'.
#include <algorithm>
#include <optional>
#include <thread>

#include "labctl/checks/check_kind.h"
#include "labctl/checks/diagnose.h"
#include "labctl/checks/sched_judge.h"

namespace labctl::check_kind {
namespace {

// A connection that expired (or closed) between the two reads around a request changes
// the counts the rule was computed from: such a request proves nothing either way.
constexpr int kMaxUnjudged = 3;

uint64_t active_sum(const std::vector<sched::DestLoad>& v) {
  uint64_t n = 0;
  for (const auto& d : v) n += d.active;
  return n;
}

const sched::DestLoad* find(const std::vector<sched::DestLoad>& v, const std::string& who) {
  for (const auto& d : v)
    if (d.who == who) return &d;
  return nullptr;
}

std::string counts_text(const std::map<std::string, int>& m) {
  std::string s;
  for (const auto& [who, n] : m) s += (s.empty() ? "" : ", ") + who + " " + std::to_string(n);
  return s.empty() ? "none" : s;
}

std::string names_text(const std::vector<std::string>& v) {
  if (v.empty()) return "none (no server of weight > 0)";
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i == 0 ? "" : i + 1 == v.size() ? " or " : ", ") + v[i];
  return s;
}

CheckResult least_conn(Ctx& ctx, const Check& c) {
  ServiceRef f = ctx.t.service(c.service);
  if (!f.service) return failed(c, "no service " + c.service);
  auto live = live_service(ctx, *f.director, *f.service);
  if (!live) return failed(c, live.error().str());
  const std::string sched = live->service.scheduler;
  const std::string rule = sched::counts_connections(sched) ? sched : "wlc";

  // One socket in the director's namespace, read from the client's thread: a socket stays
  // in the namespace it was opened in. A director on another host is read there instead
  // (its table through `labctl ipvs --json`, a few tens of milliseconds a read).
  std::optional<Ipvs> ipvs;
  if (!ctx.remote_host(f.director->name)) {
    Status opened = ctx.in(f.director->name, [&]() -> Status {
      TRY_ASSIGN(Ipvs x, Ipvs::open(netns_name(ctx.t.name, f.director->name)));
      ipvs.emplace(std::move(x));
      return {};
    });
    if (!opened) return failed(c, opened.error().str());
  }
  auto read = [&]() -> Result<std::vector<sched::DestLoad>> {
    std::vector<IpvsDest> dests;
    if (ipvs) {
      TRY_ASSIGN(dests, ipvs->dests(*f.service));
    } else {
      TRY_ASSIGN(LiveService now, live_service(ctx, *f.director, *f.service));
      dests = std::move(now.dests);
    }
    std::vector<sched::DestLoad> out;
    for (const auto& d : dests)
      out.push_back({who_has(ctx.t, d.addr), d.weight, d.active_conns, d.inact_conns, d.u_thresh, d.l_thresh});
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.who < b.who; });
    return out;
  };
  // The counts to start from, once they stand still: connections an earlier check closed
  // a moment ago may still be leaving ESTABLISHED.
  auto base = read();
  for (int i = 0; i < 20 && base; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    auto again = read();
    const bool still = again && active_sum(*again) == active_sum(*base);
    base = std::move(again);
    if (still) break;
  }
  if (!base) return failed(c, base.error().str());
  if (base->empty())
    return failed(c, "the director's IPVS table has no real servers for " + ipvs::service_name(*f.service));

  const int hold = static_cast<int>(c.params.integer("hold"));
  const int n = static_cast<int>(c.params.integer("requests"));
  const int planned = hold + n;
  std::vector<Fd> held;
  std::map<std::string, int> held_by, new_by;
  int sent = 0, failed_n = 0, unjudged = 0;
  std::string last_error, stopped, violation;
  std::vector<sched::DestLoad> last_before;
  Status st = ctx.in(c.from, [&]() -> Status {
    while (sent < planned) {
      if (ctx.deadline.over()) {
        stopped = ctx.deadline.ran_out();
        break;
      }
      // The previous short connection must have left ESTABLISHED in the director's eyes
      // (the client's FIN passed it), so the counts are the ones the next SYN will meet.
      const uint64_t want_active = active_sum(*base) + held.size();
      std::vector<sched::DestLoad> before;
      for (;;) {
        TRY_ASSIGN(before, read());
        if (active_sum(before) <= want_active) break;
        if (ctx.deadline.over()) {
          stopped = "the director counts " + std::to_string(active_sum(before)) +
                    " active connections, expected " + std::to_string(want_active) + " (" +
                    std::to_string(held.size()) + " held by this check); " + ctx.deadline.ran_out();
          return {};
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      const bool keep = sent < hold;
      const std::vector<std::string> allowed = sched::least_loaded(rule, before);
      Fd conn;
      HttpGetOptions o;
      if (keep) o.keep = &conn;
      auto body = patiently(ctx.deadline, [&](Millis timeout) {
        return http_get(c.to, c.port ? c.port : 80, c.params.text("path"), timeout, o);
      });
      ++sent;
      ctx.report(std::to_string(sent) + " of " + std::to_string(planned) + " connections" +
                 (failed_n ? ", " + std::to_string(failed_n) + " failed" : ""));
      if (!body) {
        ++failed_n;
        const std::string e = body.error().str();
        last_error = e.substr(0, e.find('\n'));
        if (sent - failed_n == 0 && failed_n >= kUnreachableAfter)
          stopped = "the first " + std::to_string(failed_n) + " connections all failed";
        else if (failed_n >= kFailuresConclusive)
          stopped = std::to_string(failed_n) + " connections failed";
        if (!stopped.empty()) break;
        continue;
      }
      if (keep) {
        held.push_back(std::move(conn));
        ++held_by[*body];
      } else {
        ++new_by[*body];
      }
      last_before = before;
      if (std::find(allowed.begin(), allowed.end(), *body) != allowed.end()) continue;
      TRY_ASSIGN(auto after, read());
      if (!sched::only_this_connection(before, after, *body)) {
        // Something else changed the counts meanwhile (an old connection expired): this
        // one proves nothing; too many such and the table is too busy to judge.
        if (++unjudged > kMaxUnjudged) {
          violation = "the director's counts kept changing under the check (" + std::to_string(unjudged) +
                      " connections could not be judged): are other clients using " +
                      ipvs::service_name(*f.service) + "?";
          break;
        }
        continue;
      }
      violation = "connection " + std::to_string(sent) + " (" + (keep ? "held" : "new") + ") went to " +
                  *body + ", but with " + sched::loads_text(before) +
                  " (active/inactive in the director's table) " + rule + " allows only " + names_text(allowed);
      break;
    }
    return {};
  });
  if (!st) return failed(c, st.error().str());

  CheckResult r = verdict(c, false, "");
  r.detail = "held " + std::to_string(held.size()) + ": " + counts_text(held_by) + "; new " +
             std::to_string(sent - failed_n - static_cast<int>(held.size())) + ": " + counts_text(new_by) +
             " of " + std::to_string(sent) + (sent != planned ? " sent (of " + std::to_string(planned) + " planned)" : "");
  if (failed_n) r.detail += ", " + std::to_string(failed_n) + " failed (last: " + last_error + ")";
  if (!stopped.empty()) r.detail += "; stopped early: " + stopped;
  std::vector<std::string> why;
  if (!violation.empty()) why.push_back(violation);
  if (!sched::counts_connections(sched))
    why.push_back("the director's scheduler is " + sched +
                  ", which does not pick by connections (lc, wlc, sed and nq do); judged by wlc's rule");
  // The answers and the kernel must agree on where the held connections are.
  if (violation.empty() && !held.empty()) {
    auto now = read();
    // The last short connection leaves ESTABLISHED when its FIN passes the director.
    while (now && active_sum(*now) > active_sum(*base) + held.size() && !ctx.deadline.over()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      now = read();
    }
    if (now) {
      std::string counted;
      for (const auto& d : *now) {
        const sched::DestLoad* b = find(*base, d.who);
        const long more = static_cast<long>(d.active) - static_cast<long>(b ? b->active : 0);
        counted += (counted.empty() ? "" : ", ") + d.who + " " + std::to_string(more);
        const int answered = held_by.count(d.who) ? held_by.at(d.who) : 0;
        if (more != answered)
          why.push_back("the director counts " + std::to_string(more) + " more active connections on " + d.who +
                        " than before, but " + std::to_string(answered) + " held connections were answered by it");
      }
      r.detail += "; the director counts the held ones active: " + counted;
    }
  }
  r.passed = why.empty() && failed_n == 0 && sent == planned;
  for (const auto& w : why) r.detail += "; " + w;
  if (r.passed)
    r.detail += "; every connection went to a server " + rule + " allows by the director's counts" +
                (last_before.empty() ? "" : " (before the last: " + sched::loads_text(last_before) + ", active/inactive)") +
                (unjudged ? "; " + std::to_string(unjudged) + " not judged (the counts changed meanwhile)" : "");
  return r;
}

}  // namespace

extern const KindRun least_conn_kind{"least-conn", least_conn, diagnose_lvs, {.scheduler = true}};

}  // namespace labctl::check_kind
