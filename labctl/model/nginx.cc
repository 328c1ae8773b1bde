#include "labctl/model/nginx.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <set>

#include "labctl/base/display.h"
#include "labctl/model/agent_spec.h"

namespace labctl {

std::vector<std::string> nginx_config_lacks(std::string_view config) {
  std::vector<std::string> out;
  for (const char* d : kNginxRequiredDirectives) {
    std::string_view word(d);
    bool found = false;
    // A directive is a word at the start of a line or after ';', '{' or '}'.
    for (size_t at = config.find(word); at != std::string_view::npos && !found; at = config.find(word, at + 1)) {
      size_t before = at;
      while (before > 0 && (config[before - 1] == ' ' || config[before - 1] == '\t')) --before;
      const bool starts = before == 0 || std::string_view("\n;{}").find(config[before - 1]) != std::string_view::npos;
      const size_t after = at + word.size();
      const bool ends = after < config.size() && (config[after] == ' ' || config[after] == '\t');
      found = starts && ends;
    }
    if (!found) out.emplace_back(d);
  }
  return out;
}

namespace topo {
namespace {

// The TCP ports node `n`'s agents listen on.
std::set<uint16_t> tcp_ports(const Node& n) {
  std::set<uint16_t> out;
  for (const auto& a : n.agents) {
    auto proto = a.params.find("proto");
    if (agent_listens(a) && (proto == a.params.end() || proto->second == "tcp")) out.insert(a.port);
  }
  return out;
}

std::string ports_hint(const Node& n) {
  auto ports = tcp_ports(n);
  if (ports.empty())
    return fmt::format("give node {} an agent that listens there, e.g. agents.app = {{ kind = \"http\", port = 8080 }}",
                       plain(n.name));
  return fmt::format("node {}'s agents listen on TCP port{} {}", plain(n.name), ports.size() == 1 ? "" : "s",
                     fmt::join(ports, ", "));
}

class NginxRules {
 public:
  NginxRules(Topology& t, const Net& net, Reporter& r) : t_(t), net_(net), r_(r) {}

  void run() {
    for (auto& n : t_.nodes)
      for (auto& a : n.agents)
        if (a.nginx && a.nginx->config.empty()) agent(n, a);
  }

 private:
  void agent(const Node& n, Agent& a) {
    NginxSpec& k = *a.nginx;
    const std::string where = fmt::format("nginx agent {}:{}", plain(n.name), plain(a.name));
    if (k.address && !net_.owns(n, *k.address))
      r_.error(a.keys.of("address", a.pos),
               fmt::format("{} listens on {}, which is not an address of node {}", where, k.address->str(),
                           plain(n.name)),
               "give one of the node's addresses (a VIP on its lo counts), or leave address out to listen on all");
    std::vector<std::string> names;
    for (const auto& u : k.upstreams) names.push_back(u.name);
    std::set<std::string> used;
    for (const auto& route : k.routes) {
      if (route.upstream.empty()) continue;  // its own error was reported
      if (std::find(names.begin(), names.end(), route.upstream) == names.end())
        r_.error(route.pos,
                 fmt::format("route {} of {} names upstream {}, which does not exist", shown(route.path), where,
                             shown(route.upstream)),
                 did_you_mean(route.upstream, names, fmt::format("upstreams: {}", fmt::join(names, ", "))));
      used.insert(route.upstream);
    }
    for (auto& u : k.upstreams) {
      if (!k.routes.empty() && !used.count(u.name))
        r_.warning(u.pos, fmt::format("upstream {} of {} is named by no route: no request reaches it", plain(u.name),
                                      where),
                   fmt::format("route a path to it, e.g. routes = {{ \"/{}\" = \"{}\" }}", plain(u.name), plain(u.name)));
      for (auto& s : u.servers) server(u, s, where);
    }
  }

  void server(const NginxUpstream& u, NginxServer& s, const std::string& where) {
    const std::string w = fmt::format("server {}:{} of upstream {} of {}", s.target, s.port, plain(u.name), where);
    if (s.addr.family) {
      // An address: a service's VIP, or a node's own with an agent on the port.
      for (const auto& n : t_.nodes)
        for (const auto& svc : n.services)
          if (!svc.fwmark && svc.vip == s.addr && (svc.port == 0 || svc.port == s.port)) return;
      const Node* owner = nullptr;
      for (const auto& n : t_.nodes) {
        if (!net_.owns(n, s.addr)) continue;
        if (tcp_ports(n).count(s.port)) return;
        owner = &n;
      }
      if (!owner)
        r_.error(s.pos, fmt::format("{}: no node of the lab has address {}, and no service has it as VIP", w,
                                    s.addr.str()),
                 "lab traffic stays inside the lab: name a node (\"app1:8080\") or one of its addresses");
      else
        r_.error(s.pos, fmt::format("{}: node {} has that address, but no agent of it listens on TCP port {}", w,
                                    plain(owner->name), s.port),
                 ports_hint(*owner));
      return;
    }
    const Node* n = t_.node(s.target);
    if (!n) {
      std::vector<std::string> nodes;
      for (const auto& node : t_.nodes) nodes.push_back(node.name);
      r_.error(s.pos, fmt::format("{}: {} is neither an address nor a node of the lab", w, shown(s.target)),
               did_you_mean(s.target, nodes, fmt::format("nodes: {}", fmt::join(nodes, ", "))));
      return;
    }
    if (!tcp_ports(*n).count(s.port))
      r_.error(s.pos, fmt::format("{}: no agent of node {} listens on TCP port {}", w, plain(n->name), s.port),
               ports_hint(*n));
    if (auto first = net_.first_address(*n))
      s.addr = *first;  // A lab has no DNS: nginx gets the address.
    else
      r_.error(s.pos, fmt::format("{}: node {} has no address to connect to", w, plain(n->name)));
  }

  Topology& t_;
  const Net& net_;
  Reporter& r_;
};

}  // namespace

void check_nginx(Topology& t, const Net& net, Reporter& r) { NginxRules(t, net, r).run(); }

}  // namespace topo
}  // namespace labctl
