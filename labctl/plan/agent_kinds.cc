#include "labctl/plan/agent_kind.h"

#include <fmt/format.h>

#include "labctl/plan/agent.h"
#include "labctl/model/ipvs_sync.h"
#include "labctl/plan/keepalived.h"
#include "labctl/plan/nginx.h"

namespace labctl {
namespace {

using Argv = std::vector<std::string>;

std::string param(const Agent& a, const std::string& key, const std::string& fallback) {
  auto it = a.params.find(key);
  return it == a.params.end() ? fallback : it->second;
}

// --- http: answers every GET with the node's name ---

Argv http_argv(const Agent& a, const std::string& node, const std::string& labagent) {
  Argv argv{labagent, "http", "--port", std::to_string(a.port ? a.port : 80), "--name", node};
  if (auto it = a.params.find("size"); it != a.params.end()) argv.insert(argv.end(), {"--size", it->second});
  if (auto it = a.params.find("delay"); it != a.params.end()) argv.insert(argv.end(), {"--delay", it->second});
  if (a.params.count("closes")) argv.push_back("--client-closes");
  return argv;
}

std::string http_listen(const Agent& a) { return "tcp:" + std::to_string(a.port ? a.port : 80); }

std::string http_why(const Node& n, const Agent& a) {
  std::string why = fmt::format("HTTP server on port {} answering every GET with \"{}\", so the client "
                                "sees which real server served it",
                                a.port, n.name);
  if (auto it = a.params.find("size"); it != a.params.end())
    why += fmt::format(", in a body of {} bytes (the name, then newlines) to carry volume", it->second);
  if (auto it = a.params.find("delay"); it != a.params.end())
    why += fmt::format(", each after {} ms of simulated work (an application server's time)", it->second);
  if (a.params.count("closes"))
    why += "; it leaves closing to the client (it waits for the client's FIN), so the client ends in TIME_WAIT, "
           "as behind a proxy that closes each upstream connection once the answer is whole";
  return why;
}

// --- echo: TCP or UDP payloads back ---

Argv echo_argv(const Agent& a, const std::string&, const std::string& labagent) {
  Argv argv{labagent, "echo", "--port", std::to_string(a.port ? a.port : 7)};
  if (param(a, "proto", "tcp") == "udp") argv.push_back("--udp");
  return argv;
}

std::string echo_listen(const Agent& a) {
  return param(a, "proto", "tcp") + ":" + std::to_string(a.port ? a.port : 7);
}

std::string echo_why(const Node&, const Agent& a) { return fmt::format("echo server on port {}", a.port); }

// --- load: a bounded HTTP client ---

Argv load_argv(const Agent& a, const std::string&, const std::string& labagent) {
  Argv argv{labagent, "load", "--target", param(a, "target", ""), "--count", param(a, "count", "100")};
  if (auto c = param(a, "concurrency", ""); !c.empty()) argv.insert(argv.end(), {"--concurrency", c});
  if (auto s = param(a, "seconds", ""); !s.empty()) argv.insert(argv.end(), {"--seconds", s});
  return argv;
}

std::string no_listen(const Agent&) { return ""; }

std::string load_why(const Node&, const Agent& a) {
  const std::string count = param(a, "count", ""), seconds = param(a, "seconds", "");
  return fmt::format("load client: {} requests to {}{}, started once every server agent is ready",
                     count.empty() ? "a bounded number of" : count, param(a, "target", ""),
                     seconds.empty() ? "" : " within " + seconds + " s");
}

// --- command: the topology's own argv, never through a shell ---

Argv command_argv(const Agent& a, const std::string&, const std::string&) { return a.argv; }

std::string command_listen(const Agent& a) {
  return a.port ? param(a, "proto", "tcp") + ":" + std::to_string(a.port) : "";
}

std::string command_why(const Node&, const Agent&) { return ""; }

// --- keepalived: VRRP and the IPVS entries of the services it manages ---

// Needs params "config" (prepared from the topology) and "dir" (set by whoever runs it).
Argv keepalived_argv(const Agent& a, const std::string&, const std::string& labagent) {
  return {labagent, "keepalived", "--dir", param(a, "dir", ""), "--config", param(a, "config", "")};
}

void keepalived_prepare(const Topology& t, const Node& n, Agent& run) {
  run.params["config"] = keepalived_config(t, n, run);
}

// A MASTER is ready once it holds its first VIP, after winning its first election.
std::string keepalived_ready_address(const Agent& a) {
  if (!a.keepalived || !a.keepalived->vrrp || !a.keepalived->vrrp->master || a.keepalived->vrrp->vips.empty())
    return "";
  return a.keepalived->vrrp->vips.front().addr.str();
}

std::chrono::milliseconds keepalived_alive_time(const Agent& a) {
  if (!a.keepalived || !a.keepalived->vrrp || a.keepalived->vrrp->master) return kAgentAliveTime;
  // RFC 5798's Master_Down_Interval: three adverts and the skew of its priority; a BACKUP
  // that heard no MASTER by then has claimed the VIP. Plus keepalived's own start-up.
  const auto& v = *a.keepalived->vrrp;
  const double down = 3 * v.advert_int + (256 - v.priority) * v.advert_int / 256;
  return std::chrono::milliseconds(static_cast<int64_t>(down * 1000)) + kKeepalivedStartup;
}

std::chrono::milliseconds keepalived_ready_timeout(const Agent& a) {
  // A MASTER wins its first election after about three adverts of silence.
  if (!keepalived_ready_address(a).empty())
    return kAgentReadyTimeout + std::chrono::milliseconds(static_cast<int64_t>(3000 * a.keepalived->vrrp->advert_int));
  if (const auto alive = keepalived_alive_time(a); alive != kAgentAliveTime) return kAgentReadyTimeout + alive;
  return kAgentReadyTimeout;
}

std::string keepalived_why(const Node& n, const Agent& a) {
  if (!a.keepalived || !a.keepalived->vrrp) return "keepalived with the configuration given in the topology";
  const auto& v = *a.keepalived->vrrp;
  std::string vips;
  for (const auto& p : v.vips) vips += (vips.empty() ? "" : ", ") + p.str();
  return fmt::format("keepalived: VRRP router {} on {} ({}, priority {}) holding {} while it is MASTER{}",
                     v.virtual_router_id, v.interface, v.master ? "MASTER" : "BACKUP", v.priority, vips,
                     a.keepalived->services.empty() ? "" : "; it programs its services' IPVS entries and "
                                                           "health-checks their real servers") +
         (sync_by_keepalived(n) && sync_keepalived(n)->name == a.name
              ? fmt::format("; and it runs the IPVS sync daemon on {} (lvs_sync_daemon, id {}): master while "
                            "MASTER, multicasting its connections, backup while BACKUP, learning the other's, so "
                            "established connections survive a takeover",
                            n.ipvs_sync->interface, n.ipvs_sync->id)
              : "");
}

// --- nginx: an L7 reverse proxy in front of the lab's own servers ---

// Needs params "config" (prepared from the topology) and "dir" (set by whoever runs it).
Argv nginx_argv(const Agent& a, const std::string&, const std::string& labagent) {
  return {labagent, "nginx", "--dir", param(a, "dir", ""), "--config", param(a, "config", "")};
}

void nginx_prepare(const Topology& t, const Node& n, Agent& run) { run.params["config"] = nginx_config(t, n, run); }

std::string nginx_listen(const Agent& a) { return "tcp:" + std::to_string(a.port ? a.port : 80); }

std::string nginx_why(const Node&, const Agent& a) {
  if (!a.nginx || !a.nginx->config.empty())
    return fmt::format("nginx on port {} with the configuration given in the topology", a.port);
  const NginxSpec& k = *a.nginx;
  std::string routes;
  for (const auto& r : k.routes) {
    std::string servers;
    for (const auto& u : k.upstreams)
      if (u.name == r.upstream)
        for (const auto& s : u.servers) servers += (servers.empty() ? "" : ", ") + s.target + ":" + std::to_string(s.port);
    routes += fmt::format("{}{} -> {} ({})", routes.empty() ? "" : ", ", r.path, r.upstream, servers);
  }
  return fmt::format("nginx reverse proxy on port {}: it completes each client's TCP handshake, reads the request "
                     "and opens its own connection to an upstream server chosen by path prefix: {}; {}, {}. This is "
                     "L7: to read the URI it must first take the three-way handshake, and it then holds two sockets "
                     "per request, one to the client and one to the upstream; LVS at L4 only forwards packets and "
                     "takes no handshake, which is why it can carry far more connections{}",
                     a.port, routes, k.method == "hash" ? "hash of " + k.hash_key : k.method,
                     k.keepalive ? fmt::format("upstream keep-alive ({} idle connections a worker)", k.keepalive)
                                 : "a new upstream connection per request (no keep-alive)",
                     k.name_path.empty() ? ""
                                         : fmt::format("; {} it answers itself with its node's name", k.name_path));
}

}  // namespace

const std::vector<AgentKindPlan>& agent_kind_plans() {
  static const std::vector<AgentKindPlan> all = {
      {.name = "http", .argv = http_argv, .listen = http_listen, .why = http_why},
      {.name = "echo", .argv = echo_argv, .listen = echo_listen, .why = echo_why},
      {.name = "load", .argv = load_argv, .listen = no_listen, .phase = 2, .why = load_why},
      {.name = "command", .argv = command_argv, .runs_labagent = false, .listen = command_listen, .why = command_why},
      {.name = "keepalived",
       .argv = keepalived_argv,
       .listen = no_listen,
       .ready_address = keepalived_ready_address,
       .alive_time = keepalived_alive_time,
       .ready_timeout = keepalived_ready_timeout,
       .stop_grace = kKeepalivedStopGrace,
       .phase = 1,
       .dir = "keepalived",
       .prepare = keepalived_prepare,
       .why = keepalived_why},
      {.name = "nginx",
       .argv = nginx_argv,
       .listen = nginx_listen,
       .dir = "nginx",
       .prepare = nginx_prepare,
       .why = nginx_why},
  };
  return all;
}

const AgentKindPlan* find_agent_kind_plan(std::string_view name) {
  for (const auto& k : agent_kind_plans())
    if (k.name == name) return &k;
  return nullptr;
}

}  // namespace labctl
