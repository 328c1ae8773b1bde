#include <algorithm>
#include <optional>

#include "labctl/checks/check_kind.h"
#include "labctl/model/bounds.h"

namespace labctl::check_kind {
namespace {

/// ICMP echoes go out at this pace, as `ping -i 0.01` sends them: `count` of them take
/// count/100 s however long each round trip is.
constexpr Millis kEchoInterval{10};

struct Probes {
  std::vector<double> times;  ///< Round trips of the answered probes, in seconds.
  int lost = 0;
  std::string error;    ///< A probe that failed with an answer (refused, unreachable).
  std::string stopped;  ///< The deadline came before every probe was sent.
};

// One warm-up probe, sent again while it times out (patiently), so the first neighbour
// lookup and a path still settling do not count; its round trip sets the others' patience.
Status warm_up(Deadline& d, const Check& c) {
  const auto sent = Clock::now();
  Status st = patiently(d, [&](Millis timeout) {
    return c.port ? tcp_connect(c.to, c.port, timeout) : icmp_echo(c.to, timeout);
  });
  if (st) d.answered_after(std::chrono::duration_cast<Millis>(Clock::now() - sent));
  return st;
}

// TCP connects one after another; one that times out in its patience (four times the
// slowest so far, at least kProbeTimeout) is lost.
void connects(Ctx& ctx, const Check& c, int n, Probes& p) {
  Millis slowest{0};
  while (static_cast<int>(p.times.size()) + p.lost < n) {
    if (ctx.deadline.over()) {
      p.stopped = ctx.deadline.ran_out();
      return;
    }
    const auto sent = Clock::now();
    if (Status st = tcp_connect(c.to, c.port, ctx.deadline.probe()); !st) {
      if (st.error().errnum != ETIMEDOUT) {
        p.error = st.error().str();
        return;
      }
      if (!ctx.deadline.over()) ++p.lost;  // else it only ran out of time
      continue;
    }
    const auto took = Clock::now() - sent;
    p.times.push_back(std::chrono::duration<double>(took).count());
    slowest = std::max(slowest, std::chrono::duration_cast<Millis>(took));
    ctx.deadline.answered_after(slowest);
    ctx.report(std::to_string(p.times.size()) + " of " + std::to_string(n) + " probes");
  }
}

void echoes(Ctx& ctx, const Check& c, int n, Probes& p) {
  auto rtts = icmp_echoes(c.to, n, kEchoInterval, ctx.deadline.probe(), ctx.deadline.end);
  if (!rtts) {
    p.error = rtts.error().str();
    return;
  }
  for (const auto& t : *rtts) t ? p.times.push_back(*t) : void(++p.lost);
  if (static_cast<int>(rtts->size()) < n) p.stopped = ctx.deadline.ran_out();
}

// `count` probes from the `from` node after one warm-up: TCP connects when the check has a
// port (each the handshake's round trip), else ICMP echoes. The round trips' min, p50, p90,
// p99 and max and the share lost are judged by the bounds given; every figure is printed.
CheckResult latency(Ctx& ctx, const Check& c) {
  const int n = static_cast<int>(c.params.integer("count"));
  const std::string how = (c.port ? "TCP connect to " + target_of(c) : "ping " + c.to_text) + " from " + c.from;
  Probes p;
  Status st = ctx.in(c.from, [&]() -> Status {
    if (Status w = warm_up(ctx.deadline, c); !w) {
      p.error = w.error().str();
      return {};
    }
    c.port ? connects(ctx, c, n, p) : echoes(ctx, c, n, p);
    return {};
  });
  if (!st) return failed(c, how + ": " + st.error().str());
  if (!p.error.empty() && p.times.empty() && !p.lost) return failed(c, how + " failed: " + p.error);
  const int sent = static_cast<int>(p.times.size()) + p.lost;
  std::string detail = std::to_string(sent) + " x " + how + ": ";
  if (!p.error.empty())
    return failed(c, detail + "probe " + std::to_string(sent + 1) + " failed: " + p.error);
  if (p.times.empty()) return failed(c, detail + "none answered" + (p.stopped.empty() ? "" : "; " + p.stopped));
  std::sort(p.times.begin(), p.times.end());
  const double lost = static_cast<double>(p.lost) / sent;
  const std::vector<std::pair<std::string, double>> seen = {
      {"min", p.times.front()},           {"p50", percentile(p.times, 50)}, {"p90", percentile(p.times, 90)},
      {"p99", percentile(p.times, 99)},  {"max", p.times.back()},          {"loss", lost}};
  std::string figures, misses;
  for (const auto& [name, v] : seen) {
    const Measure m = name == "loss" ? Measure::Share : Measure::Time;
    figures += (figures.empty() ? "" : ", ") + name + " " + format_measure(v, m);
    if (!c.params.has(name)) continue;
    auto b = parse_bounds(c.params.text(name), m);  // read and checked at parse
    if (!b) continue;
    if (std::string miss = bounds_miss(name, v, *b, m); !miss.empty()) misses += "; " + miss;
  }
  detail += figures + " (" + std::to_string(p.lost) + " lost)";
  if (!p.stopped.empty())
    return failed(c, detail + "; only " + std::to_string(sent) + " of " + std::to_string(n) + " sent: " + p.stopped);
  return verdict(c, misses.empty(), detail + misses);
}

}  // namespace

// Its failures are figures out of bounds, or a target that does not answer, which reach
// diagnoses; no missing lab line explains a round trip.
extern const KindRun latency_kind{"latency", latency, nullptr, {}};

}  // namespace labctl::check_kind
