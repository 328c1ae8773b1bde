// Phase one, checks: the shared references (from, to, service, port, expect) and every other
// key handed to its reader in the kind's spec (check_spec.h).
#include <fmt/format.h>

#include "labctl/base/display.h"
#include "labctl/model/diag.h"
#include "labctl/model/parser.h"
#include "labctl/model/rules.h"
#include "labctl/model/check_spec.h"

namespace labctl::topo {

Check Parser::parse_check(const Entry& e) {
  Check c;
  c.name = e.name;
  c.pos = e.key_pos;
  name_ok(c.name, e.key_pos, "check");
  std::string where = "check " + plain(c.name);
  const toml::table* t = table_of(*e.value, where, e.key_pos);
  if (!t) return c;
  Pos tp = pos_or(*t, e.key_pos);
  c.keys = key_positions(*t);
  auto kind = str(*t, "kind", where, tp, true);
  if (!kind) return c;
  const CheckKindSpec* spec = find_check_kind(*kind);
  if (!spec) {
    std::vector<std::string> kinds;
    for (const auto& k : check_kinds()) kinds.push_back(k.name);
    r_.error(pos_at(*t, "kind", tp), fmt::format("unknown check kind {} in {}", shown(*kind), where),
             did_you_mean(*kind, kinds, fmt::format("one of {}", fmt::join(kinds, ", "))));
    return c;
  }
  c.kind = *kind;
  Keys known = {"kind"};
  known.insert(known.end(), spec->required.begin(), spec->required.end());
  known.insert(known.end(), spec->optional.begin(), spec->optional.end());
  unknown_keys(*t, known, where, tp);
  for (const auto& req : spec->required)
    if (!t->get(req)) missing(req, where, tp);
  if (spec->needs_target && !t->get("to") && !t->get("service"))
    missing("to' or 'service", where, tp,
            "give the target: to = \"<address or node>\", or service = \"<service>\" for its VIP");

  c.from = str(*t, "from", where, tp).value_or("");
  c.to_text = str(*t, "to", where, tp).value_or("");
  c.service = str(*t, "service", where, tp).value_or("");
  // A present but empty value would otherwise pass as "not given" and skip every check
  // of the reference it should have been.
  for (const char* key : {"from", "to", "service"})
    if (const auto* v = t->get(key); v && v->is_string() && v->as_string()->get().empty())
      r_.error(pos_at(*t, key, tp), fmt::format("'{}' of {} is empty", key, where),
               std::string(key) == "from" ? "name the node the check runs in" : "name the target");
  if (spec->needs_target && t->get("to") && t->get("service"))
    r_.error(pos_at(*t, "service", tp), fmt::format("{} has both 'to' and 'service'", where),
             "give one target: to = \"<address or node>\", or service = \"<service>\" for its VIP");
  c.port = static_cast<uint16_t>(integer(*t, "port", where, tp, 1, 65535).value_or(0));
  for (const auto& [s, p] : strings(*t, "expect", where, tp)) c.expect.push_back(s);
  if (const auto* ex = t->get("expect"); ex && ex->is_array() && ex->as_array()->empty())
    r_.error(pos_or(*ex, tp), fmt::format("expect of {} is empty: no body could match", where),
             "list the strings one of which the body must contain, or leave expect out");
  for (const auto* keys : {&spec->required, &spec->optional})
    for (const auto& key : *keys) check_param(*t, key, c, where, tp);
  fill_check_defaults(c);
  if (t->get("banner") && c.params.udp())
    r_.error(pos_at(*t, "banner", tp), fmt::format("{} reads a banner, which needs TCP, but says proto = \"udp\"", where),
             "a banner is what a TCP server says first; for UDP give send and expect");
  if (t->get("send") && !c.params.udp() && !t->get("service"))
    r_.error(pos_at(*t, "send", tp), fmt::format("{} has a UDP payload (send) but is not a UDP check", where),
             "add proto = \"udp\"");
  return c;
}

// One of a check's own keys (check_keys()), read by its reader through the parser's typed
// reads; the shared references (from, to, service, port, expect) are parse_check's.
void Parser::check_param(const toml::table& t, std::string_view key, Check& c, const std::string& where,
                         Pos tp) {
  const CheckKey* k = find_check_key(key);
  const toml::node* v = t.get(key);
  if (!k || !v) return;
  CheckKeyRead read{std::string(key),
                    where,
                    c,
                    r_,
                    pos_or(*v, tp),
                    v->is_array() && v->as_array()->empty(),
                    [&] { return str(t, key, where, tp); },
                    [&](int64_t lo, int64_t hi) { return integer(t, key, where, tp, lo, hi); },
                    [&] { return number(t, key, where, tp); },
                    [&] { return strings(t, key, where, tp); }};
  k->read(read);
}

}  // namespace labctl::topo
