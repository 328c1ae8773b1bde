#include <fmt/format.h>

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
  IpvsStats s;
  TRY(ctx.in(director.name, [&]() -> Status {
    TRY_ASSIGN(IpvsTotals t, ipvs::read_totals());
    s = t.exact;
    return {};
  }));
  return s;
}

double share(uint64_t part, uint64_t whole) {
  return whole ? static_cast<double>(part) / static_cast<double>(whole) : 0;
}

// `requests` GETs of `path` through the service, one after another, each read to its end;
// then what crossed the director, as shares of the body bytes the client received: NAT's
// replies all pass it (out about 100 % and a little more: their headers), DR's and TUN's
// never (out 0 %; in, the requests and the client's ACKs, a few %).
CheckResult director_bytes(Ctx& ctx, const Check& c) {
  ServiceRef f = ctx.t.service(c.service);
  if (!f.service) return failed(c, "no service " + c.service);
  const int n = static_cast<int>(c.params.integer("requests"));
  const std::string& path = c.params.text("path");
  std::string detail = fmt::format("GET http://{}{} x{} from {}: ", target_of(c), path, n, c.from);
  auto before = director_totals(ctx, *f.director);
  if (!before) return failed(c, detail + "the director's IPVS totals: " + before.error().str());
  uint64_t body = 0;
  int got = 0;
  std::string error;
  Status st = ctx.in(c.from, [&]() -> Status {
    for (int i = 0; i < n; ++i) {
      auto d = http_download(c.to, c.port, path, ctx.deadline.end);
      if (!d) {
        error = d.error().str();
        break;
      }
      body += d->body_bytes;
      if (!d->whole) {
        error = ctx.deadline.ran_out() + " during it";
        break;
      }
      ++got;
      ctx.report(fmt::format("{} of {} GETs, {}", got, n, bytes_text(body)));
    }
    return {};
  });
  if (!st) return failed(c, detail + st.error().str());
  auto after = director_totals(ctx, *f.director);
  if (!after) return failed(c, detail + "the director's IPVS totals: " + after.error().str());
  const uint64_t out = after->outbytes - before->outbytes, in = after->inbytes - before->inbytes;
  const uint64_t outpkts = after->outpkts - before->outpkts, inpkts = after->inpkts - before->inpkts;
  const uint64_t conns = after->conns - before->conns;
  detail += fmt::format("{} of bodies; the director's IPVS (exact per-cpu totals) scheduled {} connection{} and "
                        "counted {} out in {} packet{} and {} in in {} packet{}",
                        bytes_text(body), conns, conns == 1 ? "" : "s", bytes_text(out), outpkts,
                        outpkts == 1 ? "" : "s", bytes_text(in), inpkts, inpkts == 1 ? "" : "s");
  if (!error.empty())
    return failed(c, detail + fmt::format("; GET {} failed: {}", got + 1, error));
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
    if (body / static_cast<uint64_t>(got) < 16384)
      detail += fmt::format(" (bodies of {} each weigh less than their TCP/IP and HTTP headers: give the real "
                            "servers' http agents a size, e.g. size = 1048576)",
                            bytes_text(body / static_cast<uint64_t>(got)));
  }
  return verdict(c, miss.empty(), detail);
}

}  // namespace

// A failure to get the pages is the LVS causes' (diagnose_lvs); a share out of its bounds
// with every page answered is a figure, and the causes then find nothing to name.
extern const KindRun director_bytes_kind{"director-bytes", director_bytes, diagnose_lvs, {}};

}  // namespace labctl::check_kind
