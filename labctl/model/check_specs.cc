#include "labctl/model/check_spec.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "labctl/base/display.h"
#include "labctl/model/bounds.h"
#include "labctl/model/agent_spec.h"
#include "labctl/model/diag.h"
#include "labctl/model/keepalived.h"
#include "labctl/model/rules.h"
#include "labctl/model/segments.h"

namespace labctl::topo {

void CheckValidation::error(std::string_view key, std::string message, std::string hint) const {
  r.error(at(key), std::move(message), std::move(hint));
}

namespace {

using namespace std::chrono_literals;

const RealServer* method_other_than(const VirtualService& s, FwdMethod m) {
  for (const auto& rs : s.real_servers)
    if (rs.method != m) return &rs;
  return nullptr;
}

std::string server_name(const RealServer& rs) { return rs.node.empty() ? rs.addr.str() : rs.node; }

// reach and no-reach: `expect` matches a UDP reply.
void expect_needs_udp(CheckValidation& v) {
  if (!v.c.expect.empty() && !v.udp)
    v.error("expect",
            fmt::format("{}: expect on a {} check matches a UDP reply, and this check is not UDP", v.where,
                        v.c.kind),
            "add proto = \"udp\", or use kind = \"http\" to match an HTTP body, or banner = \"...\"");
}

void http(CheckValidation& v) {
  if (v.c.port == 0) v.c.port = 80;
}

// balance, sticky and least-conn tell servers apart by their HTTP bodies.
void counts_http_bodies(CheckValidation& v) {
  if (v.udp)
    v.error("service",
            fmt::format("{}: {} counts which server answered by its HTTP body, and service {} is UDP", v.where,
                        v.c.kind, plain(v.svc->name)),
            fmt::format("{} a TCP service whose servers run the http agent; for UDP use bypass, via-director or tunnel",
                        v.c.kind));
}

void balance(CheckValidation& v) {
  if (v.svc) counts_http_bodies(v);
}

void bypass(CheckValidation& v) {
  if (!v.svc) return;
  for (const auto& rs : v.svc->real_servers)
    if (rs.method == FwdMethod::Nat) {
      v.error("service",
              fmt::format("{}: service {} forwards with NAT, where replies always pass the director", v.where,
                          plain(v.svc->name)),
              "bypass holds only for dr and tun real servers; for NAT use kind = \"via-director\"");
      break;
    }
}

void via_director(CheckValidation& v) {
  if (!v.svc) return;
  if (const RealServer* rs = method_other_than(*v.svc, FwdMethod::Nat))
    v.error("service",
            fmt::format("{}: service {} forwards to {} with {}, where replies never pass the director", v.where,
                        plain(v.svc->name), server_name(*rs), to_string(rs->method)),
            "via-director holds only for nat real servers; for dr and tun use kind = \"bypass\"");
}

void tunnel(CheckValidation& v) {
  if (!v.svc) return;
  if (const RealServer* rs = method_other_than(*v.svc, FwdMethod::Tun))
    v.error("service",
            fmt::format("{}: service {} forwards to {} with {}, not through an IPIP tunnel", v.where,
                        plain(v.svc->name), server_name(*rs), to_string(rs->method)),
            "tunnel checks tun services (method = \"tun\"); for dr use kind = \"bypass\"");
}

// handshakes counts TCP connections: a UDP service has none.
void handshakes(CheckValidation& v) {
  http(v);
  if (v.udp)
    v.error("service",
            fmt::format("{}: handshakes counts TCP handshakes, and service {} is UDP", v.where, plain(v.svc->name)),
            "a TCP service whose servers run the http or nginx agent");
}

void sticky(CheckValidation& v) {
  if (!v.svc) return;
  counts_http_bodies(v);
  const Node* from = v.t.node(v.c.from);
  for (const IpAddr& ip : v.c.params.addresses("sources")) {
    if (!from) continue;  // an unknown node: said already
    if (!from->holds(ip))
      v.error("sources",
              fmt::format("{}: source {} is not an address of node {}, so the check cannot send from it", v.where,
                          ip.str(), plain(v.c.from)),
              fmt::format("add it to one of {}'s interfaces, or list only its own addresses", plain(v.c.from)));
    else if (ip.family != v.svc->vip.family && !v.svc->fwmark)
      v.error("sources", fmt::format("{}: source {} is not of the family of the VIP {}", v.where, ip.str(),
                                     v.svc->vip.str()));
  }
}

void least_conn(CheckValidation& v) {
  if (!v.svc) return;
  counts_http_bodies(v);
  for (const auto& rs : v.svc->real_servers)
    if (rs.method == FwdMethod::Nat) {
      v.error("service",
              fmt::format("{}: service {} forwards with NAT: the director sees each real server close its "
                          "half after answering, so a connection the check holds open stops counting as active",
                          v.where, plain(v.svc->name)),
              "least-conn holds connections open and needs dr or tun real servers, whose closes the director never sees");
      break;
    }
}

// A node ARPs for the VIP only when its route to it is on-link through an interface on
// one of the director's segments; routed through a gateway it ARPs for the gateway and
// never holds an entry for the VIP (the arp-owner check would find none).
void arp_owner_on_link(const CheckValidation& v, const Node& from, const IpAddr& vip) {
  const Node& director = *v.director;
  auto hop = v.net.lookup(from, vip);
  std::string why;
  if (!hop)
    why = fmt::format("has no route to the VIP {}", vip.str());
  else if (hop->gw)
    why = fmt::format("reaches the VIP {} through gateway {} and ARPs for {}", vip.str(),
                      hop->gw->str(), hop->gw->str());
  else if (!hop->out)
    why = fmt::format("reaches the VIP {} through a tunnel", vip.str());
  else {
    std::string seg = v.net.segment(from, *hop->out);
    for (const auto& di : director.interfaces)
      if (!seg.empty() && v.net.segment(director, di) == seg) return;
    why = fmt::format("sends to the VIP {} on {}, not on a segment of director {}", vip.str(),
                      plain(hop->out->name), plain(director.name));
  }
  v.error("from",
          fmt::format("{}: node {} {}: it never ARPs for the VIP, so it holds no ARP entry for it",
                      v.where, plain(from.name), why),
          fmt::format(
              "run arp-owner from a node whose interface on the director's switch has {} in its subnet",
              vip.str()));
}

void arp_owner(CheckValidation& v) {
  if (!v.svc) return;
  // A fwmark service has no VIP: the check's own target stands for it (unset when it did not resolve).
  std::optional<IpAddr> vip = v.svc->vip;
  if (v.svc->fwmark) vip = v.c.to.family ? std::optional<IpAddr>(v.c.to) : std::nullopt;
  if (!vip || !vip->v4()) {
    v.error("service", fmt::format("{}: service {} has no IPv4 VIP, so there is no ARP entry to look at",
                                   v.where, plain(v.svc->name)));
    return;
  }
  v.c.to = *vip;
  v.c.to_text = vip->str();
  const Node* from = v.t.node(v.c.from);
  if (from && !v.net.share_segment(*from, *v.director))
    v.error("from",
            fmt::format("{}: node {} shares no L2 segment with director {}, so it never ARPs for the VIP",
                        v.where, plain(v.c.from), plain(v.director->name)),
            "run arp-owner from a node on the director's switch");
  else if (from)
    arp_owner_on_link(v, *from, *vip);
}


// failover: keepalived must manage the service on two directors, one to fail.
void failover(CheckValidation& v) {
  if (!v.svc) return;
  std::set<const Node*> nodes;
  for (const auto& r : keepalived_agents_of(v.t, v.svc->name)) nodes.insert(r.node);
  if (nodes.size() < 2)
    v.error("service",
            fmt::format("{}: service {} is managed by keepalived on {} director{}; failover needs two", v.where,
                        plain(v.svc->name), nodes.size(), nodes.size() == 1 ? "" : "s"),
            "give two directors a keepalived agent that lists the service, one MASTER and one BACKUP");
  if (v.c.params.has("connections") && v.udp)
    v.error("connections",
            fmt::format("{}: connections holds TCP connections open across the failover, and service {} is UDP",
                        v.where, plain(v.svc->name)),
            "leave connections out for a UDP service");
}

// health: keepalived must check the service's real servers, and `server` must be one of
// them with an agent on the service's port to stop.
void health(CheckValidation& v) {
  if (!v.svc) return;
  const VirtualService& svc = *v.svc;
  auto agents = keepalived_agents_of(v.t, svc.name);
  if (agents.empty()) {
    v.error("service",
            fmt::format("{}: service {} is not managed by keepalived, so nothing checks its real servers' health",
                        v.where, plain(svc.name)),
            "list it in a keepalived agent's services, e.g. services.web = { check = \"http\" }");
    return;
  }
  for (const auto& r : agents)
    for (const auto& ks : r.agent->keepalived->services)
      if (ks.name == svc.name && ks.check == "none" && r.agent->keepalived->config.empty())
        v.error("service",
                fmt::format("{}: keepalived agent {}:{} does not check service {}'s real servers (check = \"none\")",
                            v.where, plain(r.node->name), plain(r.agent->name), plain(svc.name)),
                "give the service a check: tcp, http or udp");
  const std::string& server = v.c.params.text("server");
  if (server.empty()) return;
  const Node* rs = v.t.node(server);
  if (!rs) {
    std::vector<std::string> names;
    for (const auto& rsv : svc.real_servers) names.push_back(rsv.node);
    v.error("server", fmt::format("{}: server {} is no node", v.where, shown(server)),
            did_you_mean(server, names, fmt::format("real servers of {}: {}", svc.name, fmt::join(names, ", "))));
    return;
  }
  const RealServer* mine = nullptr;
  for (const auto& rsv : svc.real_servers)
    if (rsv.node == server) mine = &rsv;
  if (!mine) {
    v.error("server", fmt::format("{}: node {} is not a real server of service {}", v.where, plain(server),
                                  plain(svc.name)),
            "name one of the service's real servers: the check stops its agent");
    return;
  }
  const uint16_t port = mine->port ? mine->port : svc.port;
  bool serves = std::any_of(rs->agents.begin(), rs->agents.end(),
                            [&](const Agent& a) { return a.port == port && !agent_is_client(a); });
  if (!serves)
    v.error("server",
            fmt::format("{}: real server {} has no agent listening on port {}, so there is nothing to stop", v.where,
                        plain(server), port),
            fmt::format("add agents.web = {{ kind = \"http\", port = {} }} to node {}", port, server));
}

// latency and throughput measure TCP (or ICMP) themselves: no UDP exchange. Neither takes
// `proto`, so only a UDP service makes one UDP.
void measures_tcp(CheckValidation& v, const char* what) {
  if (v.udp)
    v.error("service",
            fmt::format("{}: {} measures {}, and this check is UDP", v.where, v.c.kind, what),
            fmt::format("give {} a TCP service or address", v.c.kind));
}

void latency(CheckValidation& v) {
  measures_tcp(v, "TCP connects (with a port) or ICMP echoes (without)");
}

void throughput(CheckValidation& v) {
  if (v.c.port == 0) v.c.port = 80;
  measures_tcp(v, "an HTTP transfer");
  const double seconds = v.c.params.number("seconds");
  const CheckKindSpec* spec = find_check_kind(v.c.kind);
  const double deadline = v.c.params.has("timeout") ? v.c.params.number("timeout")
                                                    : std::chrono::duration<double>(spec->deadline).count();
  if (seconds + 1 > deadline)
    v.error(v.c.params.has("timeout") ? "timeout" : "seconds",
            fmt::format("{}: its transfer takes {} s and its deadline is {} s, which leaves less than a second to "
                        "connect and judge",
                        v.where, seconds, deadline),
            fmt::format("give timeout = {} or more, or fewer seconds", seconds + 1));
}

// director-bytes: HTTP bodies through a service; each bound it leaves out comes from the
// service's method: NAT carries every reply, DR and TUN none (and only small requests and
// the client's ACKs go in). A service that mixes methods (or local delivery) has no such
// rule: the check must say what it expects.
void director_bytes(CheckValidation& v) {
  if (v.c.port == 0) v.c.port = 80;
  if (!v.svc) return;
  measures_tcp(v, "HTTP bodies through the director");
  std::set<FwdMethod> methods;
  for (const auto& rs : v.svc->real_servers) methods.insert(rs.method);
  const bool nat = methods == std::set<FwdMethod>{FwdMethod::Nat};
  const bool bypass = !methods.empty() && !methods.count(FwdMethod::Nat) && !methods.count(FwdMethod::Local);
  if (nat) {
    if (!v.c.params.has("out")) v.c.params.set("out", std::string(">= 95%"));
  } else if (bypass) {
    if (!v.c.params.has("out")) v.c.params.set("out", std::string("<= 0%"));
    if (!v.c.params.has("in")) v.c.params.set("in", std::string("<= 5%"));
  } else if (!v.c.params.has("out") && !v.c.params.has("in")) {
    v.error("service",
            fmt::format("{}: service {} {}, so its method says nothing about the share of bytes to expect",
                        v.where, plain(v.svc->name),
                        methods.empty() ? "has no real servers" : "mixes forwarding methods"),
            "say it with out (and in), e.g. out = \">= 40%\"");
  }
}

// route, neigh, fdb, nat-map: the kernel tables of the first half of the course (routing,
// ARP, switching, home NAT).

// route: what the kernel's lookup must answer; each expected part must fit the node.
void route(CheckValidation& v) {
  // A key written but refused by its reader was reported already.
  auto written = [&](const char* key) { return v.c.params.has(key) || v.c.keys.of(key, Pos{}).line != 0; };
  if (!written("via") && !written("dev") && !written("src"))
    v.error("to", fmt::format("{}: a route check needs what to expect: via, dev or src", v.where),
            "e.g. via = \"192.168.1.120\" (the next hop), via = \"on-link\" (no next hop), dev = \"eth0\"");
  const Node* from = v.t.node(v.c.from);
  if (!from) return;
  for (const IpAddr& gw : v.c.params.addresses("via"))
    if (v.c.to.family && gw.family != v.c.to.family)
      v.error("via", fmt::format("{}: next hop {} is not of the family of {}", v.where, gw.str(), v.c.to_text));
  if (const std::string& dev = v.c.params.text("dev"); !dev.empty() && dev != "lo" && !v.net.has_device(*from, dev))
    v.error("dev", fmt::format("{}: node {} has no interface {}", v.where, plain(from->name), shown(dev)),
            did_you_mean(dev, v.net.device_names(*from), fmt::format("interfaces of {}: {}", from->name,
                                                                     fmt::join(v.net.device_names(*from), ", "))));
  // What the lab's own routes say, so a check that contradicts them is seen before it runs.
  if (v.c.to.family) {
    auto hop = v.net.lookup(*from, v.c.to);
    if (!hop && !v.net.owns(*from, v.c.to))
      v.r.warning(v.at("to"),
                  fmt::format("{}: node {} has no route to {} (no interface's network and no route covers it): "
                              "the kernel will answer 'Network is unreachable'",
                              v.where, plain(from->name), v.c.to_text));
    else if (hop && v.c.params.has("via") && hop->out) {
      const auto& want = v.c.params.addresses("via");
      if (want.empty() ? hop->gw.has_value() : hop->gw != want.front())
        v.r.warning(v.at("via"), fmt::format("{}: node {}'s routes send {} {}", v.where, plain(from->name),
                                             v.c.to_text, hop->gw ? "via " + hop->gw->str() : "on-link"));
    }
  }
  for (const IpAddr& src : v.c.params.addresses("src"))
    if (!v.net.owns(*from, src))
      v.error("src", fmt::format("{}: {} is not an address of node {}: the kernel only ever picks one of its own",
                                 v.where, src.str(), plain(from->name)));
}

// neigh: which entry to look for and whose MAC it must hold.
void neigh(CheckValidation& v) {
  if (!v.c.params.has("neighbour") && v.c.to.family) v.c.params.set("neighbour", std::vector<IpAddr>{v.c.to});
  const auto& nb = v.c.params.addresses("neighbour");
  if (nb.empty()) return;  // an unresolved target: said already
  if (!nb.front().v4()) {
    v.error("neighbour", fmt::format("{}: {} is IPv6: neigh reads the ARP table (IPv4)", v.where, nb.front().str()));
    return;
  }
  const bool absent = v.c.params.text("entry") == "absent";
  const std::string& owner = v.c.params.text("owner");
  if (absent) {
    if (!owner.empty())
      v.error("owner", fmt::format("{}: an absent entry has no owner", v.where),
              "leave owner out with entry = \"absent\"");
    return;
  }
  if (owner.empty()) {
    if (const Node* n = v.t.owner_of(nb.front()))
      v.c.params.set("owner", n->name);
    else
      v.error("neighbour", fmt::format("{}: no node holds {}, so no MAC is expected for it", v.where, nb.front().str()),
              "name the node whose MAC the entry must hold: owner = \"<node>\"");
  } else if (!v.t.node(owner)) {
    std::vector<std::string> names;
    for (const auto& n : v.t.nodes) names.push_back(n.name);
    v.error("owner", fmt::format("{}: owner {} is no node", v.where, shown(owner)), did_you_mean(owner, names));
  }
}

// fdb: the switch, and the nodes on it whose MACs it must learn (each pinged at its address
// on the switch: `nodes` is stored as those addresses).
void fdb(CheckValidation& v) {
  const std::string& sw = v.c.params.text("switch");
  if (!v.t.find_switch(sw)) {
    std::vector<std::string> names;
    for (const auto& s : v.t.switches) names.push_back(s.name);
    v.error("switch", fmt::format("{}: switch {} does not exist", v.where, shown(sw)),
            did_you_mean(sw, names, fmt::format("switches: {}", fmt::join(names, ", "))));
    return;
  }
  auto on_switch = [&](const Node& n) -> std::optional<IpAddr> {
    for (const auto& i : n.interfaces)
      if (i.sw == sw)
        for (const auto& a : i.addresses)
          if (a.addr.v4()) return a.addr;
    return std::nullopt;
  };
  auto plugged = [&](const Node& n) {
    return std::any_of(n.interfaces.begin(), n.interfaces.end(), [&](const Interface& i) { return i.sw == sw; });
  };
  if (const Node* from = v.t.node(v.c.from); from && !on_switch(*from))
    v.error("from", fmt::format("{}: node {} has no IPv4 address on switch {}, so it cannot ping across it", v.where,
                                plain(from->name), plain(sw)));
  std::vector<IpAddr> targets;
  if (!v.c.params.has("nodes")) {
    for (const auto& n : v.t.nodes)
      if (auto a = on_switch(n)) targets.push_back(*a);
  } else {
    std::vector<std::string> listed;
    for (size_t i = 0, j; i < v.c.params.text("nodes").size(); i = j + 1) {
      j = v.c.params.text("nodes").find(' ', i);
      if (j == std::string::npos) j = v.c.params.text("nodes").size();
      listed.push_back(v.c.params.text("nodes").substr(i, j - i));
    }
    for (const auto& name : listed) {
      const Node* n = v.t.node(name);
      if (!n) {
        std::vector<std::string> names;
        for (const auto& m : v.t.nodes)
          if (plugged(m)) names.push_back(m.name);
        v.error("nodes", fmt::format("{}: {} is no node", v.where, shown(name)),
                did_you_mean(name, names, fmt::format("nodes on {}: {}", sw, fmt::join(names, ", "))));
      } else if (!plugged(*n)) {
        v.error("nodes", fmt::format("{}: node {} has no interface on switch {}", v.where, plain(name), plain(sw)));
      } else if (auto a = on_switch(*n)) {
        targets.push_back(*a);
      } else {
        v.error("nodes", fmt::format("{}: node {} has no IPv4 address on switch {} to ping", v.where, plain(name),
                                     plain(sw)));
      }
    }
  }
  v.c.params.set("targets", std::move(targets));
}

// nat-map: the router must have NAT rules (else its conntrack table stays empty).
void nat_map(CheckValidation& v) {
  if (v.c.port == 0) v.c.port = 80;
  const std::string& router = v.c.params.text("router");
  const Node* r = v.t.node(router);
  if (!r) {
    std::vector<std::string> names;
    for (const auto& n : v.t.nodes) names.push_back(n.name);
    v.error("router", fmt::format("{}: router {} is no node", v.where, shown(router)), did_you_mean(router, names));
    return;
  }
  if (r->nat.empty())
    v.error("router",
            fmt::format("{}: node {} has no nat rules, so it translates nothing and its connection-tracking "
                        "table stays empty",
                        v.where, plain(router)),
            "name the node whose nat list masquerades or snats the flow");
  for (const IpAddr& a : v.c.params.addresses("translated"))
    if (!v.net.owns(*r, a) &&
        std::none_of(r->nat.begin(), r->nat.end(), [&](const NatRule& n) { return n.to && *n.to == a; }))
      v.error("translated", fmt::format("{}: {} is neither an address of {} nor the to of one of its nat rules",
                                        v.where, a.str(), plain(router)));
}

// The keys of check_keys(), each read and range-checked where it is declared.

void read_count(CheckKeyRead& k) {
  if (auto n = k.integer(1, kMaxCheckRequests)) k.c.params.set(k.key, *n);
}

void read_bounds(CheckKeyRead& k, Measure m) {
  auto text = k.text();
  if (!text) return;
  if (auto b = parse_bounds(*text, m); !b)
    k.error(fmt::format("'{}' of {} {}", k.key, k.where, b.error().message), b.error().hint);
  else
    k.c.params.set(k.key, *text);
}

void read_time_bounds(CheckKeyRead& k) { read_bounds(k, Measure::Time); }
void read_rate_bounds(CheckKeyRead& k) { read_bounds(k, Measure::Rate); }
void read_share_bounds(CheckKeyRead& k) { read_bounds(k, Measure::Share); }

void read_seconds(CheckKeyRead& k) {
  auto s = k.number();
  if (!s) return;
  if (!(*s >= 0.1 && *s <= kMaxCheckTimeout))
    k.error(fmt::format("seconds of {} must be from 0.1 to {}", k.where, kMaxCheckTimeout),
            "it is how long the transfer runs, e.g. seconds = 2");
  else
    k.c.params.set(k.key, *s);
}

void read_path(CheckKeyRead& k) {
  auto path = k.text();
  if (!path) return;
  if (path->empty() || path->front() != '/') k.error(fmt::format("path of {} must start with '/'", k.where));
  k.c.params.set(k.key, *path);
}

void read_requests(CheckKeyRead& k) {
  if (auto n = k.integer(1, kMaxCheckRequests)) k.c.params.set(k.key, *n);
}

void read_hold(CheckKeyRead& k) {
  if (auto n = k.integer(0, kMaxCheckHold)) k.c.params.set(k.key, *n);
}

void read_sources(CheckKeyRead& k) {
  std::vector<IpAddr> sources;
  for (const auto& [text, at] : k.strings()) {
    if (auto ip = IpAddr::parse(text))
      sources.push_back(*ip);
    else
      k.r.error(at, fmt::format("{} is not an IP address in sources of {}", shown(text), k.where),
                "list addresses of the 'from' node to send from, e.g. sources = [\"10.10.0.10\", \"10.10.0.20\"]");
  }
  if (k.empty_list)
    k.error(fmt::format("sources of {} is empty", k.where),
            "list addresses of the 'from' node to send from, or leave sources out for all of them");
  k.c.params.set(k.key, std::move(sources));
}

void read_tolerance(CheckKeyRead& k) {
  auto tol = k.number();
  if (!tol) return;
  if (*tol < 0 || *tol > 1 || std::isnan(*tol))
    k.error(fmt::format("tolerance of {} must be between 0 and 1", k.where),
            "it is the allowed relative deviation from the expected share, e.g. 0.2");
  else
    k.c.params.set(k.key, *tol);
}

void read_timeout(CheckKeyRead& k) {
  auto timeout = k.number();
  if (!timeout) return;
  if (!(*timeout > 0 && *timeout <= kMaxCheckTimeout))
    k.error(fmt::format("timeout of {} must be more than 0 and at most {} seconds", k.where, kMaxCheckTimeout),
            "it is the check's deadline in seconds, e.g. timeout = 5 or 2.5");
  else
    k.c.params.set(k.key, *timeout);
}

void read_proto(CheckKeyRead& k) {
  auto proto = k.text();
  if (!proto) return;
  if (*proto != "tcp" && *proto != "udp")
    k.error(fmt::format("proto of {} is {}, not tcp or udp", k.where, shown(*proto)),
            did_you_mean(*proto, {"tcp", "udp"}, "one of tcp, udp"));
  else
    k.c.params.set(k.key, *proto);
}

// failover's how: what fails on the master director.
void read_how(CheckKeyRead& k) {
  auto how = k.text();
  if (!how) return;
  const std::vector<std::string> hows{"stop-keepalived", "cut-link", "crash-node"};
  if (std::find(hows.begin(), hows.end(), *how) == hows.end())
    k.error(fmt::format("how of {} is {}, not stop-keepalived, cut-link or crash-node", k.where, shown(*how)),
            did_you_mean(*how, hows, "one of stop-keepalived, cut-link, crash-node"));
  else
    k.c.params.set(k.key, *how);
}

// failover's connections: held open through the VIP across the failure.
void read_connections(CheckKeyRead& k) {
  if (auto n = k.integer(1, kMaxCheckConnections)) k.c.params.set(k.key, *n);
}

// send and banner: text that means nothing when empty.
void read_nonempty(CheckKeyRead& k, const char* hint) {
  auto v = k.text();
  if (v && v->empty())
    k.error(fmt::format("'{}' of {} is empty", k.key, k.where), hint);
  else if (v)
    k.c.params.set(k.key, *v);
}

void read_send(CheckKeyRead& k) {
  read_nonempty(k, "give the UDP payload to send, or leave send out for a default");
}

void read_banner(CheckKeyRead& k) { read_nonempty(k, "give what the server says first, e.g. banner = \"SSH-\""); }

void read_text(CheckKeyRead& k) {
  if (auto v = k.text()) k.c.params.set(k.key, *v);
}

// One IPv4 or IPv6 address, stored as a one-address list (CheckParams::addresses).
std::optional<IpAddr> read_one_address(CheckKeyRead& k, const char* hint) {
  auto text = k.text();
  if (!text) return std::nullopt;
  auto ip = IpAddr::parse(*text);
  if (!ip) {
    k.error(fmt::format("'{}' of {} is {}, not an IP address", k.key, k.where, shown(*text)), hint);
    return std::nullopt;
  }
  k.c.params.set(k.key, std::vector<IpAddr>{*ip});
  return ip;
}

// route's via: the next hop, or "on-link" for none (an empty list).
void read_via(CheckKeyRead& k) {
  auto text = k.text();
  if (!text) return;
  if (*text == "on-link") {
    k.c.params.set(k.key, std::vector<IpAddr>{});
  } else if (auto ip = IpAddr::parse(*text)) {
    k.c.params.set(k.key, std::vector<IpAddr>{*ip});
  } else {
    k.error(fmt::format("via of {} is {}, neither an address nor \"on-link\"", k.where, shown(*text)),
            "the next hop the kernel must pick (via = \"192.168.1.120\"), or via = \"on-link\" for none");
  }
}

void read_src(CheckKeyRead& k) { read_one_address(k, "the source address the kernel must pick, e.g. \"10.0.0.1\""); }

void read_neighbour(CheckKeyRead& k) {
  read_one_address(k, "the address whose ARP entry to read, e.g. the next hop \"192.168.1.120\"");
}

void read_translated(CheckKeyRead& k) {
  read_one_address(k, "the address the router puts in as the source, e.g. its outside address \"6.6.6.6\"");
}

void read_entry(CheckKeyRead& k) {
  auto v = k.text();
  if (!v) return;
  if (*v != "present" && *v != "absent")
    k.error(fmt::format("entry of {} is {}, not present or absent", k.where, shown(*v)),
            did_you_mean(*v, {"present", "absent"}, "one of present, absent"));
  else
    k.c.params.set(k.key, *v);
}

void read_name(CheckKeyRead& k) { read_nonempty(k, "name it"); }

void read_sport(CheckKeyRead& k) {
  if (auto n = k.integer(1, 65535)) k.c.params.set(k.key, *n);
}

// fdb's nodes: names, kept as one line of them (a node name has no blank) until the
// hook, which knows the nodes, turns them into the addresses the run half pings.
void read_nodes(CheckKeyRead& k) {
  std::string names;
  for (const auto& [text, at] : k.strings()) {
    if (text.empty() || text.find_first_of(" \t\n") != std::string::npos) {
      k.r.error(at, fmt::format("{} is no node name in nodes of {}", shown(text), k.where));
      continue;
    }
    names += (names.empty() ? "" : " ") + text;
  }
  if (k.empty_list)
    k.error(fmt::format("nodes of {} is empty", k.where), "list nodes on the switch, or leave nodes out for all of them");
  k.c.params.set(k.key, std::move(names));
}

}  // namespace

const std::vector<CheckKindSpec>& check_kinds() {
  // `to` and `port` beside `service`: the address and port to send to, for fwmark services
  // (which have no VIP). `timeout` (seconds) replaces the kind's default deadline. Deadlines:
  // one probe gets 3 s, a few requests 6 s, a run of requests judged together 10 s, and
  // keepalived's timers (stopping it ~1 s, the backup's takeover up to 3 adverts, the health
  // checker's delay_loop and retries, then the way back) 30 s.
  static const std::vector<CheckKindSpec> all = {
      {"reach", {"from"}, {"to", "service", "port", "proto", "send", "expect", "banner", "timeout"}, true, true,
       {}, 3s, "the target answers", expect_needs_udp},
      {"no-reach", {"from"}, {"to", "service", "port", "proto", "send", "expect", "banner", "timeout"}, true,
       true, {}, 3s, "the target does not answer", expect_needs_udp},
      {"http", {"from"}, {"to", "service", "port", "path", "expect", "timeout"}, true, true, {{"path", "/"}}, 6s,
       "every request answered, a body containing one of expect", http},
      {"balance", {"from", "service"}, {"to", "port", "path", "requests", "tolerance", "timeout"}, false, true,
       {{"path", "/"}, {"requests", int64_t{60}}, {"tolerance", 0.25}}, 10s,
       "every real server answers, in the scheduler's proportions", balance},
      {"bypass", {"from", "service"}, {"to", "port", "proto", "send", "expect", "path", "requests", "timeout"},
       false, true, {{"path", "/"}, {"requests", int64_t{20}}}, 6s, "the director counts requests in but no replies out", bypass},
      {"via-director", {"from", "service"},
       {"to", "port", "proto", "send", "expect", "path", "requests", "timeout"}, false, true,
       {{"path", "/"}, {"requests", int64_t{20}}}, 6s, "the director counts requests in and replies out", via_director},
      {"tunnel", {"from", "service"}, {"to", "port", "proto", "send", "expect", "path", "requests", "timeout"},
       false, true, {{"path", "/"}, {"requests", int64_t{10}}}, 6s,
       "every real server's tunnel device receives encapsulated packets", tunnel},
      {"arp-owner", {"from", "service"}, {"to", "port", "timeout"}, false, false, {}, 3s,
       "only the director answers ARP for the VIP", arp_owner},
      // sticky: `requests` per source address; `sources` default to the `from` node's own.
      {"sticky", {"from", "service"}, {"to", "port", "path", "requests", "sources", "timeout"}, false, true,
       {{"path", "/"}, {"requests", int64_t{4}}}, 10s,
       "each source (sh), client (persistence) or destination (dh) always reaches the same real server",
       sticky},
      // least-conn: `hold` connections kept open, then `requests` short ones.
      {"least-conn", {"from", "service"}, {"to", "port", "path", "hold", "requests", "timeout"}, false, true,
       {{"path", "/"}, {"hold", int64_t{4}}, {"requests", int64_t{8}}}, 10s,
       "each new connection goes to a real server with the fewest connections (per weight) by the "
       "director's own counts",
       least_conn},
      // failover: the VIP's keepalived master is stopped; its backup must take over while
      // the client keeps asking; then the master is started again.
      {"failover", {"from", "service"}, {"path", "timeout", "how", "connections"}, false, true,
       {{"path", "/"}, {"how", "stop-keepalived"}}, 30s,
       "when the VIP's keepalived master stops, a backup takes the VIP over and the client's requests go on "
       "being answered; the outage is measured",
       failover},
      // health: `server`'s agent is stopped; keepalived must take it out of every director's
      // IPVS table, then put it back once the agent runs again.
      {"health", {"from", "service", "server"}, {"timeout"}, false, true, {}, 30s,
       "when a real server's agent stops, keepalived takes it out of every director's IPVS table, and puts it "
       "back when the agent runs again",
       health},
      // latency: `count` probes after one warm-up; each of min, p50, p90, p99, max and loss a
      // bound (">= 40ms, <= 60ms"); no probe may be lost unless `loss` says otherwise.
      {"latency", {"from"}, {"to", "service", "port", "count", "min", "p50", "p90", "p99", "max", "loss", "timeout"},
       true, true, {{"count", int64_t{20}}, {"loss", "<= 0%"}}, 10s,
       "the round trips (TCP handshakes, or ICMP echoes without a port) and the share lost are within the "
       "bounds given",
       latency},
      // throughput: GETs one after another for `seconds`; `rate` a bound (">= 8mbit").
      {"throughput", {"from", "rate"}, {"to", "service", "port", "path", "seconds", "timeout"}, true, true,
       {{"path", "/"}, {"seconds", 2.0}}, 10s,
       "HTTP bodies arrive at a rate within the bounds given", throughput},
      // route, neigh, fdb, nat-map: the kernel's own tables after traffic the check makes.
      {"route", {"from", "to"}, {"via", "dev", "src", "timeout"}, false, false, {}, 3s,
       "the kernel's route lookup gives the expected next hop, device and source", route},
      {"neigh", {"from", "to"}, {"neighbour", "owner", "entry", "timeout"}, false, false, {{"entry", "present"}}, 3s,
       "after a ping, the neighbour table holds the entry with its owner's MAC (or holds none)", neigh},
      {"fdb", {"from", "switch"}, {"nodes", "timeout"}, false, false, {}, 3s,
       "after pings across it, the switch has learned each node's MAC on that node's port (and flooded a frame for a MAC it did not know)", fdb},
      {"nat-map", {"from", "to", "router"}, {"port", "sport", "translated", "timeout"}, false, true,
       {{"sport", int64_t{12121}}}, 6s,
       "a request from a fixed source port is answered, the router's conntrack entry maps it to its translated "
       "address and port, and the server saw that address and port",
       nat_map},
      // handshakes: `requests` GETs, one connection each; every node's own TCP counters
      // before and after say who took part in a handshake.
      {"handshakes", {"from"}, {"to", "service", "port", "path", "requests", "timeout"}, true, true,
       {{"path", "/"}, {"requests", int64_t{20}}}, 10s,
       "one handshake per request at the client and at the node that answers, none at an LVS director, and "
       "one more per request from each proxy to its apps (fewer with upstream keep-alive)",
       handshakes},
      // director-bytes: `requests` GETs through the service; the director's exact per-cpu
      // IPVS bytes out and in against the body bytes received, each share a bound ("<= 5%").
      {"director-bytes", {"from", "service"}, {"to", "port", "path", "requests", "out", "in", "timeout"}, false,
       true, {{"path", "/"}, {"requests", int64_t{4}}}, 10s,
       "the director's bytes out and in, as shares of the response bytes the client received, are within the "
       "bounds (by default from the service's method: NAT at least 95 % out; DR and TUN 0 % out, at most 5 % in)",
       director_bytes},
  };
  return all;
}

const CheckKindSpec* find_check_kind(std::string_view name) {
  for (const auto& k : check_kinds())
    if (k.name == name) return &k;
  return nullptr;
}

void CheckKeyRead::error(std::string message, std::string hint) const {
  r.error(at, std::move(message), std::move(hint));
}

const std::vector<CheckKey>& check_keys() {
  static const std::vector<CheckKey> all = {
      {"path", read_path},         {"requests", read_requests}, {"hold", read_hold},
      {"sources", read_sources},   {"tolerance", read_tolerance}, {"timeout", read_timeout},
      {"proto", read_proto},       {"send", read_send},         {"banner", read_banner},
      {"server", read_text},       {"how", read_how},           {"count", read_count},
      {"min", read_time_bounds},   {"p50", read_time_bounds},   {"p90", read_time_bounds},
      {"p99", read_time_bounds},   {"max", read_time_bounds},   {"loss", read_share_bounds},
      {"rate", read_rate_bounds},  {"seconds", read_seconds},
      {"via", read_via},           {"dev", read_name},          {"src", read_src},
      {"neighbour", read_neighbour}, {"owner", read_name},      {"entry", read_entry},
      {"switch", read_name},       {"nodes", read_nodes},
      {"router", read_name},       {"sport", read_sport},       {"translated", read_translated},
      {"connections", read_connections},
      {"out", read_share_bounds},  {"in", read_share_bounds},
  };
  return all;
}

const CheckKey* find_check_key(std::string_view name) {
  for (const auto& k : check_keys())
    if (k.name == name) return &k;
  return nullptr;
}

void fill_check_defaults(Check& c) {
  if (const CheckKindSpec* spec = find_check_kind(c.kind))
    for (const auto& [key, value] : spec->defaults)
      if (!c.params.has(key)) c.params.set(key, value);
}

}  // namespace labctl::topo
