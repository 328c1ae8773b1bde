#include "labctl/checks/checks.h"

#include "labctl/base/display.h"
#include "labctl/model/diag.h"

#include <algorithm>
#include <chrono>
#include <sstream>

#include "labctl/checks/check_kind.h"

namespace labctl {
namespace {

using check_kind::Clock;
using check_kind::Ctx;

CheckResult run_one(Ctx& ctx, const Check& c) {
  if (c.kind == "reach") return check_kind::reach(ctx, c, true);
  if (c.kind == "no-reach") return check_kind::reach(ctx, c, false);
  if (c.kind == "http") return check_kind::http(ctx, c);
  if (c.kind == "balance") return check_kind::balance(ctx, c);
  if (c.kind == "bypass") return check_kind::bypass(ctx, c);
  if (c.kind == "arp-owner") return check_kind::arp_owner(ctx, c);
  return {c.name, c.kind, false, "unknown check kind " + c.kind, 0};
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

std::vector<double> expected_shares(const VirtualService& s) {
  if (s.persistence || hashes_one_client(s.scheduler)) return {};
  std::vector<double> w;
  double total = 0;
  for (const auto& rs : s.real_servers) {
    // rr ignores weights except that 0 takes a server out; the others follow weights.
    double x = rs.weight <= 0 ? 0 : (s.scheduler == "rr" ? 1 : rs.weight);
    w.push_back(x);
    total += x;
  }
  for (auto& x : w) x = total > 0 ? x / total : 0;
  return w;
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

Result<CheckReport> run_checks(const Topology& t, const std::vector<std::string>& only) {
  TRY(check_names_known(t, only));
  CheckReport rep;
  rep.lab = t.name;
  Ctx ctx{t, {}};
  for (const auto& c : t.checks) {
    if (!only.empty() && std::find(only.begin(), only.end(), c.name) == only.end()) continue;
    if (!ctx.fd(c.from)) return fail("lab " + t.name + " is not up (no namespace for " + c.from + ")",
                                     "`labctl up " + t.name + "` first");
    auto start = Clock::now();
    CheckResult r = run_one(ctx, c);
    r.name = c.name;
    r.kind = c.kind;
    r.ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    rep.results.push_back(std::move(r));
  }
  return rep;
}

std::string render_checks(const CheckReport& r) {
  std::ostringstream o;
  int passed = 0;
  for (const auto& c : r.results) {
    passed += c.passed;
    o << (c.passed ? "  PASS  " : "  FAIL  ") << c.name << " (" << c.kind << "): " << c.detail << "\n";
    for (const auto& k : c.causes) {
      o << "        cause: " << k.what << "\n";
      if (!k.fix.empty()) o << "        fix:   " << k.fix << "\n";
    }
  }
  if (r.results.empty())
    o << r.lab << ": no checks ran (the topology has no [checks] tables), so nothing is proven\n";
  else
    o << r.lab << ": " << passed << " of " << r.results.size() << " checks passed\n";
  return o.str();
}

nlohmann::json checks_json(const CheckReport& r) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& c : r.results) {
    nlohmann::json causes = nlohmann::json::array();
    for (const auto& k : c.causes) causes.push_back({{"node", k.node}, {"what", k.what}, {"fix", k.fix}});
    a.push_back({{"name", c.name}, {"kind", c.kind}, {"passed", c.passed}, {"detail", c.detail},
                 {"ms", c.ms}, {"causes", causes}});
  }
  return {{"lab", r.lab}, {"passed", r.passed()}, {"checks", a}};
}

}  // namespace labctl
