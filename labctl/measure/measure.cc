#include "labctl/measure/measure.h"

#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "labctl/base/fd.h"
#include "labctl/base/file.h"
#include "labctl/kernel/ipvs_proc.h"
#include "labctl/kernel/netns.h"
#include "labctl/kernel/process.h"
#include "labctl/kernel/tcp_counters.h"
#include "labctl/model/load_target.h"

namespace labctl {

namespace {

// 100000000, not 1e+08; 0.05 as it is.
std::string num_text(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::abs(v) < 1e15) return fmt::format("{:.0f}", v);
  return fmt::format("{:g}", v);
}

Status out_of_range(const std::string& what, double v, double lo, double hi) {
  return fail(fmt::format("{} {} is out of range {}..{}", what, num_text(v), num_text(lo), num_text(hi)),
              "labctl measure --help lists every bound");
}

std::string node_list(const Topology& t) {
  std::string s;
  for (const auto& n : t.nodes) s += (s.empty() ? "" : ", ") + n.name;
  return s;
}

}  // namespace

Status check_measure_options(const MeasureOptions& o) {
  using B = MeasureBounds;
  if (o.requests && o.seconds) return fail("give --requests or --seconds, not both", "one bounds the load of each target");
  if (o.requests && (*o.requests < B::kRequestsMin || *o.requests > B::kRequestsMax))
    return out_of_range("--requests", static_cast<double>(*o.requests), B::kRequestsMin, B::kRequestsMax);
  if (o.seconds && !(*o.seconds >= B::kSecondsMin && *o.seconds <= B::kSecondsMax))
    return out_of_range("--seconds", *o.seconds, B::kSecondsMin, B::kSecondsMax);
  if (o.concurrency < B::kConcurrencyMin || o.concurrency > B::kConcurrencyMax)
    return out_of_range("--concurrency", o.concurrency, B::kConcurrencyMin, B::kConcurrencyMax);
  if (o.rate && !(*o.rate >= B::kRateMin && *o.rate <= B::kRateMax))
    return out_of_range("--rate", *o.rate, B::kRateMin, B::kRateMax);
  if (o.rounds < B::kRoundsMin || o.rounds > B::kRoundsMax)
    return out_of_range("--rounds", o.rounds, B::kRoundsMin, B::kRoundsMax);
  const double per_round = o.seconds.value_or(o.requests ? 1 : B::kDefaultSeconds) / o.rounds;
  if (!o.requests && per_round < 0.1)
    return fail(fmt::format("{} rounds of {:g} s leave {:g} s a round", o.rounds, o.seconds.value_or(B::kDefaultSeconds), per_round),
                "a round needs at least 0.1 s: fewer --rounds or more --seconds");
  return {};
}

Result<MeasurePlan> plan_measure(const Topology& t, const MeasureOptions& o) {
  MeasurePlan p;
  std::vector<std::pair<const Node*, const VirtualService*>> services;
  for (const auto& n : t.nodes)
    for (const auto& s : n.services) services.emplace_back(&n, &s);
  std::string service_names;
  for (const auto& [n, s] : services) service_names += (service_names.empty() ? "" : ", ") + s->name;
  auto add_service = [&](const Node& n, const VirtualService& s) -> Status {
    if (s.fwmark != 0 || s.proto != Proto::Tcp)
      return fail("service " + s.name + (s.fwmark ? " is selected by a firewall mark" : " is not TCP"),
                  "measure sends HTTP to a VIP and port: give it as ADDRESS:PORT");
    LoadTarget lt{s.vip, s.port, "/"};
    p.targets.push_back({s.name, "http://" + lt.host_header() + "/", n.name});
    return {};
  };
  if (o.targets.empty()) {
    for (const auto& [n, s] : services)
      if (s->fwmark == 0 && s->proto == Proto::Tcp) TRY(add_service(*n, *s));
    if (p.targets.empty())
      return fail("lab " + t.name + " has no TCP service to measure", "name a target: a URL or ADDRESS:PORT");
  }
  for (const auto& text : o.targets) {
    auto svc = std::find_if(services.begin(), services.end(), [&](const auto& ns) { return ns.second->name == text; });
    if (svc != services.end()) {
      TRY(add_service(*svc->first, *svc->second));
      continue;
    }
    auto lt = parse_load_target(text);
    if (!lt)
      return fail("target " + text + " is no service of lab " + t.name + " and no address: " + lt.error().message,
                  (service_names.empty() ? "" : "its services: " + service_names + "; or ") + std::string(kLoadTargetForms));
    // An address that is a service's VIP and port is measured as that service.
    std::string director;
    for (const auto& [n, s] : services)
      if (s->vip == lt->addr && s->port == lt->port) director = n->name;
    p.targets.push_back({text, "http://" + lt->host_header() + lt->path, director});
  }
  const std::string nodes = node_list(t);
  if (!o.from.empty()) {
    if (!t.node(o.from)) return fail("lab " + t.name + " has no node " + o.from, "its nodes: " + nodes);
    p.from = o.from;
    return p;
  }
  // As the lab's own checks do: the node its checks of a measured service run from, then
  // that of any check, then a node named client.
  for (const auto& tg : p.targets)
    for (const auto& c : t.checks)
      if (!tg.director.empty() && c.service == tg.label && !c.from.empty() && t.node(c.from)) {
        p.from = c.from;
        return p;
      }
  for (const auto& c : t.checks)
    if (!c.from.empty() && t.node(c.from)) {
      p.from = c.from;
      return p;
    }
  if (t.node("client")) {
    p.from = "client";
    return p;
  }
  return fail("no node to send the load from", "name one with --from NODE (its nodes: " + nodes + ")");
}

void LoadFigures::add(const LoadFigures& o) {
  requests += o.requests;
  answered += o.answered;
  interrupted += o.interrupted;
  body_bytes += o.body_bytes;
  connections += o.connections;
  seconds += o.seconds;
  cpu_seconds += o.cpu_seconds;
  for (const auto& [k, n] : o.served) served[k] += n;
  for (const auto& [k, n] : o.errors) errors[k] += n;
  latency.merge(o.latency);
}

uint64_t LoadFigures::failed() const {
  uint64_t n = 0;
  for (const auto& [k, v] : errors) n += v;
  return n;
}

Result<LoadFigures> parse_load_json(const std::string& text) {
  // The agent prints one line; anything before it (a warning) is not ours to read.
  const size_t start = text.rfind("\n{", text.size() >= 2 ? text.size() - 2 : 0);
  const std::string line = text.substr(start == std::string::npos ? 0 : start + 1);
  auto j = nlohmann::json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return fail("labagent load printed no JSON result: " + line.substr(0, 200));
  try {
    LoadFigures f;
    f.requests = j.at("requests").get<uint64_t>();
    f.answered = j.at("answered").get<uint64_t>();
    f.interrupted = j.at("interrupted").get<uint64_t>();
    f.body_bytes = j.at("body_bytes").get<uint64_t>();
    f.connections = j.at("connections").get<uint64_t>();
    f.seconds = j.at("seconds").get<double>();
    f.cpu_seconds = j.at("cpu_seconds").get<double>();
    f.served = j.at("served").get<std::map<std::string, uint64_t>>();
    f.errors = j.at("errors").get<std::map<std::string, uint64_t>>();
    const auto& l = j.at("latency_ns");
    if (!f.latency.add_buckets(l.at("buckets").get<std::vector<std::pair<uint32_t, uint64_t>>>(), l.at("min").get<uint64_t>(),
                               l.at("max").get<uint64_t>()))
      return fail("labagent load's latency histogram has a bucket beyond the last");
    return f;
  } catch (const nlohmann::json::exception& e) {
    return fail(std::string("labagent load's JSON result lacks a field: ") + e.what());
  }
}

void TargetResult::add_round(const TargetResult& r) {
  ++rounds;
  load.add(r.load);
  for (const auto& [name, d] : r.directors) {
    auto& m = directors[name];
    m.conns += d.conns;
    m.inpkts += d.inpkts;
    m.outpkts += d.outpkts;
    m.inbytes += d.inbytes;
    m.outbytes += d.outbytes;
  }
  for (const auto& [name, n] : r.nodes) {
    auto& m = nodes[name];
    m.passive_opens += n.passive_opens;
    m.active_opens += n.active_opens;
    m.sockets = std::max(m.sockets, n.sockets);
    m.time_wait = std::max(m.time_wait, n.time_wait);
    m.cpu_seconds += n.cpu_seconds;
  }
  for (const auto& note : r.notes)
    if (std::find(notes.begin(), notes.end(), note) == notes.end()) notes.push_back(note);
}

int rounds_of(const MeasureOptions& o) {
  return o.requests ? static_cast<int>(std::min<long long>(o.rounds, *o.requests)) : o.rounds;
}

RoundLoad round_load(const MeasureOptions& o, int r) {
  const int n = rounds_of(o);
  RoundLoad l;
  if (o.requests) {
    l.requests = *o.requests / n + (r < *o.requests % n ? 1 : 0);
    l.seconds = MeasureBounds::kRoundCapSeconds;
  } else {
    l.seconds = o.seconds.value_or(MeasureBounds::kDefaultSeconds) / n;
  }
  return l;
}

std::vector<std::string> load_argv(const std::string& labagent, const MeasureOptions& o, const MeasureTarget& target,
                                   const RoundLoad& load) {
  // --count caps a --seconds round too: at most kRequestsMax.
  std::vector<std::string> argv{labagent, "load", "--json", "--target", target.url,
                                "--count", std::to_string(load.requests.value_or(MeasureBounds::kRequestsMax)),
                                "--concurrency", std::to_string(o.concurrency), "--seconds", fmt::format("{:g}", load.seconds)};
  if (o.rate) argv.insert(argv.end(), {"--rate", fmt::format("{:g}", *o.rate)});
  if (!o.new_connections) argv.emplace_back("--keep-alive");
  return argv;
}

namespace {

struct NodeSnapshot {
  TcpCounters tcp;
  std::map<pid_t, double> cpu;  ///< Seconds of CPU each process has had.
};

// The CPU time of the whole process, every thread of it (utime + stime of /proc/PID/stat:
// sched_facts' schedstat is the main thread's only, and an agent serves from its others).
double cpu_of(pid_t pid) {
  static const long ticks = ::sysconf(_SC_CLK_TCK);
  auto f = parse_sched_facts(read_text("/proc/" + std::to_string(pid) + "/stat"), "", ticks);
  return f ? std::chrono::duration<double>(f->run).count() : -1;
}

// Everything read before and after a round, per node and per director.
struct Snapshot {
  std::map<std::string, NodeSnapshot> nodes;
  std::map<std::string, IpvsTotals> directors;
  std::map<std::string, TcpCensus> census;  ///< After only.
  std::vector<std::string> notes;
};

Result<Snapshot> snapshot(const Topology& t, std::map<std::string, Fd>& ns, const std::set<std::string>& directors,
                          bool census) {
  Snapshot s;
  for (const auto& n : t.nodes) {
    auto& fd = ns[n.name];
    if (!fd) {
      auto opened = open_netns(netns_name(t.name, n.name));
      if (!opened)
        return fail("lab " + t.name + " has no namespace for node " + n.name + " (" + opened.error().str() + ")",
                    "is the lab up? `labctl up " + t.name + "`");
      fd = std::move(*opened);
    }
    NodeSnapshot snap;
    TRY(run_in_netns(fd.get(), [&]() -> Status {
      TRY_ASSIGN(snap.tcp, tcp_counters_here());
      if (census) {
        TRY_ASSIGN(s.census[n.name], tcp_census_here());
      }
      if (directors.contains(n.name)) {
        auto totals = ipvs::read_totals();
        if (totals) s.directors[n.name] = *totals;
        else s.notes.push_back("IPVS totals of " + n.name + " unreadable: " + totals.error().message);
      }
      return {};
    }));
    for (pid_t pid : pids_in_netns(netns_path(netns_name(t.name, n.name))))
      if (double c = cpu_of(pid); c >= 0) snap.cpu[pid] = c;
    s.nodes[n.name] = std::move(snap);
  }
  return s;
}

TargetResult delta(const Snapshot& before, const Snapshot& after) {
  TargetResult r;
  for (const auto& [name, a] : after.nodes) {
    auto b = before.nodes.find(name);
    if (b == before.nodes.end()) continue;
    NodeFigures f;
    const TcpCounters d = a.tcp - b->second.tcp;
    f.passive_opens = d.passive_opens;
    f.active_opens = d.active_opens;
    if (auto c = after.census.find(name); c != after.census.end()) {
      f.sockets = c->second.connected;
      f.time_wait = c->second.in("TIME_WAIT");
    }
    // A process there before and after: what it had meanwhile; one that started since: all.
    for (const auto& [pid, cpu] : a.cpu) {
      auto was = b->second.cpu.find(pid);
      f.cpu_seconds += std::max(0.0, cpu - (was == b->second.cpu.end() ? 0.0 : was->second));
    }
    r.nodes[name] = f;
  }
  for (const auto& [name, a] : after.directors) {
    auto b = before.directors.find(name);
    if (b == before.directors.end()) continue;
    DirectorFigures d;
    d.conns = a.exact.conns - b->second.exact.conns;
    d.inpkts = a.exact.inpkts - b->second.exact.inpkts;
    d.outpkts = a.exact.outpkts - b->second.exact.outpkts;
    d.inbytes = a.exact.inbytes - b->second.exact.inbytes;
    d.outbytes = a.exact.outbytes - b->second.exact.outbytes;
    r.directors[name] = d;
  }
  r.notes = after.notes;
  return r;
}

}  // namespace

Result<MeasureReport> run_measure(const Topology& t, const MeasurePlan& plan, const MeasureOptions& o,
                                  const std::string& labagent, const std::function<void(const MeasureReport&)>& progress,
                                  const std::atomic<bool>* stop) {
  MeasureReport rep;
  rep.lab = t.name;
  rep.from = plan.from;
  rep.options = o;
  const int rounds = rounds_of(o);
  rep.rounds_planned = rounds * static_cast<int>(plan.targets.size());
  for (const auto& tg : plan.targets) {
    TargetResult x;
    x.target = tg;
    rep.results.push_back(std::move(x));
  }
  std::set<std::string> directors;
  for (const auto& n : t.nodes)
    if (!n.services.empty()) directors.insert(n.name);
  std::map<std::string, Fd> ns;
  // Every namespace opened, and every counter read once, before any load starts: a lab that
  // is half gone fails here, not after a round.
  TRY_ASSIGN(Snapshot first, snapshot(t, ns, directors, false));
  (void)first;
  for (int r = 0; r < rounds; ++r) {
    for (size_t i = 0; i < plan.targets.size(); ++i) {
      if (stop && stop->load()) {
        rep.interrupted = true;
        return rep;
      }
      const RoundLoad load = round_load(o, r);
      const auto argv = load_argv(labagent, o, plan.targets[i], load);
      TRY_ASSIGN(Snapshot before, snapshot(t, ns, directors, false));
      // Bounded twice: the agent stops itself, and run_captured stops it 30 s later.
      const auto until = std::chrono::steady_clock::now() +
                         std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                             std::chrono::duration<double>(load.seconds + 30));
      Result<Captured> ran = fail("not run");
      TRY(run_in_netns(ns[plan.from].get(), [&]() -> Status {
        // posix_spawn from this thread: the child starts in the thread's namespace.
        ran = run_captured(argv, until, stop, std::chrono::seconds(2));
        return {};
      }));
      if (!ran) return fail("labagent load could not start in node " + plan.from + ": " + ran.error().str(),
                            "is labagent installed beside labctl (or $LABCTL_AGENT set)?");
      auto figures = parse_load_json(ran->out);
      if (!figures) {
        if (ran->stopped) {
          rep.interrupted = true;
          return rep;
        }
        return fail("labagent load in node " + plan.from + " failed (exit " + std::to_string(ran->exit_code) +
                        "): " + figures.error().message + (ran->err.empty() ? "" : "; it said: " + ran->err.substr(0, 400)),
                    "run it by hand: labctl exec " + t.name + " " + plan.from + " -- labagent load --target " +
                        plan.targets[i].url);
      }
      TRY_ASSIGN(Snapshot after, snapshot(t, ns, directors, true));
      TargetResult round = delta(before, after);
      round.load = std::move(*figures);
      rep.results[i].add_round(round);
      // A round cut short by Ctrl-C counts in the figures, not as a round done.
      if (ran->stopped || (stop && stop->load())) {
        rep.interrupted = true;
        return rep;
      }
      ++rep.rounds_done;
      if (progress) progress(rep);
    }
  }
  return rep;
}

}  // namespace labctl
