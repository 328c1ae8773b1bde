#include "labctl/model/bounds.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "labctl/base/display.h"
#include "labctl/model/impair.h"

namespace labctl {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

std::string forms(Measure m) {
  switch (m) {
    case Measure::Time:
      return "a bound is \">= 40ms\", \"<= 200ms\" or both, \">= 40ms, <= 60ms\" (times as tc writes them: s, ms, "
             "us)";
    case Measure::Rate:
      return "a bound is \">= 8mbit\", \"<= 12mbit\" or both, \">= 8mbit, <= 12mbit\" (rates as tc writes them: "
             "bit, kbit, mbit, gbit, or bps, kbps, mbps for bytes per second)";
    case Measure::Share:
      return "a bound is \">= 5%\", \"<= 15%\" or both, \">= 5%, <= 15%\"";
  }
  return "";
}

Result<double> value_of(std::string_view text, Measure m) {
  switch (m) {
    case Measure::Time: {
      TRY_ASSIGN(auto t, parse_time(text));
      return static_cast<double>(t.count()) / 1e9;
    }
    case Measure::Rate: {
      TRY_ASSIGN(auto r, parse_rate(text));
      return static_cast<double>(r) * 8;
    }
    case Measure::Share: {
      TRY_ASSIGN(auto p, parse_percent(text));
      return p.percent() / 100;
    }
  }
  return fail("unknown measure");
}

}  // namespace

Result<Bounds> parse_bounds(std::string_view text, Measure m) {
  Bounds b;
  std::string_view rest = text;
  if (trim(rest).empty()) return fail("is empty", forms(m));
  for (int part_no = 1;; ++part_no) {
    const size_t comma = rest.find(',');
    std::string_view part = trim(rest.substr(0, comma));
    if (part.size() < 2 || (part.substr(0, 2) != ">=" && part.substr(0, 2) != "<="))
      return fail(fmt::format("has {}, which does not start with >= or <=", shown(part)), forms(m));
    const bool lower = part[0] == '>';
    auto v = value_of(trim(part.substr(2)), m);
    if (!v) return fail(fmt::format("has a value that {}", v.error().message), forms(m));
    auto& slot = lower ? b.at_least : b.at_most;
    if (slot) return fail(fmt::format("has two {} bounds: {}", lower ? ">=" : "<=", shown(text)), forms(m));
    slot = *v;
    if (comma == std::string_view::npos) break;
    if (part_no == 2) return fail(fmt::format("has more than two bounds: {}", shown(text)), forms(m));
    rest = rest.substr(comma + 1);
  }
  if (b.at_least && b.at_most && *b.at_least > *b.at_most)
    return fail(fmt::format("has its >= bound above its <= bound, so nothing can pass: {}", shown(text)), forms(m));
  return b;
}

std::string format_measure(double value, Measure m) {
  auto num = [](double v) { return fmt::format("{:.3g}", v); };
  switch (m) {
    case Measure::Time:
      if (value >= 1) return num(value) + "s";
      if (value >= 1e-3) return num(value * 1e3) + "ms";
      return num(value * 1e6) + "us";
    case Measure::Rate:
      if (value >= 1e9) return num(value / 1e9) + "gbit";
      if (value >= 1e6) return num(value / 1e6) + "mbit";
      if (value >= 1e3) return num(value / 1e3) + "kbit";
      return num(value) + "bit";
    case Measure::Share:
      return num(value * 100) + "%";
  }
  return num(value);
}

std::string bounds_miss(std::string_view name, double value, const Bounds& b, Measure m) {
  const std::string seen = fmt::format("{} {}", name, format_measure(value, m));
  if (b.at_least && value < *b.at_least)
    return fmt::format("{} is not >= {}", seen, format_measure(*b.at_least, m));
  if (b.at_most && value > *b.at_most) return fmt::format("{} is not <= {}", seen, format_measure(*b.at_most, m));
  return "";
}

double percentile(const std::vector<double>& sorted, double p) {
  const size_t n = sorted.size();
  auto rank = static_cast<size_t>(std::ceil(p / 100 * static_cast<double>(n)));
  rank = std::clamp<size_t>(rank, 1, n);
  return sorted[rank - 1];
}

}  // namespace labctl
