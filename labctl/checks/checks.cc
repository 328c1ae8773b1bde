#include "labctl/checks/checks.h"

#include "labctl/checks/arp_probe.h"
#include "labctl/checks/diagnose.h"

#include "labctl/base/display.h"
#include "labctl/model/diag.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "labctl/kernel/ipvs.h"
#include "labctl/kernel/netns.h"
#include "labctl/checks/probe.h"
#include "labctl/kernel/rtnl.h"

namespace labctl {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
constexpr Millis kProbeTimeout{2000};
// IPVS counters are refreshed by the kernel's rate estimator about every 2 s.
constexpr auto kCounterSettle = 5s;

struct Ctx {
  const Topology& t;
  std::map<std::string, Fd> ns;  ///< node -> open namespace

  Result<int> fd(const std::string& node) {
    if (auto it = ns.find(node); it != ns.end()) return it->second.get();
    TRY_ASSIGN(Fd f, open_netns(netns_name(t.name, node)));
    return (ns[node] = std::move(f)).get();
  }
  // Runs fn inside node's namespace.
  Status in(const std::string& node, const std::function<Status()>& fn) {
    TRY_ASSIGN(int f, fd(node));
    return run_in_netns(f, fn);
  }
};

struct Found {
  const Node* director = nullptr;
  const VirtualService* service = nullptr;
};

Found find_service(const Topology& t, const std::string& name) {
  for (const auto& n : t.nodes)
    for (const auto& s : n.services)
      if (s.name == name) return {&n, &s};
  return {};
}

int param_int(const Check& c, const std::string& key, int fallback) {
  auto it = c.params.find(key);
  return it == c.params.end() ? fallback : std::atoi(it->second.c_str());
}

double param_double(const Check& c, const std::string& key, double fallback) {
  auto it = c.params.find(key);
  return it == c.params.end() ? fallback : std::atof(it->second.c_str());
}

std::string target_of(const Check& c) {
  auto a = IpAddr::parse(c.to);
  std::string host = a && a->v6() ? "[" + c.to + "]" : c.to;
  return c.port ? host + ":" + std::to_string(c.port) : host;
}

// Sends `n` GETs from `from` and counts the bodies (each labagent answers its node name).
Result<std::map<std::string, int>> http_counts(Ctx& ctx, const Check& c, int n, int* failed) {
  auto to = IpAddr::parse(c.to);
  if (!to) return fail("check " + c.name + ": bad target address " + c.to);
  std::map<std::string, int> counts;
  std::string path = c.params.count("path") ? c.params.at("path") : "/";
  std::string last_error;
  TRY(ctx.in(c.from, [&]() -> Status {
    for (int i = 0; i < n; ++i) {
      auto body = http_get(*to, c.port ? c.port : 80, path, kProbeTimeout);
      if (body) ++counts[*body];
      else {
        ++*failed;
        last_error = body.error().str();
      }
    }
    return {};
  }));
  if (counts.empty()) return fail(last_error.empty() ? "no answers" : last_error);
  return counts;
}

std::string counts_text(const std::map<std::string, int>& counts) {
  std::string s;
  for (const auto& [who, k] : counts) s += (s.empty() ? "" : ", ") + who + " " + std::to_string(k);
  return s;
}

CheckResult reach(Ctx& ctx, const Check& c, bool want) {
  CheckResult r;
  auto to = IpAddr::parse(c.to);
  if (!to) return {c.name, c.kind, false, "bad target address " + c.to, 0};
  Status st = ctx.in(c.from, [&] {
    return c.port ? tcp_connect(*to, c.port, kProbeTimeout) : icmp_echo(*to, kProbeTimeout);
  });
  const std::string how = c.port ? "TCP connect to " + target_of(c) : "ping " + c.to;
  r.passed = static_cast<bool>(st) == want;
  r.detail = st ? how + " from " + c.from + " succeeded" : how + " from " + c.from + " failed: " + st.error().str();
  if (!want && st) r.detail += " (it must not)";
  return r;
}

CheckResult http(Ctx& ctx, const Check& c) {
  CheckResult r;
  int failed = 0;
  // Enough requests that a balanced service shows each expected body at least once.
  int n = std::max<int>(4, 2 * static_cast<int>(c.expect.size()));
  auto counts = http_counts(ctx, c, n, &failed);
  if (!counts) return {c.name, c.kind, false, "GET http://" + target_of(c) + " from " + c.from + ": " + counts.error().str(), 0};
  r.detail = "GET http://" + target_of(c) + " x" + std::to_string(n) + ": " + counts_text(*counts);
  if (failed) r.detail += ", " + std::to_string(failed) + " failed";
  r.passed = failed == 0;
  if (!c.expect.empty()) {
    bool any = false;
    for (const auto& [body, k] : *counts)
      for (const auto& e : c.expect)
        if (body.find(e) != std::string::npos) any = true;
    if (!any) r.passed = false, r.detail += "; none contained an expected body";
  }
  return r;
}

CheckResult balance(Ctx& ctx, const Check& c) {
  CheckResult r;
  Found f = find_service(ctx.t, c.service);
  if (!f.service) return {c.name, c.kind, false, "no service " + c.service, 0};
  const auto& svc = *f.service;
  const int n = param_int(c, "requests", 60);
  const double tol = param_double(c, "tolerance", 0.25);
  int failed = 0;
  auto counts = http_counts(ctx, c, n, &failed);
  if (!counts) return {c.name, c.kind, false, counts.error().str(), 0};
  r.detail = counts_text(*counts) + " of " + std::to_string(n);
  if (failed) r.detail += " (" + std::to_string(failed) + " failed)";
  auto shares = expected_shares(svc);
  r.passed = failed == 0;
  if (shares.empty()) {
    // Source hashing or persistence: one client always lands on the same server.
    r.passed = r.passed && counts->size() == 1;
    r.detail += counts->size() == 1 ? "; one client sticks to one server, as " + svc.scheduler +
                                          (svc.persistence ? " with persistence" : "") + " should"
                                    : "; expected a single server for one client";
    return r;
  }
  std::string why;
  for (size_t i = 0; i < svc.real_servers.size(); ++i) {
    const auto& rs = svc.real_servers[i];
    const std::string who = rs.node.empty() ? rs.addr.str() : rs.node;
    const int got = counts->count(who) ? counts->at(who) : 0;
    const double want = shares[i] * n;
    if (shares[i] == 0) {
      if (got) why += "; " + who + " has weight 0 but answered";
      continue;
    }
    if (got == 0) why += "; " + who + " never answered";
    else if (std::abs(got - want) > tol * want)
      why += "; " + who + " got " + std::to_string(got) + ", expected about " +
             std::to_string(static_cast<int>(std::lround(want)));
  }
  if (!why.empty()) r.passed = false, r.detail += why;
  else r.detail += "; within " + std::to_string(static_cast<int>(tol * 100)) + "% of " + svc.scheduler + "'s share";
  return r;
}

Result<IpvsStats> service_stats(Ctx& ctx, const Node& director, const VirtualService& svc) {
  IpvsStats out;
  bool found = false;
  TRY(ctx.in(director.name, [&]() -> Status {
    TRY_ASSIGN(Ipvs ipvs, Ipvs::open(netns_name(ctx.t.name, director.name)));
    TRY_ASSIGN(auto services, ipvs.services());
    for (const auto& s : services)
      if ((svc.fwmark && s.fwmark == svc.fwmark) ||
          (!svc.fwmark && s.addr == svc.vip && s.port == svc.port)) {
        out = s.stats;
        found = true;
      }
    return {};
  }));
  if (!found) return fail("service " + svc.name + " is not in the director's IPVS table");
  return out;
}

CheckResult bypass(Ctx& ctx, const Check& c) {
  Found f = find_service(ctx.t, c.service);
  if (!f.service) return {c.name, c.kind, false, "no service " + c.service, 0};
  auto before = service_stats(ctx, *f.director, *f.service);
  if (!before) return {c.name, c.kind, false, before.error().str(), 0};
  int failed = 0;
  const int n = param_int(c, "requests", 20);
  auto counts = http_counts(ctx, c, n, &failed);
  if (!counts) return {c.name, c.kind, false, counts.error().str(), 0};
  // Wait for the estimator to publish the requests we just sent.
  IpvsStats now = *before;
  for (auto end = Clock::now() + kCounterSettle; Clock::now() < end; std::this_thread::sleep_for(100ms)) {
    auto s = service_stats(ctx, *f.director, *f.service);
    if (!s) return {c.name, c.kind, false, s.error().str(), 0};
    now = *s;
    if (now.inpkts > before->inpkts) break;
  }
  CheckResult r;
  const uint64_t in = now.inpkts - before->inpkts, out = now.outpkts - before->outpkts;
  r.detail = std::to_string(n) + " requests: the director forwarded " + std::to_string(in) +
             " packets in and " + std::to_string(out) + " out";
  r.passed = in > 0 && out == 0;
  if (in == 0) r.detail += "; the director's counters never moved (did traffic reach it?)";
  else if (out) r.detail += "; replies went back through the director";
  else r.detail += ": replies bypassed it";
  return r;
}

Result<std::vector<LinkInfo>> links_of(Ctx& ctx, const std::string& node) {
  std::vector<LinkInfo> out;
  TRY(ctx.in(node, [&]() -> Status {
    TRY_ASSIGN(Rtnl rtnl, Rtnl::open());
    TRY_ASSIGN(out, rtnl.links());
    return {};
  }));
  return out;
}

// Who answers "who has VIP?": every reply is collected (arp_probe), so a real server that
// also answers fails the check every time, not only when it wins the race to the client.
// IPv6 VIPs have no ARP: for them the client's neighbour table after a connect is read,
// which names only the first answer (see docs/checks.md).
CheckResult arp_owner(Ctx& ctx, const Check& c) {
  constexpr Millis kArpWait{250};
  Found f = find_service(ctx.t, c.service);
  if (!f.service) return {c.name, c.kind, false, "no service " + c.service, 0, {}};
  auto vip = IpAddr::parse(c.to);
  if (!vip) return {c.name, c.kind, false, "bad VIP " + c.to, 0, {}};
  // Every lab node's MACs, to name who answered.
  std::map<std::string, std::string> owner;  // mac -> "rs1's eth0"
  std::set<std::string> director_macs;
  for (const auto& n : ctx.t.nodes) {
    auto links = links_of(ctx, n.name);
    if (!links) continue;
    for (const auto& l : *links)
      if (!l.mac.empty() && l.name != "lo") {
        owner.emplace(l.mac, n.name + "'s " + l.name);
        if (&n == f.director) director_macs.insert(l.mac);
      }
  }
  auto name_of = [&](const std::string& mac) {
    auto it = owner.find(mac);
    return it != owner.end() ? it->second : mac + " (no lab node has it)";
  };
  // The client's neighbour entry for the VIP, as evidence of what it uses now.
  auto cached = [&]() -> std::string {
    std::string mac;
    (void)ctx.in(c.from, [&]() -> Status {
      TRY_ASSIGN(Rtnl rtnl, Rtnl::open());
      TRY_ASSIGN(auto neigh, rtnl.neighbours(vip->family));
      for (const auto& nb : neigh)
        if (nb.dst == *vip && !nb.lladdr.empty()) mac = nb.lladdr;
      return {};
    });
    return mac;
  };
  if (vip->v6()) {
    (void)ctx.in(c.from, [&]() -> Status { return tcp_connect(*vip, c.port ? c.port : 80, kProbeTimeout); });
    std::string mac = cached();
    if (mac.empty()) return {c.name, c.kind, false, c.from + " has no neighbour entry for " + c.to, 0, {}};
    bool ok = director_macs.count(mac) > 0;
    std::string detail = c.from + " resolves VIP " + c.to + " to " + name_of(mac) + " (neighbour table: IPv6 has no ARP)";
    if (!ok) detail += "; expected the director " + f.director->name;
    return {c.name, c.kind, ok, detail, 0, {}};
  }
  ArpProbeResult probe;
  Status st = ctx.in(c.from, [&]() -> Status {
    TRY_ASSIGN(probe, arp_probe(*vip, kArpWait));
    return {};
  });
  if (!st) return {c.name, c.kind, false, "ARP for " + c.to + " from " + c.from + ": " + st.error().str(), 0, {}};
  const std::string asked = "ARP who-has " + c.to + " from " + c.from + "'s " + probe.dev;
  if (probe.answers.empty())
    return {c.name, c.kind, false, asked + ": nobody answered (expected the director " + f.director->name + ")", 0, {}};
  std::vector<std::string> director_said, others;
  for (const auto& m : probe.answers)
    (director_macs.count(mac_str(m)) ? director_said : others).push_back(name_of(mac_str(m)));
  // Named in a stable order, whichever answered first.
  std::sort(director_said.begin(), director_said.end());
  std::sort(others.begin(), others.end());
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i == 0 ? "" : i + 1 == v.size() ? " and " : ", ") + v[i];
    return s;
  };
  CheckResult r{c.name, c.kind, !director_said.empty() && others.empty(), asked + ": ", 0, {}};
  if (director_said.empty()) r.detail += "the director " + f.director->name + " did not answer; ";
  else r.detail += "answered by " + join(director_said) + (others.empty() ? " only" : "") + "; ";
  if (!others.empty())
    r.detail += join(others) + (others.size() == 1 ? " also answers" : " also answer") + " ARP for " + c.to + "; ";
  if (std::string mac = cached(); !mac.empty()) r.detail += c.from + "'s neighbour table: " + name_of(mac);
  else r.detail += c.from + " has no neighbour entry for it yet";
  return r;
}

CheckResult run_one(Ctx& ctx, const Check& c) {
  if (c.kind == "reach") return reach(ctx, c, true);
  if (c.kind == "no-reach") return reach(ctx, c, false);
  if (c.kind == "http") return http(ctx, c);
  if (c.kind == "balance") return balance(ctx, c);
  if (c.kind == "bypass") return bypass(ctx, c);
  if (c.kind == "arp-owner") return arp_owner(ctx, c);
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
    if (!r.passed) r.causes = diagnose(t, c);
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
