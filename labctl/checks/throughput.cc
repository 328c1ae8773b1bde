#include <fmt/format.h>

#include "labctl/checks/check_kind.h"
#include "labctl/model/bounds.h"

namespace labctl::check_kind {
namespace {

// GETs of `path` from the `from` node, one after another, for `seconds`: the last is cut
// when the time is up. The rate is the bodies' bytes (not heads, not TCP/IP headers) over
// the whole time, connects included, as a user's download sees it. With the http agent's
// `size` (a big body) the handshakes weigh nothing; with small bodies they dominate.
CheckResult throughput(Ctx& ctx, const Check& c) {
  const auto length = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(c.params.number("seconds")));
  const std::string how = "GET http://" + target_of(c) + c.params.text("path") + " from " + c.from;
  uint64_t bytes = 0;
  int gets = 0;
  bool cut = false;
  std::string error;
  Clock::time_point start, end;
  Status st = ctx.in(c.from, [&]() -> Status {
    start = Clock::now();
    const auto stop = std::min(start + length, ctx.deadline.end);
    while (Clock::now() < stop) {
      auto d = http_download(c.to, c.port, c.params.text("path"), stop);
      if (!d) {
        // A GET begun in the last moments that had not connected when the time was up
        // is cut by the time, not failed; a first GET that never answered is a failure.
        if (d.error().errnum == ETIMEDOUT && gets > 0 && Clock::now() + 5ms >= stop) {
          cut = true;
          break;
        }
        error = d.error().str();
        break;
      }
      ++gets;
      bytes += d->body_bytes;
      ctx.report(bytes_text(bytes));
      if ((cut = !d->whole)) break;  // it ran until the time was up
    }
    end = std::min(Clock::now(), stop);
    return {};
  });
  if (!st) return failed(c, how + ": " + st.error().str());
  const double secs = std::chrono::duration<double>(end - start).count();
  std::string detail = how + ": ";
  if (!error.empty())
    return failed(c, detail + "GET " + std::to_string(gets + 1) + " failed after " + bytes_text(bytes) + ": " + error);
  const double rate = secs > 0 ? static_cast<double>(bytes) * 8 / secs : 0;
  detail += fmt::format("{} in {:.2f} s over {} GET{}{}: {}", bytes_text(bytes), secs, gets, gets == 1 ? "" : "s",
                        cut ? " (the last cut at the time limit)" : "", format_measure(rate, Measure::Rate));
  auto b = parse_bounds(c.params.text("rate"), Measure::Rate);  // read and checked at parse
  const std::string miss = b ? bounds_miss("rate", rate, *b, Measure::Rate) : "";
  return verdict(c, miss.empty(), detail + (miss.empty() ? "" : "; " + miss));
}

}  // namespace

// A rate out of its bounds is a figure, not a missing lab line: no diagnosis.
extern const KindRun throughput_kind{"throughput", throughput, nullptr, {}};

}  // namespace labctl::check_kind
