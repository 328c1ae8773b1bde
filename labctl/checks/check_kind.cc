#include "labctl/checks/check_kind.h"

#include "labctl/model/hosts.h"

#include <fmt/format.h>
#include <net/if.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <sstream>

#include "labctl/base/display.h"
#include "labctl/base/file.h"
#include "labctl/checks/sched_judge.h"
#include "labctl/kernel/ipvs_proc.h"
#include "labctl/lab/agent_control.h"
#include "labctl/lab/ipvs_table.h"
#include "labctl/kernel/sysctl.h"

namespace labctl::check_kind {

Millis Deadline::left() const {
  return std::max(Millis{0}, std::chrono::duration_cast<Millis>(end - Clock::now()));
}

Millis Deadline::probe(Millis want) const { return std::max(Millis{1}, std::min(want, left())); }

Millis Deadline::first_patience(Millis total) { return std::max(kProbeTimeout, total / 4); }

Millis Deadline::learned_patience(Millis slowest, Millis total) {
  return std::max(kProbeTimeout, std::min(4 * slowest, total));
}

Millis Deadline::next_patience(Millis patience, Millis total) {
  return std::max(kProbeTimeout, std::min(2 * patience, total));
}

bool Deadline::resend(const Error& e) const { return e.errnum == ETIMEDOUT && !over(); }

std::string Deadline::ran_out() const {
  std::ostringstream o;
  o << "the check's " << static_cast<double>(total.count()) / 1000 << " s deadline ran out";
  return o.str();
}

CheckResult verdict(const Check& c, bool passed, std::string detail) {
  CheckResult r;
  r.name = c.name;
  r.kind = c.kind;
  r.passed = passed;
  r.detail = std::move(detail);
  return r;
}

std::string bytes_text(uint64_t b) {
  if (b >= (uint64_t{1} << 20)) return fmt::format("{:.3g} MiB", static_cast<double>(b) / (1 << 20));
  if (b >= (uint64_t{1} << 10)) return fmt::format("{:.3g} KiB", static_cast<double>(b) / (1 << 10));
  return fmt::format("{} bytes", b);
}

std::string target_of(const Check& c) {
  std::string host = c.to.v6() ? "[" + c.to_text + "]" : c.to_text;
  return c.port ? host + ":" + std::to_string(c.port) : host;
}

std::string who_has(const Topology& t, const IpAddr& addr) {
  if (const Node* n = t.owner_of(addr)) return n->name;
  // A loopback real server (127.0.0.1) is its director serving locally: the loader
  // recorded that node with it.
  for (const auto& n : t.nodes)
    for (const auto& s : n.services)
      for (const auto& rs : s.real_servers)
        if (rs.addr == addr && !rs.node.empty()) return rs.node;
  return addr.str();
}

std::string exchange_name(const Check& c) {
  if (c.params.udp()) return "UDP to " + target_of(c);
  if (c.params.has("banner")) return "banner of " + target_of(c);
  return "GET http://" + target_of(c) + c.params.text("path");
}

Result<std::string> exchange(const Check& c, const IpAddr& to, Millis timeout) {
  const uint16_t port = c.port ? c.port : 80;
  if (c.params.udp()) {
    const std::string payload = c.params.has("send") ? c.params.text("send") : "labctl " + c.name;
    TRY_ASSIGN(std::string reply, udp_exchange(to, port, payload, timeout));
    if (c.expect.empty()) {
      if (reply != payload)
        return fail("UDP reply " + shown(reply) + " is not the echo of " + shown(payload),
                    "give expect = [\"...\"] when the service answers something else");
      return reply;
    }
    for (const auto& e : c.expect)
      if (reply.find(e) != std::string::npos) return reply;
    return fail("UDP reply " + shown(reply) + " contains none of expect");
  }
  if (c.params.has("banner")) return tcp_banner(to, port, c.params.text("banner"), timeout);
  return http_get(to, port, c.params.text("path"), timeout);
}

std::string Requests::text() const {
  std::string s;
  for (const auto& [who, k] : counts)
    s += (s.empty() ? "" : ", ") + (plainly_printable(who) && who.size() <= 40 ? who : shown(who, 40)) +
         " " + std::to_string(k);
  if (s.empty()) s = "no answers";
  s += " of " + std::to_string(sent);
  if (sent != planned) s += " sent (of " + std::to_string(planned) + " planned)";
  if (failed) s += ", " + std::to_string(failed) + " failed (last: " + last_error + ")";
  if (resent)
    s += ", " + std::to_string(resent) + " sent again after a timeout (waiting up to " +
         std::to_string(patience.count()) + " ms)";
  if (!stopped.empty()) s += "; stopped early: " + stopped;
  return s;
}

Result<Requests> send_requests(Ctx& ctx, const Check& c, int n, const Conclusive& conclusive,
                               bool failures_conclusive) {
  Requests q;
  q.planned = n;
  Millis slowest{0};
  TRY(ctx.in(c.from, [&]() -> Status {
    while (q.sent < n) {
      if (ctx.deadline.over()) {
        q.stopped = ctx.deadline.ran_out();
        break;
      }
      // Slow, not lost: until the first answer, a request that timed out goes again with more
      // patience, counted once. After it a request waits four times the slowest answer, and a
      // timeout is a failure (a server that drops what it gets), as it is where failures do not
      // count.
      Clock::time_point began;
      auto once = [&](Millis timeout) {
        began = Clock::now();
        return exchange(c, c.to, timeout);
      };
      auto answer = failures_conclusive && q.answered() == 0
                        ? patiently(ctx.deadline, once, &q.resent)
                        : once(ctx.deadline.probe());
      ++q.sent;
      if (answer) {
        ++q.counts[*answer];
        slowest = std::max(slowest, std::chrono::duration_cast<Millis>(Clock::now() - began));
        ctx.deadline.answered_after(slowest);
      } else {
        ++q.failed;
        const std::string e = answer.error().str();
        q.last_error = e.substr(0, e.find('\n'));  // without the hint
      }
      ctx.report(std::to_string(q.sent) + " of " + std::to_string(n) + " requests" +
                 (q.failed ? ", " + std::to_string(q.failed) + " failed" : ""));
      if (q.sent == n) break;
      if (!failures_conclusive)
        ;
      else if (q.answered() == 0 && q.failed >= kUnreachableAfter)
        q.stopped = "the first " + std::to_string(q.failed) + " requests all failed";
      else if (q.failed >= kFailuresConclusive)
        q.stopped = std::to_string(q.failed) + " requests failed";
      if (q.stopped.empty() && conclusive) q.stopped = conclusive(q);
      if (!q.stopped.empty()) break;
    }
    return {};
  }));
  q.patience = ctx.deadline.patience();
  return q;
}

Result<LiveService> live_service(Ctx& ctx, const Node& director, const VirtualService& svc) {
  LiveService out;
  bool found = false;
  if (auto host = ctx.remote_host(director.name)) {
    // The director runs on another host: its table as `labctl ipvs --json` prints it there.
    auto text = ctx.on_host(*host, {"ipvs", ctx.t.name, director.name, "--json"});
    if (!text) return tl::unexpected(text.error().context("reading " + director.name + "'s IPVS table on host " + *host));
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_discarded()) return fail("host " + *host + " printed no IPVS table in JSON: " + text->substr(0, 200));
    TRY_ASSIGN(IpvsTable table, ipvs_table_from_json(j));
    out.services_in_table = table.services.size();
    for (auto& ts : table.services)
      if (same_service(ts.service, svc)) {
        out.service = ts.service;
        for (auto& d : ts.dests) out.dests.push_back(d.dest);
        return out;
      }
    return fail("service " + svc.name + " (" + ipvs::service_name(svc) + ") is not in the director's IPVS table",
                "see `labctl ipvs " + ctx.t.name + " " + director.name + "`");
  }
  TRY(ctx.in(director.name, [&]() -> Status {
    TRY_ASSIGN(Ipvs ipvs, Ipvs::open(netns_name(ctx.t.name, director.name)));
    TRY_ASSIGN(auto services, ipvs.services());
    out.services_in_table = services.size();
    for (const auto& s : services)
      if ((svc.fwmark && s.fwmark == svc.fwmark && s.family == svc.vip.family) ||
          (!svc.fwmark && s.fwmark == 0 && s.addr == svc.vip && s.port == svc.port &&
           s.protocol == ip_protocol(svc.proto))) {
        out.service = s;
        found = true;
      }
    if (!found) return {};
    TRY_ASSIGN(out.dests, ipvs.dests(svc));
    return {};
  }));
  if (!found)
    return fail("service " + svc.name + " (" + ipvs::service_name(svc) +
                    ") is not in the director's IPVS table",
                "see `labctl exec " + ctx.t.name + " " + director.name + " -- ipvsadm -Ln`");
  return out;
}

std::string reused_ports(Ctx& ctx, const Node& director, const VirtualService& svc, const LiveService& live,
                         const std::string& from) {
  std::vector<sched::OldEntry> old;
  auto mode = ctx.read_proc(director.name, "sys/net/ipv4/vs/conn_reuse_mode");
  auto text = ctx.read_proc(director.name, "net/ip_vs_conn");
  if (!mode || !text) return "";
  auto table = ipvs::parse_conn_table(*text);
  if (!table) return "";
  for (const auto& e : *table) {
    if (e.client_port == 0) continue;  // a persistence template: no connection of its own
    if (!svc.fwmark && (e.vip != svc.vip || e.vport != svc.port)) continue;
    const Node* client = ctx.t.owner_of(e.client);
    if (!client || client->name != from) continue;
    auto d = std::find_if(live.dests.begin(), live.dests.end(),
                          [&](const IpvsDest& x) { return x.addr == e.dest && x.port == e.dport; });
    const bool no_output = d != live.dests.end() && (d->fwd_method == 2 || d->fwd_method == 3);
    old.push_back({who_has(ctx.t, e.dest), e.state, no_output});
  }
  return sched::reused_ports_note(old, std::atoi(mode->c_str()));
}

Result<DirectorCounters> director_counters(Ctx& ctx, const Node& director,
                                           const VirtualService& svc) {
  TRY_ASSIGN(LiveService live, live_service(ctx, director, svc));
  DirectorCounters out{live.service.stats.inpkts, live.service.stats.outpkts, false};
  // The per-cpu counters are the whole namespace's: this service's only when it is alone.
  if (live.services_in_table != 1) return out;
  if (auto text = ctx.read_proc(director.name, "net/ip_vs_stats_percpu"))
    if (auto totals = ipvs::parse_stats_percpu(*text))
      out = DirectorCounters{totals->exact.inpkts, totals->exact.outpkts, true};
  return out;
}

Result<std::vector<LinkInfo>> links_from_ip_json(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_array()) return fail("`ip -j link` printed no JSON list: " + text.substr(0, 200));
  std::vector<LinkInfo> out;
  std::map<std::string, std::string> master_of;
  try {
    for (const auto& l : j) {
      LinkInfo i;
      i.name = l.at("ifname").get<std::string>();
      i.index = l.at("ifindex").get<int>();
      i.mtu = l.value("mtu", 0);
      for (const auto& fl : l.value("flags", nlohmann::json::array()))
        if (fl == "UP") i.up = true, i.flags |= IFF_UP;
      if (l.value("link_type", "") == "ether") i.mac = l.value("address", "");
      if (l.contains("linkinfo")) i.kind = l["linkinfo"].value("info_kind", "");
      if (l.contains("stats64")) {
        i.rx_packets = l["stats64"]["rx"].value("packets", uint64_t{0});
        i.tx_packets = l["stats64"]["tx"].value("packets", uint64_t{0});
      }
      if (l.contains("master")) master_of[i.name] = l["master"].get<std::string>();
      i.alias = l.value("ifalias", "");
      out.push_back(std::move(i));
    }
  } catch (const nlohmann::json::exception& e) {
    return fail(std::string("`ip -j link` printed JSON labctl cannot read: ") + e.what());
  }
  for (auto& i : out)
    if (auto m = master_of.find(i.name); m != master_of.end())
      for (const auto& x : out)
        if (x.name == m->second) i.master = x.index;
  return out;
}

Status stop_agent_of(Ctx& ctx, const std::string& node, const std::string& agent, std::chrono::milliseconds wait) {
  if (auto host = ctx.remote_host(node))
    return ctx.on_host(*host, {"node", ctx.t.name, node, "stop-agent", agent}).map([](auto&&) {});
  return stop_agent(ctx.t, node, agent, wait);
}

Status start_agent_of(Ctx& ctx, const std::string& node, const std::string& agent) {
  if (auto host = ctx.remote_host(node))
    return ctx.on_host(*host, {"node", ctx.t.name, node, "start-agent", agent}).map([](auto&&) {});
  return start_agent(ctx.t, node, agent);
}

Result<std::vector<IpAddr>> addresses_from_ip_json(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_array()) return fail("`ip -j addr` printed no JSON list: " + text.substr(0, 200));
  std::vector<IpAddr> out;
  try {
    for (const auto& l : j)
      for (const auto& a : l.value("addr_info", nlohmann::json::array())) {
        auto ip = IpAddr::parse(a.at("local").get<std::string>());
        if (!ip) return fail("`ip -j addr` printed a local address labctl cannot read: " + a.at("local").dump());
        out.push_back(*ip);
      }
  } catch (const nlohmann::json::exception& e) {
    return fail(std::string("`ip -j addr` printed JSON labctl cannot read: ") + e.what());
  }
  return out;
}

Result<std::vector<IpAddr>> addresses_of(Ctx& ctx, const std::string& node) {
  if (auto host = ctx.remote_host(node)) {
    auto text = ctx.on_host(*host, {"exec", ctx.t.name, node, "--", "ip", "-j", "addr", "show"});
    if (!text) return tl::unexpected(text.error().context("reading " + node + "'s addresses on host " + *host));
    return addresses_from_ip_json(*text);
  }
  std::vector<IpAddr> out;
  TRY(ctx.in(node, [&]() -> Status {
    TRY_ASSIGN(Rtnl rtnl, Rtnl::open());
    TRY_ASSIGN(auto addrs, rtnl.addresses());
    for (const auto& a : addrs) out.push_back(a.prefix.addr);
    return {};
  }));
  return out;
}

Result<std::vector<LinkInfo>> links_of(Ctx& ctx, const std::string& node) {
  std::vector<LinkInfo> out;
  if (auto host = ctx.remote_host(node)) {
    // A node of another host: its links as iproute2 prints them there.
    auto text = ctx.on_host(*host, {"exec", ctx.t.name, node, "--", "ip", "-j", "-s", "-d", "link", "show"});
    if (!text) return tl::unexpected(text.error().context("reading " + node + "'s links on host " + *host));
    return links_from_ip_json(*text);
  }
  TRY(ctx.in(node, [&]() -> Status {
    TRY_ASSIGN(Rtnl rtnl, Rtnl::open());
    TRY_ASSIGN(out, rtnl.links());
    return {};
  }));
  return out;
}

std::optional<std::string> Ctx::remote_host(const std::string& node) {
  if (!on_host || !multi_host(t) || ns.contains(node)) return std::nullopt;
  const Node* n = t.node(node);
  if (!n) return std::nullopt;
  auto f = open_netns(netns_name(t.name, node));
  if (f) {
    ns[node] = std::move(*f);
    return std::nullopt;
  }
  if (f.error().errnum != ENOENT) return std::nullopt;
  return host_of(t, *n);
}

Result<std::string> Ctx::read_proc(const std::string& node, const std::string& rel) {
  if (auto host = remote_host(node)) {
    auto out = on_host(*host, {"exec", t.name, node, "--", "cat", "/proc/" + rel});
    if (!out) return tl::unexpected(out.error().context("reading " + node + "'s /proc/" + rel + " on host " + *host));
    return out;
  }
  // /proc/net follows the reading thread's namespace only as /proc/thread-self/net; the
  // net.* sysctls under /proc/sys follow it as they are.
  const std::string path = rel.starts_with("net/") ? "/proc/thread-self/" + rel : "/proc/" + rel;
  std::string text;
  TRY(in(node, [&]() -> Status {
    TRY_ASSIGN(text, read_regular_file(path, size_t{256} << 20));
    return {};
  }));
  return text;
}

Error Ctx::elsewhere(Error e, const std::string& node) const {
  const Node* n = t.node(node);
  if (!multi_host(t) || !n || e.errnum != ENOENT) return e;
  e.message = "node " + node + " runs on host " + host_of(t, *n) + ", not on the host this check runs on (the host of "
              "its `from` node): " + e.message;
  e.hint = "a check of this kind reads that node in its namespace, which only its host can: give the check a "
           "`from` node on that host (docs/multihost.md)";
  return e;
}

}  // namespace labctl::check_kind
