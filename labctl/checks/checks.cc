#include "labctl/checks/checks.h"

#include "labctl/checks/diagnose.h"

#include "labctl/base/display.h"
#include "labctl/model/check_spec.h"
#include "labctl/model/diag.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iomanip>
#include <sstream>

#include "labctl/checks/check_kind.h"

namespace labctl {
namespace {

using check_kind::Clock;
using check_kind::Ctx;
using check_kind::failed;

CheckResult run_one(Ctx& ctx, Check c) {
  topo::fill_check_defaults(c);  // a check made in code, not read from a file
  if (const check_kind::KindRun* kind = check_kind::find_kind_run(c.kind)) return kind->run(ctx, c);
  return failed(c, "unknown check kind " + c.kind);
}

bool hashes_one_client(const std::string& sched) {
  return sched == "sh" || sched == "dh" || sched == "mh" || sched == "lblc" || sched == "lblcr";
}

}  // namespace

// No check run is no evidence: never a pass.
bool CheckReport::passed() const {
  if (results.empty()) return false;
  for (const auto& r : results)
    if (!r.passed) return false;
  return true;
}

std::vector<double> expected_shares(const std::string& scheduler, bool persistent,
                                    const std::vector<int>& weights) {
  if (persistent || hashes_one_client(scheduler)) return {};
  std::vector<double> w;
  double total = 0;
  for (int weight : weights) {
    // rr ignores weights except that 0 takes a server out; the others follow weights.
    double x = weight <= 0 ? 0 : (scheduler == "rr" ? 1 : weight);
    w.push_back(x);
    total += x;
  }
  for (auto& x : w) x = total > 0 ? x / total : 0;
  return w;
}

std::vector<double> expected_shares(const VirtualService& s) {
  std::vector<int> weights;
  for (const auto& rs : s.real_servers) weights.push_back(rs.weight);
  return expected_shares(s.scheduler, s.persistence != 0, weights);
}

Millis default_deadline(const std::string& kind) {
  using namespace std::chrono_literals;
  const topo::CheckKindSpec* spec = topo::find_check_kind(kind);
  return spec ? spec->deadline : 3s;
}

Millis check_deadline(const Check& c) {
  if (c.params.has("timeout")) return Millis{static_cast<int64_t>(c.params.number("timeout") * 1000)};
  return default_deadline(c.kind);
}

std::string check_expectation(const std::string& kind) {
  const topo::CheckKindSpec* spec = topo::find_check_kind(kind);
  return spec ? spec->expectation : "kind " + kind;
}

Status check_names_known(const Topology& t, const std::vector<std::string>& only) {
  std::vector<std::string> names;
  for (const auto& c : t.checks) names.push_back(c.name);
  for (const auto& want : only)
    if (std::find(names.begin(), names.end(), want) == names.end()) {
      std::string all;
      for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
      return fail("lab " + t.name + " has no check " + shown(want),
                  topo::did_you_mean(want, names,
                                     names.empty() ? "it has no checks"
                                                   : "its checks: " + all));
    }
  return {};
}

Result<CheckReport> run_checks(const Topology& t, const CheckOptions& o) {
  TRY(check_names_known(t, o.only));
  CheckReport rep;
  rep.lab = t.name;
  Ctx ctx{t, {}, {}, {}};
  ctx.on_host = o.on_host;
  for (const auto& c : t.checks) {
    if (!o.only.empty() && std::find(o.only.begin(), o.only.end(), c.name) == o.only.end()) continue;
    if (!ctx.fd(c.from)) return fail("lab " + t.name + " is not up (no namespace for " + c.from + ")",
                                     "`labctl up " + t.name + "` first");
    const auto start = Clock::now();
    const Millis deadline = o.timeout ? *o.timeout : check_deadline(c);
    ctx.deadline = {start + deadline, deadline};
    ctx.progress = [&](const std::string& what) {
      if (o.on_progress)
        o.on_progress(c, what, std::chrono::duration_cast<Millis>(Clock::now() - start));
    };
    CheckResult r = run_one(ctx, c);
    r.name = c.name;
    r.kind = c.kind;
    r.expected = check_expectation(c.kind);
    r.deadline_ms = static_cast<double>(deadline.count());
    r.ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    // An exercise graded without hints shows what each check saw, never the fault it found.
    if (!r.passed && (!t.exercise || t.exercise->hints)) r.causes = diagnose(t, c);
    // Whatever completes the result (its causes) goes above: on_result shows it at once.
    if (o.on_result) o.on_result(r);
    rep.results.push_back(std::move(r));
  }
  return rep;
}

Result<CheckReport> run_checks(const Topology& t, const std::vector<std::string>& only) {
  CheckOptions o;
  o.only = only;
  return run_checks(t, o);
}

std::string render_check(const CheckResult& c) {
  std::ostringstream o;
  o << (c.passed ? "  PASS  " : "  FAIL  ") << c.name << " (" << c.kind << "): " << c.detail;
  if (c.ms >= 1000) o << " [" << std::fixed << std::setprecision(1) << c.ms / 1000 << " s]";
  o << "\n";
  for (const auto& k : c.causes) {
    o << "        cause: " << k.what << "\n";
    if (!k.fix.empty()) o << "        fix:   " << k.fix << "\n";
  }
  return o.str();
}

std::string render_summary(const CheckReport& r) {
  std::ostringstream o;
  int passed = 0;
  double ms = 0;
  for (const auto& c : r.results) passed += c.passed, ms += c.ms;
  if (r.results.empty())
    o << r.lab << ": no checks ran (the topology has no [checks] tables), so nothing is proven\n";
  else
    o << r.lab << ": " << passed << " of " << r.results.size() << " checks passed in "
      << std::fixed << std::setprecision(1) << ms / 1000 << " s\n";
  return o.str();
}

std::string render_checks(const CheckReport& r) {
  std::string s;
  for (const auto& c : r.results) s += render_check(c);
  return s + render_summary(r);
}

nlohmann::json checks_json(const CheckReport& r) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& c : r.results) {
    nlohmann::json causes = nlohmann::json::array();
    for (const auto& k : c.causes) causes.push_back({{"node", k.node}, {"what", k.what}, {"fix", k.fix}});
    a.push_back({{"name", c.name}, {"kind", c.kind}, {"passed", c.passed}, {"detail", c.detail},
                 {"expected", c.expected}, {"ms", c.ms}, {"deadline_ms", c.deadline_ms},
                 {"causes", causes}});
  }
  return {{"lab", r.lab}, {"passed", r.passed()}, {"checks", a}};
}

Result<CheckReport> check_report_from_json(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("lab") || !j["lab"].is_string() || !j.contains("checks") ||
      !j["checks"].is_array())
    return fail("not a check report: it needs \"lab\" and a \"checks\" list");
  CheckReport r;
  r.lab = j["lab"].get<std::string>();
  for (const auto& c : j["checks"]) {
    if (!c.is_object()) return fail("a check in the report is not an object");
    CheckResult x;
    x.name = c.value("name", "");
    x.kind = c.value("kind", "");
    x.passed = c.value("passed", false);
    x.detail = c.value("detail", "");
    x.expected = c.value("expected", "");
    x.ms = c.value("ms", 0.0);
    x.deadline_ms = c.value("deadline_ms", 0.0);
    if (c.contains("causes") && c["causes"].is_array())
      for (const auto& k : c["causes"])
        if (k.is_object()) x.causes.push_back({k.value("node", ""), k.value("what", ""), k.value("fix", "")});
    if (x.name.empty()) return fail("a check in the report has no name");
    r.results.push_back(std::move(x));
  }
  return r;
}

}  // namespace labctl
