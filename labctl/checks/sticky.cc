// sticky: source hashing (sh, mh), destination hashing (dh, lblc, lblcr) and persistence
// each promise that some group of requests always lands on one real server. The check sends
// `requests` GETs from each source address in turn and judges by who answered, against the
// promise of the scheduler and persistence the director's IPVS table has now; for a
// persistent service, each server that kept a client must also hold persistence templates
// in the director's table (the kernel's own record of "this client belongs here").
#include <set>

#include "labctl/checks/check_kind.h"
#include "labctl/checks/diagnose.h"
#include "labctl/checks/sched_judge.h"

namespace labctl::check_kind {
namespace {

// The sources to send from: the check's `sources`, else every address of `from` in the
// VIP's family (lo excluded), in file order.
std::vector<IpAddr> sources_of(const Topology& t, const Check& c) {
  std::vector<IpAddr> out;
  if (c.params.has("sources")) return c.params.addresses("sources");
  if (const Node* n = t.node(c.from))
    for (const auto& i : n->interfaces)
      for (const auto& p : i.addresses)
        if (p.addr.family == c.to.family && !p.addr.loopback()) out.push_back(p.addr);
  return out;
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += "; " + x;
  return s;
}

CheckResult sticky(Ctx& ctx, const Check& c) {
  ServiceRef f = ctx.t.service(c.service);
  if (!f.service) return failed(c, "no service " + c.service);
  auto live = live_service(ctx, *f.director, *f.service);
  if (!live) return failed(c, live.error().str());
  const std::string& sched = live->service.scheduler;
  const bool persistent = (live->service.flags & 0x1) != 0;  // IP_VS_SVC_F_PERSISTENT
  const sched::Stickiness promise = sched::stickiness(sched, persistent);
  std::map<std::string, int> weights;  // by name, not in the kernel's list order
  for (const auto& d : live->dests) weights[who_has(ctx.t, d.addr)] = d.weight;
  std::string table;
  for (const auto& [who, w] : weights) table += (table.empty() ? "" : ", ") + who + " " + std::to_string(w);
  const std::string source_text =
      "the director's IPVS table: " + sched +
      (persistent ? ", persistent " + std::to_string(live->service.timeout) + " s" : "") +
      (table.empty() ? ", no real servers" : ", weights " + table);

  const std::vector<IpAddr> sources = sources_of(ctx.t, c);
  if (sources.empty()) return failed(c, "node " + c.from + " has no address to send from; " + source_text);
  const int per = static_cast<int>(c.params.integer("requests"));
  const int planned = per * static_cast<int>(sources.size());
  std::vector<sched::SourceAnswers> answers;
  for (const auto& s : sources) answers.push_back({s.str(), sched::persistence_client(s, live->service.netmask), {}, 0});
  int sent = 0, failed_n = 0;
  std::string last_error, stopped;
  Status st = ctx.in(c.from, [&]() -> Status {
    // One source after another, never interleaved: rr over three servers with three
    // interleaved sources would send each source to one server and look sticky.
    for (size_t i = 0; i < sources.size() && stopped.empty(); ++i)
      for (int k = 0; k < per && stopped.empty(); ++k) {
        if (ctx.deadline.over()) {
          stopped = ctx.deadline.ran_out();
          break;
        }
        HttpGetOptions o;
        o.source = sources[i];
        auto body = patiently(ctx.deadline, [&](Millis timeout) {
          return http_get(c.to, c.port ? c.port : 80, c.params.text("path"), timeout, o);
        });
        ++sent;
        if (body) {
          ++answers[i].servers[*body];
        } else {
          ++answers[i].failed, ++failed_n;
          const std::string e = body.error().str();
          last_error = e.substr(0, e.find('\n'));
        }
        ctx.report(std::to_string(sent) + " of " + std::to_string(planned) + " requests" +
                   (failed_n ? ", " + std::to_string(failed_n) + " failed" : ""));
        if (sent - failed_n == 0 && failed_n >= kUnreachableAfter)
          stopped = "the first " + std::to_string(failed_n) + " requests all failed";
        else if (failed_n >= kFailuresConclusive)
          stopped = std::to_string(failed_n) + " requests failed";
        else if (promise != sched::Stickiness::None && !sched::sticky_problems(promise, sched, answers).empty())
          stopped = "a group of requests already reached two servers";
      }
    return {};
  });
  if (!st) return failed(c, st.error().str());

  std::string seen;
  for (const auto& a : answers) {
    if (a.servers.empty() && a.failed == 0) continue;
    std::string per_source;
    for (const auto& [who, n] : a.servers) per_source += (per_source.empty() ? "" : ", ") + who + " " + std::to_string(n);
    seen += (seen.empty() ? "" : ", ") + a.source + " -> " + (per_source.empty() ? "none" : per_source);
    if (a.failed) seen += " (" + std::to_string(a.failed) + " failed)";
  }
  CheckResult r = verdict(c, false, (seen.empty() ? "no answers" : seen) + " of " + std::to_string(sent) +
                                        (sent != planned ? " sent (of " + std::to_string(planned) + " planned)" : ""));
  if (failed_n) r.detail += ", " + std::to_string(failed_n) + " failed (last: " + last_error + ")";
  if (!stopped.empty()) r.detail += "; stopped early: " + stopped;
  r.detail += "; " + source_text;
  std::vector<std::string> why = sched::sticky_problems(promise, sched, answers);
  if (persistent && why.empty() && sent > failed_n) {
    // The kernel's side of persistence: a template per client, counted on its server.
    auto after = live_service(ctx, *f.director, *f.service);
    if (after) {
      std::map<std::string, uint32_t> templates;
      for (const auto& d : after->dests) templates[who_has(ctx.t, d.addr)] = d.persist_conns;
      std::set<std::string> kept;
      for (const auto& a : answers)
        for (const auto& [who, n] : a.servers) kept.insert(who);
      std::string held;
      for (const auto& who : kept) {
        const uint32_t n = templates.count(who) ? templates[who] : 0;
        held += (held.empty() ? "" : ", ") + who + " " + std::to_string(n);
        if (n == 0) why.push_back(who + " kept a client, but the director holds no persistence template for it");
      }
      r.detail += "; persistence templates in the director's table: " + held;
    }
  }
  r.passed = why.empty() && failed_n == 0 && sent == planned;
  if (!why.empty()) {
    r.detail += joined(why);
    if (std::string note = reused_ports(ctx, *f.director, *f.service, *live, c.from); !note.empty())
      r.detail += "; " + note;
  } else if (r.passed) r.detail += "; " + sched::promise_text(promise, sched) + ": kept";
  return r;
}

}  // namespace

extern const KindRun sticky_kind{"sticky", sticky, diagnose_lvs, {.scheduler = true}};

}  // namespace labctl::check_kind
