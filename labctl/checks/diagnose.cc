#include "labctl/checks/diagnose.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

#include "labctl/base/fd.h"
#include "labctl/checks/check_kind.h"
#include "labctl/kernel/netns.h"
#include "labctl/kernel/sysctl.h"
#include "labctl/plan/roles.h"

namespace labctl {
namespace {

// Bounds that keep a diagnosis in milliseconds whatever the lab looks like.
constexpr size_t kMaxLinksRead = 16;           // per node, for per-interface sysctls
constexpr size_t kMaxProcNetBytes = 1u << 20;  // per /proc/net/{tcp,udp}{,6} file

struct Dest {
  IpAddr addr;
  uint16_t port = 0;
  FwdMethod method = FwdMethod::Dr;
  int weight = 1;
  std::string node;  ///< "" when no lab node holds addr.
};

const Node* director_of(const Topology& t, const VirtualService& s) {
  for (const auto& n : t.nodes)
    for (const auto& x : n.services)
      if (&x == &s) return &n;
  return nullptr;
}

std::string node_with_addr(const Topology& t, const IpAddr& a) {
  const Node* n = t.owner_of(a);
  return n ? n->name : std::string();
}

// The real servers of a service: as the director's IPVS table has them when it could be
// read (a live change wins over the file), else as the topology declares them.
std::vector<Dest> dests_of(const Topology& t, const VirtualService& s, const LabFacts& f) {
  std::vector<Dest> out;
  auto it = f.services.find(s.name);
  if (it != f.services.end() && it->second.read && it->second.present) {
    for (const auto& d : it->second.dests)
      out.push_back({d.addr, d.port, d.method.value_or(FwdMethod::Dr), d.weight, node_with_addr(t, d.addr)});
    // The kernel's order is its hash order: name the causes in address order instead.
    std::sort(out.begin(), out.end(), [](const Dest& a, const Dest& b) { return a.addr < b.addr; });
    return out;
  }
  for (const auto& rs : s.real_servers)
    out.push_back({rs.addr, rs.port ? rs.port : s.port, rs.method, rs.weight,
                   rs.node.empty() ? node_with_addr(t, rs.addr) : rs.node});
  return out;
}

bool holds(const NodeFacts& n, const IpAddr& a) {
  return std::any_of(n.addrs.begin(), n.addrs.end(), [&](const AddrInfo& x) { return x.prefix.addr == a; });
}

// A sysctl as a number; nullopt when it was not read (the key or the device is missing).
std::optional<int> sysctl_int(const NodeFacts& n, const std::string& key) {
  auto it = n.sysctls.find(key);
  if (it == n.sysctls.end()) return std::nullopt;
  int v = 0;
  auto [p, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), v);
  if (ec != std::errc()) return std::nullopt;
  return v;
}

std::string conf_key(const std::string& dev, const std::string& what) {
  return "net.ipv4.conf." + dev + "." + what;
}

// Interfaces that answer ARP on the wire: up, with an IPv4 address, neither lo nor a tunnel.
std::vector<std::string> arp_devices(const NodeFacts& n) {
  std::vector<std::string> out;
  for (const auto& l : n.links) {
    if (l.name == "lo" || l.kind == "ipip" || !l.up || l.mac.empty()) continue;
    bool v4 = std::any_of(n.addrs.begin(), n.addrs.end(),
                          [&](const AddrInfo& a) { return a.index == l.index && a.prefix.addr.v4(); });
    if (v4) out.push_back(l.name);
  }
  return out;
}

// The kernel acts on max(all, dev) for arp_ignore, arp_announce and rp_filter.
struct Effective {
  int all = 0, dev = 0;
  [[nodiscard]] int value() const { return std::max(all, dev); }
};
std::optional<Effective> effective(const NodeFacts& n, const std::string& dev, const std::string& what) {
  auto a = sysctl_int(n, conf_key("all", what));
  auto d = sysctl_int(n, conf_key(dev, what));
  if (!a || !d) return std::nullopt;
  return Effective{*a, *d};
}

// The route the kernel would pick for `to` (longest prefix; the default route matches last).
const RouteInfo* route_for(const NodeFacts& n, const IpAddr& to) {
  const RouteInfo* best = nullptr;
  int best_len = -1;
  for (const auto& r : n.routes) {
    if (r.family != to.family) continue;
    int len = r.dst ? r.dst->len : 0;
    if (r.dst && !r.dst->contains(to)) continue;
    if (len > best_len) best = &r, best_len = len;
  }
  return best;
}

std::string vip_interface(const Node& director, const IpAddr& vip) {
  if (const Interface* i = director.interface_with(vip)) return i->name;
  for (const auto& i : director.interfaces)
    for (const auto& p : i.addresses)
      if (p.contains(vip)) return i.name;
  return director.interfaces.empty() ? "eth0" : director.interfaces.front().name;
}

std::string host_prefix(const IpAddr& a) { return a.str() + "/" + std::to_string(a.max_prefix()); }

class Decider {
 public:
  Decider(const Topology& t, const Check& c, const LabFacts& f) : t_(t), c_(c), f_(f) {}

  std::vector<Cause> run() {
    const check_kind::KindRun* kind = check_kind::find_kind_run(c_.kind);
    if (kind && !kind->diagnose) return {};
    const bool arp_only = kind && kind->focus.arp_only;
    for (const VirtualService* s : services_of(t_, c_)) {
      const Node* d = director_of(t_, *s);
      if (!d) continue;
      const NodeFacts* df = facts(d->name);
      if (df && !s->fwmark && !holds(*df, s->vip))
        add(d->name,
            fmt::format("director {} does not hold the VIP {}: no interface has it, so it neither answers ARP "
                        "for it nor takes the clients' packets for service {} as its own", d->name,
                        s->vip.str(), s->name),
            fmt::format("[nodes.{}] interfaces.{}.addresses += \"{}\"", d->name,
                        vip_interface(*d, s->vip), host_prefix(s->vip)));
      if (kind && kind->focus.scheduler) scheduler_changed(*d, *s);
      auto dests = dests_of(t_, *s, f_);
      if (!arp_only && df &&
          std::any_of(dests.begin(), dests.end(), [](const Dest& x) { return x.method == FwdMethod::Nat; }))
        forwarding(*d, *df, *s);
      for (const auto& x : dests) {
        if (x.weight <= 0 || x.node.empty()) continue;  // weight 0 gets no traffic
        const NodeFacts* rf = facts(x.node);
        if (!rf) continue;
        if (x.method != FwdMethod::Nat) {
          if (!arp_only) {
            hidden_vip(x, *rf, *s);
            if (x.method == FwdMethod::Tun && s->vip.v6()) {
              ip6ip6(x, *rf);  // IPv6 has no rp_filter
            } else if (x.method == FwdMethod::Tun) {
              ipip(x, *rf);
              rp_filter(x, *rf, df, *s);
            }
          }
          if (s->vip.v4()) arp(x, *rf, *s);
        } else if (!arp_only && df) {
          nat_route(x, *rf, *d, *df, *s);
        }
        if (!arp_only) listener(x, *rf, *s);
      }
    }
    return std::move(out_);
  }

 private:
  const NodeFacts* facts(const std::string& node) const {
    auto it = f_.nodes.find(node);
    return it != f_.nodes.end() && it->second.read ? &it->second : nullptr;
  }

  void add(const std::string& node, std::string what, std::string fix) {
    for (const auto& c : out_)
      if (c.node == node && c.what == what) return;
    out_.push_back({node, std::move(what), std::move(fix)});
  }

  // The promise sticky and least-conn prove is the scheduler's: one changed under the lab
  // (ipvsadm -E) is the first thing to name. balance follows the live table instead.
  void scheduler_changed(const Node& d, const VirtualService& s) {
    auto it = f_.services.find(s.name);
    if (it == f_.services.end() || !it->second.read || !it->second.present) return;
    const ServiceFacts& sf = it->second;
    const bool persistent = s.persistence > 0;
    if (sf.scheduler == s.scheduler && sf.persistent == persistent) return;
    auto with_p = [](const std::string& sched, bool p, uint32_t timeout) {
      return p ? fmt::format("{} with persistence {} s", sched, timeout) : sched + " without persistence";
    };
    const std::string svc = s.fwmark ? fmt::format("-f {}", s.fwmark)
                                     : fmt::format("-{} {}", s.proto == Proto::Udp ? 'u' : 't',
                                                   s.vip.v6() ? "[" + s.vip.str() + "]:" + std::to_string(s.port)
                                                              : s.vip.str() + ":" + std::to_string(s.port));
    add(d.name,
        fmt::format("the director's IPVS table schedules service {} with {}, but the topology says {}: it was "
                    "changed on the live lab (ipvsadm -E), and the promise this check proves is the topology's",
                    s.name, with_p(sf.scheduler, sf.persistent, sf.timeout),
                    with_p(s.scheduler, persistent, s.persistence)),
        fmt::format("labctl exec {} {} -- ipvsadm -E {} -s {}{}", t_.name, d.name, svc, s.scheduler,
                    persistent ? fmt::format(" -p {}", s.persistence) : ""));
  }

  void forwarding(const Node& d, const NodeFacts& df, const VirtualService& s) {
    const std::string key = s.vip.v6() ? "net.ipv6.conf.all.forwarding" : "net.ipv4.ip_forward";
    if (auto v = sysctl_int(df, key); v && *v == 0)
      add(d.name,
          fmt::format("NAT director {} does not forward packets ({} is 0): it drops the requests it "
                      "rewrites for the real servers and their replies", d.name, key),
          fmt::format("[nodes.{}.sysctl] {} = 1", d.name, key));
  }

  void hidden_vip(const Dest& x, const NodeFacts& rf, const VirtualService& s) {
    if (s.fwmark || holds(rf, s.vip)) return;
    const bool tun = x.method == FwdMethod::Tun;
    const char* dev = !tun ? "lo" : s.vip.v6() ? "ip6tnl0" : "tunl0";
    add(x.node,
        fmt::format("{} real server {} does not hold the VIP {} (on {}): the packets the director "
                    "sends it are not addressed to it, so it drops them",
                    method_upper(x.method), x.node, s.vip.str(), dev),
        fmt::format("[nodes.{}] {} += \"{}\"", x.node, dev, host_prefix(s.vip)));
  }

  void ipip(const Dest& x, const NodeFacts& rf) {
    auto it = std::find_if(rf.links.begin(), rf.links.end(),
                           [](const LinkInfo& l) { return l.name == rtnl::kIpipFallback; });
    if (it != rf.links.end() && it->up) return;
    add(x.node,
        fmt::format("TUN real server {} does not accept IPIP: {}, so the director's encapsulated "
                    "requests are dropped", x.node,
                    it == rf.links.end() ? "it has no tunl0 (ipip not loaded in its namespace)" : "its tunl0 is down"),
        fmt::format("[nodes.{}] accept_ipip = true", x.node));
  }

  // IPVS's tun method for an IPv6 service sends IPv6-in-IPv6, which only ip6tnl0 takes apart.
  void ip6ip6(const Dest& x, const NodeFacts& rf) {
    auto it = std::find_if(rf.links.begin(), rf.links.end(),
                           [](const LinkInfo& l) { return l.name == rtnl::kIp6tnlFallback; });
    if (it != rf.links.end() && it->up) return;
    add(x.node,
        fmt::format("IPv6 TUN real server {} does not accept IPv6-in-IPv6: {}, so the director's "
                    "encapsulated requests are dropped",
                    x.node,
                    it == rf.links.end() ? "it has no ip6tnl0 (ip6_tunnel not loaded in its namespace)"
                                         : "its ip6tnl0 is down"),
        fmt::format("[nodes.{}] accept_ip6ip6 = true", x.node));
  }

  void arp(const Dest& x, const NodeFacts& rf, const VirtualService& s) {
    const std::string m = method_upper(x.method);
    for (const auto& dev : arp_devices(rf)) {
      if (auto e = effective(rf, dev, "arp_ignore"); e && e->value() < 1)
        add(x.node,
            fmt::format("{} real server {} answers ARP for the VIP {} on {}: arp_ignore is {} (max of all "
                        "{} and {} {}), so clients may learn its MAC for the VIP and skip the director",
                        m, x.node, s.vip.str(), dev, e->value(), e->all, dev, e->dev),
            fmt::format("[nodes.{}.sysctl] {} = 1", x.node, conf_key("all", "arp_ignore")));
      if (auto e = effective(rf, dev, "arp_announce"); e && e->value() < 2)
        add(x.node,
            fmt::format("{} real server {} may announce the VIP {} in its own ARP requests on {}: "
                        "arp_announce is {} (max of all {} and {} {}), which teaches neighbours its MAC for the VIP",
                        m, x.node, s.vip.str(), dev, e->value(), e->all, dev, e->dev),
            fmt::format("[nodes.{}.sysctl] {} = 2", x.node, conf_key("all", "arp_announce")));
    }
  }

  // The decapsulated request arrives on tunl0 while the route back to the client leaves by
  // the underlay: strict reverse-path filtering (1) on tunl0 drops it, loose (2) only when
  // there is no route back at all. The outer packet (DIP -> RIP) arrives on the underlay;
  // strict filtering there drops it only when the route back to the director leaves by
  // another interface. For each, the kernel uses max(all, interface).
  void rp_filter(const Dest& x, const NodeFacts& rf, const NodeFacts* df, const VirtualService& s) {
    auto judge = [&](const std::string& dev, const std::optional<IpAddr>& back, const char* what) {
      auto e = effective(rf, dev, "rp_filter");
      if (!e || e->value() == 0) return;
      const RouteInfo* r = back ? route_for(rf, *back) : nullptr;
      bool drops = e->value() == 1 ? !r || r->dev != dev : !r;
      if (!drops) return;
      for (const std::string& key_dev : {std::string("all"), dev}) {
        int v = key_dev == "all" ? e->all : e->dev;
        if (v != e->value()) continue;
        add(x.node,
            fmt::format("TUN real server {} drops {} as spoofed: rp_filter is {} on {} (effective on {}: "
                        "max of all {} and {} {}), and its route back to {} {}",
                        x.node, what, v, key_dev, dev, e->all, dev, e->dev, back ? back->str() : "the sender",
                        !r ? "does not exist" : "leaves by " + r->dev + ", not " + dev),
            fmt::format("[nodes.{}.sysctl] {} = 0", x.node, conf_key(key_dev, "rp_filter")));
      }
    };
    judge(rtnl::kIpipFallback, client_addr(s.vip.family), "the tunnelled requests");
    std::optional<IpAddr> dip;
    if (df)
      for (const auto& a : df->addrs)
        if (a.prefix.addr.v4() && a.prefix.addr != s.vip && !a.prefix.addr.loopback() && !dip) dip = a.prefix.addr;
    for (const auto& dev : arp_devices(rf)) judge(dev, dip, "the encapsulated packets from the director");
  }

  void nat_route(const Dest& x, const NodeFacts& rf, const Node& d, const NodeFacts& df,
                 const VirtualService& s) {
    std::optional<IpAddr> client = client_addr(s.vip.family);
    // The director's address on the real server's subnet: the gateway the fix names.
    std::string gw;
    for (const auto& a : df.addrs)
      if (a.prefix.addr.family == x.addr.family && a.prefix.len < a.prefix.addr.max_prefix() &&
          a.prefix.contains(x.addr))
        gw = a.prefix.addr.str();
    const RouteInfo* r = client ? route_for(rf, *client) : nullptr;
    if (!client)
      for (const auto& rr : rf.routes)
        if (!rr.dst && rr.family == x.addr.family) r = &rr;
    if (r && r->via && holds(df, *r->via)) return;
    const std::string to = client ? "the client " + client->str() : "clients";
    std::string what;
    if (!r) what = fmt::format("NAT real server {} has no route back to {}: its replies cannot reach the director", x.node, to);
    else if (!r->via)
      what = fmt::format("NAT real server {} reaches {} directly on {}, bypassing director {}, which must "
                         "rewrite the replies' source back to the VIP", x.node, to, r->dev, d.name);
    else
      what = fmt::format("NAT real server {}'s {} goes via {}, not via director {}: its replies to {} skip the "
                         "director, which must rewrite their source back to the VIP", x.node,
                         r->dst ? "route " + r->dst->str() : std::string("default route"), r->via->str(), d.name, to);
    bool has_default = std::any_of(rf.routes.begin(), rf.routes.end(),
                                   [&](const RouteInfo& rr) { return !rr.dst && rr.family == x.addr.family; });
    std::string fix;
    if (!gw.empty())
      fix = has_default ? fmt::format("[nodes.{}] routes = [{{ to = \"default\", via = \"{}\" }}]", x.node, gw)
                        : fmt::format("[nodes.{}] routes += {{ to = \"default\", via = \"{}\" }}", x.node, gw);
    add(x.node, std::move(what), std::move(fix));
  }

  void listener(const Dest& x, const NodeFacts& rf, const VirtualService& s) {
    uint16_t port = x.port ? x.port : (s.port ? s.port : c_.port);
    if (!port) return;  // a fwmark service without a port to ask about
    const bool tcp = s.proto == Proto::Tcp;
    if ((tcp ? rf.tcp_listen : rf.udp_bound).count(port)) return;
    const Node* n = t_.node(x.node);
    const Agent* declared = nullptr;
    if (n)
      for (const auto& a : n->agents)
        if (a.port == port) declared = &a;
    std::string what = fmt::format("nothing listens on {} port {} on real server {}", tcp ? "TCP" : "UDP", port, x.node);
    if (declared)
      what += fmt::format(" although its agent {} is declared there: did it exit? (`labctl status {}`)",
                          declared->name, t_.name);
    std::string fix = declared ? "" : fmt::format("[nodes.{}] agents.web = {{ kind = \"{}\", port = {} }}",
                                                  x.node, tcp ? "http" : "echo", port);
    add(x.node, std::move(what), std::move(fix));
  }

  std::optional<IpAddr> client_addr(int family) const {
    if (const NodeFacts* cf = facts(c_.from))
      for (const auto& a : cf->addrs)
        if (a.prefix.addr.family == family && a.prefix.len < a.prefix.addr.max_prefix() &&
            !a.prefix.addr.loopback())
          return a.prefix.addr;
    if (const Node* n = t_.node(c_.from))
      for (const auto& i : n->interfaces)
        for (const auto& p : i.addresses)
          if (p.addr.family == family && p.len < p.addr.max_prefix()) return p.addr;
    return std::nullopt;
  }

  const Topology& t_;
  const Check& c_;
  const LabFacts& f_;
  std::vector<Cause> out_;
};

// Reads a whole small file (the /proc/net tables) from the calling thread's namespace.
std::string read_small(const char* path) {
  std::string out;
  Fd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) return out;
  char buf[16384];
  while (out.size() < kMaxProcNetBytes) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Everything decide_causes may ask about one node, read on a thread inside its namespace.
NodeFacts read_node(const Topology& t, const std::string& node) {
  NodeFacts f;
  auto ns = open_netns(netns_name(t.name, node));
  if (!ns) return f;
  Status st = run_in_netns(ns->get(), [&]() -> Status {
    TRY_ASSIGN(Rtnl rtnl, Rtnl::open(node));
    TRY_ASSIGN(f.links, rtnl.links());
    TRY_ASSIGN(f.addrs, rtnl.addresses());
    for (int fam : {AF_INET, AF_INET6})
      if (auto r = rtnl.routes(fam)) f.routes.insert(f.routes.end(), r->begin(), r->end());
    std::vector<std::string> keys{"net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"};
    std::vector<std::string> devs{"all"};
    for (const auto& l : f.links)
      // A '.' in a name (eth0.10) cannot be written in dotted sysctl form.
      if (devs.size() <= kMaxLinksRead && l.name != "lo" && l.name.find('.') == std::string::npos)
        devs.push_back(l.name);
    for (const auto& d : devs)
      for (const char* what : {"arp_ignore", "arp_announce", "rp_filter"}) keys.push_back(conf_key(d, what));
    for (const auto& k : keys)
      if (auto v = read_sysctl(k)) f.sysctls[k] = *v;
    // /proc/thread-self/net is this thread's namespace (/proc/net would be the process's).
    for (const char* p : {"/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"})
      for (uint16_t port : parse_proc_net_ports(read_small(p), true)) f.tcp_listen.insert(port);
    for (const char* p : {"/proc/thread-self/net/udp", "/proc/thread-self/net/udp6"})
      for (uint16_t port : parse_proc_net_ports(read_small(p), false)) f.udp_bound.insert(port);
    return {};
  });
  f.read = static_cast<bool>(st);
  return f;
}

ServiceFacts read_service(const Topology& t, const Node& director, const VirtualService& s) {
  ServiceFacts f;
  auto ns = open_netns(netns_name(t.name, director.name));
  if (!ns) return f;
  Status st = run_in_netns(ns->get(), [&]() -> Status {
    TRY_ASSIGN(Ipvs ipvs, Ipvs::open(director.name));
    TRY_ASSIGN(auto services, ipvs.services());
    for (const auto& x : services)
      if ((s.fwmark && x.fwmark == s.fwmark) || (!s.fwmark && x.addr == s.vip && x.port == s.port)) {
        f.present = true;
        f.scheduler = x.scheduler;
        f.persistent = (x.flags & 0x1) != 0;  // IP_VS_SVC_F_PERSISTENT
        f.timeout = x.timeout;
      }
    if (f.present) {
      TRY_ASSIGN(f.dests, ipvs.dests(s));
    }
    return {};
  });
  f.read = static_cast<bool>(st);
  return f;
}

}  // namespace

std::vector<const VirtualService*> services_of(const Topology& t, const Check& c) {
  std::vector<const VirtualService*> out;
  for (const auto& n : t.nodes)
    for (const auto& s : n.services)
      if (c.service.empty() ? (c.to.family && !s.fwmark && s.vip == c.to && (!c.port || c.port == s.port))
                            : s.name == c.service)
        out.push_back(&s);
  return out;
}

std::set<uint16_t> parse_proc_net_ports(std::string_view text, bool tcp) {
  // "  sl  local_address rem_address   st ..." then one socket a line:
  // "   0: 00000000:0050 00000000:0000 0A ..." (address and port in hex, state in hex).
  std::set<uint16_t> out;
  size_t pos = text.find('\n');
  while (pos != std::string_view::npos && pos + 1 < text.size()) {
    size_t end = text.find('\n', pos + 1);
    std::string_view line = text.substr(pos + 1, end == std::string_view::npos ? end : end - pos - 1);
    pos = end;
    // Fields: sl, local, remote, state.
    std::vector<std::string_view> f;
    for (size_t i = 0; i < line.size() && f.size() < 4;) {
      while (i < line.size() && line[i] == ' ') ++i;
      size_t j = i;
      while (j < line.size() && line[j] != ' ') ++j;
      if (j > i) f.push_back(line.substr(i, j - i));
      i = j;
    }
    if (f.size() < 4) continue;
    size_t colon = f[1].rfind(':');
    if (colon == std::string_view::npos) continue;
    unsigned port = 0, state = 0;
    auto pp = f[1].substr(colon + 1);
    if (std::from_chars(pp.data(), pp.data() + pp.size(), port, 16).ec != std::errc() || port > 0xffff)
      continue;
    if (std::from_chars(f[3].data(), f[3].data() + f[3].size(), state, 16).ec != std::errc()) continue;
    // TCP_LISTEN is 0x0A; a UDP socket with a local port is bound (state 07, TCP_CLOSE).
    if (tcp ? state == 0x0A : port != 0) out.insert(static_cast<uint16_t>(port));
  }
  return out;
}

LabFacts gather_facts(const Topology& t, const Check& c) {
  LabFacts f;
  std::set<std::string> nodes;
  if (t.node(c.from)) nodes.insert(c.from);
  for (const VirtualService* s : services_of(t, c)) {
    const Node* d = director_of(t, *s);
    if (!d) continue;
    nodes.insert(d->name);
    f.services[s->name] = read_service(t, *d, *s);
    for (const auto& x : dests_of(t, *s, f))
      if (!x.node.empty()) nodes.insert(x.node);
  }
  for (const auto& n : nodes) f.nodes[n] = read_node(t, n);
  return f;
}

std::vector<Cause> decide_causes(const Topology& t, const Check& c, const LabFacts& f) {
  return Decider(t, c, f).run();
}

std::vector<Cause> diagnose_lvs(const Topology& t, const Check& c) {
  return decide_causes(t, c, gather_facts(t, c));
}

std::vector<Cause> diagnose(const Topology& t, const Check& c) {
  const check_kind::KindRun* kind = check_kind::find_kind_run(c.kind);
  if (!kind) return diagnose_lvs(t, c);
  return kind->diagnose ? kind->diagnose(t, c) : std::vector<Cause>{};
}

}  // namespace labctl
