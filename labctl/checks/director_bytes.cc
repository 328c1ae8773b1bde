#include "labctl/checks/director_bytes.h"

#include <fmt/format.h>

#include <algorithm>

#include "labctl/checks/check_kind.h"
#include "labctl/checks/diagnose.h"
#include "labctl/kernel/ipvs_proc.h"
#include "labctl/model/bounds.h"

namespace labctl::check_kind {
namespace {

// The director namespace's per-cpu IPVS totals: summed per packet, so exact at once. The
// service's own netlink counters would do too, but the estimator publishes them about every
// 2 s. The totals are the whole namespace's: other traffic through the director during the
// check counts as well (docs/checks.md).
Result<IpvsStats> director_totals(Ctx& ctx, const Node& director) {
  TRY_ASSIGN(std::string text, ctx.read_proc(director.name, "net/ip_vs_stats_percpu"));
  TRY_ASSIGN(IpvsTotals t, ipvs::parse_stats_percpu(text));
  return t.exact;
}

// `requests` GETs of `path` through the service, one after another, each read to its end,
// between two readings of the director's totals.
CheckResult director_bytes(Ctx& ctx, const Check& c) {
  ServiceRef f = ctx.t.service(c.service);
  if (!f.service) return failed(c, "no service " + c.service);
  DirectorBytesSeen seen;
  seen.planned = static_cast<int>(c.params.integer("requests"));
  const std::string& path = c.params.text("path");
  const std::string how = fmt::format("GET http://{}{} x{} from {}: ", target_of(c), path, seen.planned, c.from);
  auto before = director_totals(ctx, *f.director);
  if (!before) return failed(c, how + "the director's IPVS totals: " + before.error().str());
  Status st = ctx.in(c.from, [&]() -> Status {
    for (int i = 0; i < seen.planned; ++i) {
      auto d = http_download(c.to, c.port, path, ctx.deadline.end);
      if (!d) {
        seen.error = d.error().str();
        break;
      }
      seen.body += d->body_bytes;
      if (!d->whole) {
        seen.error = ctx.deadline.ran_out() + " during it";
        break;
      }
      ++seen.answered;
      ctx.report(fmt::format("{} of {} GETs, {}", seen.answered, seen.planned, bytes_text(seen.body)));
    }
    return {};
  });
  if (!st) return failed(c, how + st.error().str());
  auto after = director_totals(ctx, *f.director);
  if (!after) return failed(c, how + "the director's IPVS totals: " + after.error().str());
  seen.moved.conns = after->conns - before->conns;
  seen.moved.inpkts = after->inpkts - before->inpkts;
  seen.moved.outpkts = after->outpkts - before->outpkts;
  seen.moved.inbytes = after->inbytes - before->inbytes;
  seen.moved.outbytes = after->outbytes - before->outbytes;
  return judge_director_bytes(c, seen);
}

double share(uint64_t part, uint64_t whole) {
  return whole ? static_cast<double>(part) / static_cast<double>(whole) : 0;
}

std::string plural(uint64_t n, const char* what) { return fmt::format("{} {}{}", n, what, n == 1 ? "" : "s"); }

}  // namespace

// The shares are of the body bytes the client received: NAT's replies all pass the director
// (out about 100 %, a little more for their headers), DR's and TUN's never (out 0 %; in,
// the requests and the client's ACKs, a few % at most).
CheckResult judge_director_bytes(const Check& c, const DirectorBytesSeen& s) {
  const uint64_t out = s.moved.outbytes, in = s.moved.inbytes, body = s.body;
  std::string detail = fmt::format(
      "GET http://{}{} x{} from {}: {} of bodies; the director's IPVS (exact per-cpu totals) scheduled {} and "
      "counted {} out in {} and {} in in {}",
      target_of(c), c.params.text("path"), s.planned, c.from, bytes_text(body), plural(s.moved.conns, "connection"),
      bytes_text(out), plural(s.moved.outpkts, "packet"), bytes_text(in), plural(s.moved.inpkts, "packet"));
  if (!s.error.empty()) return failed(c, detail + fmt::format("; GET {} failed: {}", s.answered + 1, s.error));
  if (body == 0)
    return failed(c, detail + "; no body bytes arrived, so there is no share to judge: give the real servers' "
                              "http agents a size (docs/topology.md)");
  const double out_share = share(out, body), in_share = share(in, body);
  detail += fmt::format(": out {}, in {} of the body bytes", format_measure(out_share, Measure::Share),
                        format_measure(in_share, Measure::Share));
  if (out == 0)
    detail += ": the replies bypassed the director (what went in: the requests and the client's ACKs)";
  else if (out >= body)
    detail += ": every reply crossed the director";
  std::string miss;
  for (const auto& [key, value] : {std::pair{"out", out_share}, std::pair{"in", in_share}}) {
    if (!c.params.has(key)) continue;
    auto b = parse_bounds(c.params.text(key), Measure::Share);  // read and checked at parse
    if (std::string m = b ? bounds_miss(key, value, *b, Measure::Share) : ""; !m.empty())
      miss += (miss.empty() ? "" : "; ") + m;
  }
  if (!miss.empty()) {
    detail += "; " + miss;
    // Heads and handshakes outweigh a few-byte body: the shares then say nothing of replies.
    const uint64_t each = body / static_cast<uint64_t>(std::max(s.answered, 1));
    if (each < 16384)
      detail += fmt::format(" (bodies of {} each weigh less than their TCP/IP and HTTP headers: give the real "
                            "servers' http agents a size, e.g. size = 1048576)",
                            bytes_text(each));
  }
  return verdict(c, miss.empty(), detail);
}

// A failure to get the pages is the LVS causes' (diagnose_lvs); a share out of its bounds
// with every page answered is a figure, and the causes then find nothing to name.
extern const KindRun director_bytes_kind{"director-bytes", director_bytes, diagnose_lvs, {}};

}  // namespace labctl::check_kind
