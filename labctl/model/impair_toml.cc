#include "labctl/model/impair_toml.h"

#include <fmt/format.h>

#include "labctl/base/display.h"

namespace labctl::topo {
namespace {

using std::chrono::nanoseconds;

/// Reads one key's value into `imp`; reports what is wrong at `p`.
class KeyReader {
 public:
  KeyReader(Impairment& imp, const ImpairKey& key, const toml::node& v, std::string where,
            Reporter& r, Pos p)
      : imp_(imp), key_(key), v_(v), where_(std::move(where)), r_(r), p_(p) {}

  bool operator()(std::optional<uint64_t> Impairment::*f) {
    if (const auto* i = v_.as_integer()) {  // bit/s, as a bare number in tc
      if (i->get() < 0) return error(fmt::format("is negative: {}", i->get()), forms());
      return take(f, parse_rate(std::to_string(i->get())));
    }
    if (const auto* s = v_.as_string()) return take(f, parse_rate(s->get()));
    return wrong_type("a string or an integer (bit/s)",
                      fmt::format("e.g. {} = \"{}\"", key_.name, key_.example));
  }
  bool operator()(std::optional<nanoseconds> Impairment::*f) {
    if (const auto* s = v_.as_string()) return take(f, parse_time(s->get()));
    return wrong_type("a string with a unit",
                      fmt::format("write the time in quotes with its unit, e.g. {} = \"{}\"",
                                  key_.name, key_.example));
  }
  bool operator()(std::optional<Probability> Impairment::*f) {
    if (const auto* s = v_.as_string()) return take(f, parse_percent(s->get()));
    return wrong_type(
        "a string with '%'",
        fmt::format("write a percentage in quotes, e.g. {} = \"{}\"", key_.name, key_.example));
  }
  bool operator()(std::optional<uint32_t> Impairment::*f) {
    if (const auto* i = v_.as_integer()) {
      if (i->get() < 1 || i->get() > int64_t{kMaxImpairLimit})
        return error(fmt::format("is out of range 1..{}: {}", kMaxImpairLimit, i->get()),
                     "netem's queue in packets; its default is 1000");
      imp_.*f = static_cast<uint32_t>(i->get());
      return true;
    }
    return wrong_type("an integer", v_.is_string()
                                        ? "write the number without quotes, e.g. limit = 1000"
                                        : std::string(forms()));
  }

 private:
  std::string_view forms() const { return impair_forms(key_.value); }
  bool error(const std::string& what, std::string_view hint) {
    r_.error(p_, fmt::format("'{}' in impair of {} {}", key_.name, where_, what),
             std::string(hint));
    return false;
  }
  bool wrong_type(std::string_view want, std::string hint) {
    return error(fmt::format("must be {}, not {}", want, type_name(v_)), hint);
  }
  template <class T, class V>
  bool take(std::optional<T> Impairment::*f, Result<V> value) {
    if (!value) return error(value.error().message, value.error().hint);
    imp_.*f = *value;
    return true;
  }

  Impairment& imp_;
  const ImpairKey& key_;
  const toml::node& v_;
  std::string where_;
  Reporter& r_;
  Pos p_;
};

}  // namespace

std::optional<Impairment> parse_impairment(const toml::node& n, const std::string& where,
                                           Reporter& r, Pos fallback) {
  const Pos np = pos_or(n, fallback);
  const toml::table* t = n.as_table();
  if (!t) {
    r.error(np, fmt::format("'impair' of {} must be a table, not {}", where, type_name(n)),
            "e.g. impair = { delay = \"20ms\", loss = \"1%\" }");
    return std::nullopt;
  }
  if (t->empty()) {
    r.warning(np, fmt::format("impair of {} is empty: nothing is impaired", where),
              fmt::format("remove it, or give it keys: {}", fmt::join(impair_key_names(), ", ")));
    return std::nullopt;
  }
  Impairment imp;
  bool ok = true;
  std::vector<std::pair<std::string_view, Pos>> value_pos;
  for (auto&& [k, v] : *t) {
    const std::string key(k.str());
    const ImpairKey* spec = find_impair_key(key);
    if (!spec) {
      Pos kp = k.source().begin.line ? pos_of(k.source()) : pos_or(v, np);
      r.error(kp, fmt::format("unknown key {} in impair of {}", shown(key), where),
              did_you_mean(key, impair_key_names(),
                           fmt::format("known keys: {}", fmt::join(impair_key_names(), ", "))));
      ok = false;
      continue;
    }
    const Pos vp = pos_or(v, np);
    value_pos.emplace_back(spec->name, vp);
    ok = std::visit(KeyReader(imp, *spec, v, where, r, vp), spec->field) && ok;
  }
  for (const auto& p : impairment_problems(imp)) {
    Pos at = np;
    for (const auto& [key, kp] : value_pos)
      if (key == p.key) at = kp;
    r.error(at, fmt::format("'{}' in impair of {} {}", p.key, where, p.message), p.hint);
    ok = false;
  }
  if (!ok) return std::nullopt;
  return imp;
}

}  // namespace labctl::topo
