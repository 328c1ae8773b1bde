#include "labctl/model/impair.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>

#include "labctl/base/display.h"
#include "labctl/base/overloaded.h"
#include "labctl/base/shell_quote.h"
#include "labctl/model/diag.h"

namespace labctl {
namespace {

using std::chrono::nanoseconds;
// Exact arithmetic for a mantissa times a unit: 10^19 times 2^43 (TiBps) fits with room.
__extension__ typedef unsigned __int128 U128;

constexpr std::string_view kRateForms =
    "a rate as tc writes it: a number with bit, kbit, mbit, gbit or tbit (x1000), kibit, "
    "mibit, gibit or tibit (x1024), or bps, kbps, mbps, gbps, tbps, kibps, mibps, gibps, tibps "
    "(bytes per second: tc reads \"mbps\" as megabytes), e.g. \"10mbit\"";
constexpr std::string_view kTimeForms =
    "a time as tc writes it: a number with s, ms or us (or sec, secs, msec, msecs, usec, "
    "usecs; ns, nsec and nsecs in whole microseconds), e.g. \"20ms\"";
constexpr std::string_view kPercentForms =
    "a percentage from 0% to 100% as tc writes it, e.g. \"1%\" or \"0.1%\"";
constexpr std::string_view kPacketsForms = "a number of packets from 1 to 2147483647, e.g. 1000";

struct Unit {
  std::string_view name;
  uint64_t scale;  ///< bits (rates) or nanoseconds (times) per unit
};

// tc's rate suffixes (iproute2 lib/utils_math.c), matched without regard to case as tc does.
constexpr std::array<Unit, 18> kRateUnits{{
    {"bit", 1},
    {"kbit", 1000},
    {"mbit", 1000000},
    {"gbit", 1000000000},
    {"tbit", 1000000000000},
    {"kibit", uint64_t{1} << 10},
    {"mibit", uint64_t{1} << 20},
    {"gibit", uint64_t{1} << 30},
    {"tibit", uint64_t{1} << 40},
    {"bps", 8},
    {"kbps", 8000},
    {"mbps", 8000000},
    {"gbps", 8000000000},
    {"tbps", 8000000000000},
    {"kibps", uint64_t{8} << 10},
    {"mibps", uint64_t{8} << 20},
    {"gibps", uint64_t{8} << 30},
    {"tibps", uint64_t{8} << 40},
}};

// tc's time suffixes (iproute2 lib/utils.c get_time; ns, nsec, nsecs since 6.9's get_time64).
constexpr std::array<Unit, 12> kTimeUnits{{
    {"s", 1000000000},
    {"sec", 1000000000},
    {"secs", 1000000000},
    {"ms", 1000000},
    {"msec", 1000000},
    {"msecs", 1000000},
    {"us", 1000},
    {"usec", 1000},
    {"usecs", 1000},
    {"ns", 1},
    {"nsec", 1},
    {"nsecs", 1},
}};

/// A number as written: "1.50" is 15 with one decimal (trailing zeros dropped).
struct Decimal {
  uint64_t digits = 0;
  int decimals = 0;
  bool negative = false;
  std::string_view number;  ///< The text of the number, sign included.
  std::string_view unit;    ///< What follows it.
};

enum class ScanError { NotANumber, TooManyDigits };

// Reads [+-]digits[.digits] exactly. A number of more than 19 significant digits is
// refused rather than rounded: no lab needs one.
tl::expected<Decimal, ScanError> scan(std::string_view s) {
  Decimal d;
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) d.negative = s[i++] == '-';
  const size_t int_begin = i;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  std::string_view int_part = s.substr(int_begin, i - int_begin);
  std::string_view frac_part;
  if (i < s.size() && s[i] == '.') {
    const size_t frac_begin = ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    frac_part = s.substr(frac_begin, i - frac_begin);
  }
  if (int_part.empty() && frac_part.empty()) return tl::unexpected(ScanError::NotANumber);
  d.number = s.substr(0, i);
  d.unit = s.substr(i);
  while (!int_part.empty() && int_part.front() == '0') int_part.remove_prefix(1);
  while (!frac_part.empty() && frac_part.back() == '0') frac_part.remove_suffix(1);
  if (int_part.size() + frac_part.size() > 19) return tl::unexpected(ScanError::TooManyDigits);
  for (char c : int_part) d.digits = d.digits * 10 + static_cast<uint64_t>(c - '0');
  for (char c : frac_part) d.digits = d.digits * 10 + static_cast<uint64_t>(c - '0');
  d.decimals = static_cast<int>(frac_part.size());
  return d;
}

U128 pow10(int n) {
  U128 p = 1;
  while (n-- > 0) p *= 10;
  return p;
}

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) {
             return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
           };
           return lower(x) == lower(y);
         });
}

template <size_t N>
const Unit* find_unit(const std::array<Unit, N>& units, std::string_view name) {
  for (const auto& u : units)
    if (iequal(u.name, name)) return &u;
  return nullptr;
}

template <size_t N>
std::string unknown_unit_hint(const std::array<Unit, N>& units, std::string_view unit,
                              std::string_view forms) {
  std::vector<std::string> names;
  for (const auto& u : units) names.emplace_back(u.name);
  std::string lower(unit);
  for (char& c : lower)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  std::string near = topo::did_you_mean(lower, names);
  return near.empty() ? std::string(forms) : near + " " + std::string(forms);
}

tl::unexpected<Error> scan_error(ScanError e, std::string_view text, std::string_view what,
                                 std::string_view forms) {
  if (e == ScanError::TooManyDigits)
    return fail(fmt::format("has too many digits: {}", shown(text)), std::string(forms));
  return fail(fmt::format("is not {}: {}", what, shown(text)), std::string(forms));
}

// The largest unit that writes `value` as a whole number; `units` from the largest down.
template <size_t N>
std::string exact_in(uint64_t value, const std::array<Unit, N>& units) {
  const Unit* best = nullptr;
  for (const auto& u : units)
    if (value % u.scale == 0 && (!best || value / u.scale < value / best->scale)) best = &u;
  return fmt::format("{}{}", value / best->scale, best->name);
}

// The spellings format_* writes: every unit once, tc's own names.
constexpr std::array<Unit, 9> kRateOut{{
    {"tbit", 1000000000000},
    {"gbit", 1000000000},
    {"mbit", 1000000},
    {"kbit", 1000},
    {"tibit", uint64_t{1} << 40},
    {"gibit", uint64_t{1} << 30},
    {"mibit", uint64_t{1} << 20},
    {"kibit", uint64_t{1} << 10},
    {"bit", 1},
}};
constexpr std::array<Unit, 3> kTimeOut{{{"s", 1000000000}, {"ms", 1000000}, {"us", 1000}}};

bool positive(const std::optional<nanoseconds>& t) { return t && t->count() > 0; }

}  // namespace

Probability Probability::from_percent(double percent) {
  // As tc's get_percent: the share of UINT32_MAX, rounded to nearest.
  return Probability{static_cast<uint32_t>(
      std::rint(percent / 100. * static_cast<double>(std::numeric_limits<uint32_t>::max())))};
}

double Probability::percent() const {
  return 100. * scaled / static_cast<double>(std::numeric_limits<uint32_t>::max());
}

bool Impairment::empty() const { return *this == Impairment{}; }

const std::vector<ImpairKey>& impair_keys() {
  static const std::vector<ImpairKey> keys = {
      {"rate", ImpairValue::Rate, "10mbit", &Impairment::rate},
      {"delay", ImpairValue::Time, "20ms", &Impairment::delay},
      {"jitter", ImpairValue::Time, "5ms", &Impairment::jitter},
      {"loss", ImpairValue::Percent, "1%", &Impairment::loss},
      {"duplicate", ImpairValue::Percent, "0.1%", &Impairment::duplicate},
      {"corrupt", ImpairValue::Percent, "0.1%", &Impairment::corrupt},
      {"reorder", ImpairValue::Percent, "25%", &Impairment::reorder},
      {"limit", ImpairValue::Packets, "1000", &Impairment::limit},
  };
  return keys;
}

const ImpairKey* find_impair_key(std::string_view name) {
  for (const auto& k : impair_keys())
    if (k.name == name) return &k;
  return nullptr;
}

std::vector<std::string> impair_key_names() {
  std::vector<std::string> out;
  for (const auto& k : impair_keys()) out.emplace_back(k.name);
  return out;
}

std::string_view impair_forms(ImpairValue v) {
  switch (v) {
    case ImpairValue::Rate:
      return kRateForms;
    case ImpairValue::Time:
      return kTimeForms;
    case ImpairValue::Percent:
      return kPercentForms;
    case ImpairValue::Packets:
      return kPacketsForms;
  }
  return {};
}

Result<uint64_t> parse_rate(std::string_view text) {
  auto d = scan(text);
  if (!d) return scan_error(d.error(), text, "a rate", kRateForms);
  // A bare number is bit/s: tc's get_rate finds no suffix and scales by 1 (tc(8): "bit or a
  // bare number").
  const Unit* unit = d->unit.empty() ? &kRateUnits[0] : find_unit(kRateUnits, d->unit);
  if (!unit)
    return fail(fmt::format("has an unknown unit {}: {}", shown(d->unit), shown(text)),
                unknown_unit_hint(kRateUnits, d->unit, kRateForms));
  if (d->negative && d->digits != 0)
    return fail(fmt::format("is negative: {}", shown(text)), std::string(kRateForms));
  // tc: bits times the unit, divided by 8, truncated; exactly here, without a double.
  const U128 bits = U128{d->digits} * unit->scale / pow10(d->decimals);
  const U128 bytes = bits / 8;
  if (bytes == 0)
    return fail(
        fmt::format("is under 8bit: {}", shown(text)),
        "the kernel counts a rate in whole bytes per second: the smallest is \"8bit\" (1 byte "
        "per second)");
  if (bytes > std::numeric_limits<uint64_t>::max() / 8)
    return fail(fmt::format("is too large: {}", shown(text)), std::string(kRateForms));
  return static_cast<uint64_t>(bytes);
}

Result<nanoseconds> parse_time(std::string_view text) {
  auto d = scan(text);
  if (!d) return scan_error(d.error(), text, "a time", kTimeForms);
  // A bare number means three things to tc's netem: microseconds to Debian 12's tc
  // (iproute2 6.1, get_ticks), nanoseconds since iproute2 6.9 (get_time64), milliseconds
  // to tc-netem(8). So labctl asks.
  if (d->unit.empty())
    return fail(fmt::format("has no unit: {}", shown(text)),
                fmt::format("write it with its unit, e.g. \"{}ms\": to tc a bare netem time is "
                            "microseconds (iproute2 up to 6.8) or nanoseconds (since 6.9), and "
                            "tc-netem(8) says milliseconds",
                            d->number));
  const Unit* unit = find_unit(kTimeUnits, d->unit);
  if (!unit)
    return fail(fmt::format("has an unknown unit {}: {}", shown(d->unit), shown(text)),
                unknown_unit_hint(kTimeUnits, d->unit, kTimeForms));
  if (d->negative && d->digits != 0)
    return fail(fmt::format("is negative: {}", shown(text)), std::string(kTimeForms));
  const U128 scaled = U128{d->digits} * unit->scale;
  const U128 div = pow10(d->decimals);
  // Whole microseconds: the finest time Debian 12's tc (iproute2 6.1) writes, so every
  // --dry-run line runs there; the kernel would take nanoseconds.
  if (scaled % (div * 1000) != 0)
    return fail(fmt::format("is finer than a microsecond: {}", shown(text)),
                std::string(kTimeForms));
  const U128 ns = scaled / div;
  if (ns > static_cast<U128>(std::numeric_limits<int64_t>::max()))
    return fail(fmt::format("is too large: {}", shown(text)), std::string(kTimeForms));
  return nanoseconds(static_cast<int64_t>(ns));
}

Result<Probability> parse_percent(std::string_view text) {
  auto d = scan(text);
  if (!d) return scan_error(d.error(), text, "a percentage", kPercentForms);
  if (d->unit != "%") {
    if (d->unit.empty())
      return fail(
          fmt::format("has no '%': {}", shown(text)),
          fmt::format("write it as a percentage, e.g. \"{}%\" ({})", d->number, kPercentForms));
    return fail(fmt::format("is not a percentage: {}", shown(text)), std::string(kPercentForms));
  }
  if (d->negative && d->digits != 0)
    return fail(fmt::format("is negative: {}", shown(text)), std::string(kPercentForms));
  if (U128{d->digits} > U128{100} * pow10(d->decimals))
    return fail(fmt::format("is over 100%: {}", shown(text)), std::string(kPercentForms));
  // The value as tc's strtod reads it, so the scaled result is tc's to the last bit.
  std::string_view num = d->number;
  if (!num.empty() && num.front() == '+') num.remove_prefix(1);
  double value = 0;
  auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), value);
  if (ec != std::errc() || end != num.data() + num.size())
    return fail(fmt::format("is not a percentage: {}", shown(text)), std::string(kPercentForms));
  return Probability::from_percent(value < 0 ? 0 : value);
}

Result<uint32_t> parse_limit(std::string_view text) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec == std::errc::result_out_of_range ||
      (ec == std::errc() && end == text.data() + text.size() && (v < 1 || v > kMaxImpairLimit)))
    return fail(fmt::format("is out of range 1..{}: {}", kMaxImpairLimit, shown(text)),
                "netem's queue in packets; its default is 1000");
  if (ec != std::errc() || end != text.data() + text.size())
    return fail(fmt::format("is not a number of packets: {}", shown(text)),
                std::string(kPacketsForms));
  return static_cast<uint32_t>(v);
}

Status set_impair_key(Impairment& imp, std::string_view key, std::string_view text) {
  const ImpairKey* k = find_impair_key(key);
  if (!k)
    return fail(fmt::format("unknown impairment {}", shown(key)),
                topo::did_you_mean(key, impair_key_names(),
                                   fmt::format("known: {}", fmt::join(impair_key_names(), ", "))));
  Status st = std::visit(Overloaded{
                             [&](std::optional<uint64_t> Impairment::*f) -> Status {
                               TRY_ASSIGN(imp.*f, parse_rate(text));
                               return {};
                             },
                             [&](std::optional<nanoseconds> Impairment::*f) -> Status {
                               TRY_ASSIGN(imp.*f, parse_time(text));
                               return {};
                             },
                             [&](std::optional<Probability> Impairment::*f) -> Status {
                               TRY_ASSIGN(imp.*f, parse_percent(text));
                               return {};
                             },
                             [&](std::optional<uint32_t> Impairment::*f) -> Status {
                               TRY_ASSIGN(imp.*f, parse_limit(text));
                               return {};
                             },
                         },
                         k->field);
  if (!st) {
    Error e = st.error();
    e.message = fmt::format("'{}' {}", k->name, e.message);
    return tl::unexpected(std::move(e));
  }
  return {};
}

std::vector<ImpairProblem> impairment_problems(const Impairment& imp) {
  std::vector<ImpairProblem> out;
  if (imp.jitter && imp.jitter->count() > 0 && !positive(imp.delay))
    out.push_back(
        {"jitter", "needs a 'delay' (above 0)",
         "netem varies the delay by ±jitter: add one, e.g. delay = \"20ms\", jitter = \"5ms\""});
  if (imp.reorder && imp.reorder->scaled > 0 && !positive(imp.delay))
    out.push_back({"reorder", "needs a 'delay' (above 0)",
                   "netem reorders by sending that share of packets at once while the rest wait "
                   "out the delay: add one, e.g. delay = \"10ms\""});
  for (auto [key, t] : {std::pair{std::string_view("delay"), imp.delay},
                        std::pair{std::string_view("jitter"), imp.jitter}})
    if (t && *t > kMaxImpairDelay)
      out.push_back(
          {key, fmt::format("is over 60s: {}", format_time(*t)),
           "at most \"60s\": a longer delay only looks like a cut link (labctl link ... down)"});
  return out;
}

bool needs_netem(const Impairment& imp) {
  Impairment rest = imp;
  rest.rate.reset();
  return !rest.empty();
}

Impairment canonical(Impairment imp) {
  if (imp.rate == 0u) imp.rate.reset();
  for (auto* t : {&imp.delay, &imp.jitter})
    if (*t && t->value().count() == 0) t->reset();
  for (auto* p : {&imp.loss, &imp.duplicate, &imp.corrupt, &imp.reorder})
    if (*p && (*p)->scaled == 0) p->reset();
  if (imp.limit == kNetemDefaultLimit) imp.limit.reset();
  return imp;
}

TbfShape tbf_shape(uint64_t rate, int mtu) {
  constexpr uint64_t kMax = std::numeric_limits<uint32_t>::max();
  constexpr uint64_t kEthHeader = 14;  // tbf measures frames with their Ethernet header
  const uint64_t frame = static_cast<uint64_t>(mtu > 0 ? mtu : 1500) + kEthHeader;
  TbfShape s;
  s.rate = rate;
  s.burst = static_cast<uint32_t>(std::min(std::max(rate / 100, frame), kMax));
  const uint64_t queue = rate / (1000 / static_cast<uint64_t>(kTbfLatency.count()));
  s.limit = static_cast<uint32_t>(std::min(queue + s.burst, kMax));
  return s;
}

std::string format_rate(uint64_t bytes_per_second) {
  if (bytes_per_second == 0) return "0bit";
  // parse_rate keeps rates under 2^61 bytes, so the bits fit; larger ones print in bytes.
  if (bytes_per_second > std::numeric_limits<uint64_t>::max() / 8)
    return fmt::format("{}bps", bytes_per_second);
  return exact_in(bytes_per_second * 8, kRateOut);
}

std::string format_time(nanoseconds t) {
  if (t.count() < 0) return "-" + format_time(-t);
  if (t.count() == 0) return "0ms";
  return exact_in(static_cast<uint64_t>(t.count()), kTimeOut);
}

std::string format_percent(Probability p) { return fmt::format("{:g}%", p.percent()); }

std::string tc_clear_command(const std::string& ns, const std::string& dev) {
  return shell_join({"ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", dev, "root"});
}

std::string tc_command(const std::string& ns, const std::string& dev, const Impairment& imp,
                       int mtu) {
  if (imp.empty()) return tc_clear_command(ns, dev);
  std::vector<std::string> w{"ip",    "netns",   "exec", ns,  "tc",
                             "qdisc", "replace", "dev",  dev, "root"};
  if (!needs_netem(imp)) {
    const TbfShape s = tbf_shape(*imp.rate, mtu);
    for (std::string x :
         {std::string("tbf"), std::string("rate"), format_rate(s.rate), std::string("burst"),
          std::to_string(s.burst), std::string("limit"), std::to_string(s.limit)})
      w.push_back(std::move(x));
    return shell_join(w);
  }
  w.emplace_back("netem");
  if (imp.limit) {
    w.emplace_back("limit");
    w.push_back(std::to_string(*imp.limit));
  }
  if (imp.delay || imp.jitter) {
    w.emplace_back("delay");
    w.push_back(format_time(imp.delay.value_or(nanoseconds(0))));
    if (imp.jitter) w.push_back(format_time(*imp.jitter));
  }
  for (auto [name, p] : {std::pair{"loss", imp.loss}, std::pair{"duplicate", imp.duplicate},
                         std::pair{"corrupt", imp.corrupt}, std::pair{"reorder", imp.reorder}})
    if (p) {
      w.emplace_back(name);
      w.push_back(format_percent(*p));
    }
  if (imp.rate) {
    w.emplace_back("rate");
    w.push_back(format_rate(*imp.rate));
  }
  return shell_join(w);
}

std::string impairment_summary(const Impairment& imp) {
  std::vector<std::string> parts;
  if (imp.rate) parts.push_back(format_rate(*imp.rate));
  if (imp.delay)
    parts.push_back("delay " + format_time(*imp.delay) +
                    (imp.jitter ? " ±" + format_time(*imp.jitter) : ""));
  else if (imp.jitter)
    parts.push_back("jitter " + format_time(*imp.jitter));
  for (auto [name, p] : {std::pair{"loss", imp.loss}, std::pair{"duplicate", imp.duplicate},
                         std::pair{"corrupt", imp.corrupt}, std::pair{"reorder", imp.reorder}})
    if (p) parts.push_back(std::string(name) + " " + format_percent(*p));
  if (imp.limit) parts.push_back("limit " + std::to_string(*imp.limit));
  return fmt::format("{}", fmt::join(parts, ", "));
}

}  // namespace labctl
