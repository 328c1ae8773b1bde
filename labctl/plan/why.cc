#include "labctl/plan/why.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>
#include <vector>

#include "labctl/plan/agent_kind.h"

namespace labctl::why {
namespace {

/// "net.ipv4.conf.eth0.rp_filter" -> {"eth0", "rp_filter"}; the device is "" for other keys.
struct SysctlKey {
  std::string dev;
  std::string leaf;
};

SysctlKey split_key(const std::string& key) {
  auto last = key.rfind('.');
  SysctlKey k{"", last == std::string::npos ? key : key.substr(last + 1)};
  for (const char* prefix : {"net.ipv4.conf.", "net.ipv6.conf."}) {
    std::string p = prefix;
    if (key.rfind(p, 0) == 0 && last > p.size()) k.dev = key.substr(p.size(), last - p.size());
  }
  return k;
}

/// The VIP a real server holds locally (on lo or tunl0), with the device it sits on.
struct HeldVip {
  IpPrefix addr;
  std::string dev;
};

std::optional<HeldVip> held_vip(const Roles& r, const Node& n) {
  for (const auto& m : r.memberships(n)) {
    for (const auto& a : n.lo_addresses)
      if (a.addr == m.service->vip) return HeldVip{a, "lo"};
    for (const auto& a : n.tunl0_addresses)
      if (a.addr == m.service->vip) return HeldVip{a, "tunl0"};
    for (const auto& a : n.ip6tnl0_addresses)
      if (a.addr == m.service->vip) return HeldVip{a, "ip6tnl0"};
  }
  return std::nullopt;
}

/// "the director" when the node is named after its role, else "the director lb1".
std::string the(const std::string& role, const std::string& name) {
  return name == role ? "the " + role : "the " + role + " " + name;
}

std::string where(const std::string& dev) { return dev == "all" ? "every interface" : dev; }

std::string arp_ignore(const Roles& r, const Node& n, const SysctlKey& k, const std::string& v) {
  if (v == "0") return "answer ARP for any local address on any interface (the kernel default)";
  auto vip = held_vip(r, n);
  if (v == "1" && vip)
    return fmt::format(
        "{} holds the VIP {} on {}; arp_ignore=1 on {} answers ARP only for addresses of the "
        "interface the request came in on, so {} never answers \"who has {}?\" and clients keep "
        "sending to the director instead of bypassing it",
        n.name, vip->addr.addr.str(), vip->dev, where(k.dev), n.name, vip->addr.addr.str());
  if (v == "1")
    return fmt::format("on {}, answer ARP only for addresses of the interface the request "
                       "arrived on",
                       where(k.dev));
  return "";
}

std::string arp_announce(const Roles& r, const Node& n, const SysctlKey& k, const std::string& v) {
  auto vip = held_vip(r, n);
  if (v == "2" && vip)
    return fmt::format(
        "when {} sends ARP requests on {}, use that interface's own address as the sender, "
        "never the VIP {} on {}: neighbours must not learn \"VIP is at {}'s MAC\"",
        n.name, where(k.dev), vip->addr.addr.str(), vip->dev, n.name);
  if (v == "2")
    return fmt::format("ARP requests sent on {} use the best address of the outgoing "
                       "interface as sender",
                       where(k.dev));
  return "";
}

std::string forwarding(const Roles& r, const Node& n, const std::string& v) {
  if (v != "1") return "";
  bool nat_director = false;
  for (const auto& s : n.services)
    for (const auto& d : s.real_servers)
      if (d.method == FwdMethod::Nat) nat_director = true;
  if (nat_director)
    return "the NAT real servers' replies come back through this director (their default "
           "gateway); IPVS rewrites their source RIP back to the VIP and must then forward them "
           "to the client: without ip_forward=1 they are dropped";
  if (r.is_router(n))
    return fmt::format("{} routes packets between its networks", n.name);
  return "forward packets between interfaces";
}

std::string rp_filter(const Roles& r, const Node& n, const SysctlKey& k, const std::string& v) {
  if (v != "0") return "";
  const char* max_rule =
      " (the kernel uses the larger of conf.all and the interface's value, so both must be 0)";
  if (r.is_real_server(n, FwdMethod::Tun)) {
    // The unwrapped request is received on tunl0: only max(all, tunl0) decides its fate
    // (tests/kernel/exercises_test.cc proves it). On the underlay only the outer packet
    // from the director is checked, and its route back leaves that same interface.
    if (k.dev == "all" || k.dev == "tunl0" || k.dev == "default")
      return fmt::format(
          "the packet unwrapped from tunl0 has the client as source; the reverse-path check "
          "would see that the route back to the client does not leave through tunl0 and drop "
          "it. The kernel checks it against tunl0's value, the max of conf.all and conf.tunl0, "
          "so both must be 0 (or 2, loose): this is conf.{}",
          k.dev);
    return fmt::format(
        "not needed for the tunnel: the unwrapped requests are checked on tunl0 (max of conf.all "
        "and conf.tunl0), and on {} only the outer packet from the director is, whose route back "
        "leaves {} anyway, so even strict filtering there passes it",
        k.dev, k.dev);
  }
  if (r.is_router(n) && (r.lab_uses(FwdMethod::Tun) || r.lab_uses(FwdMethod::Dr)))
    return fmt::format(
        "replies from the real servers carry the VIP as source but arrive from the real "
        "servers' side; a strict reverse-path check on {} would drop them{}",
        where(k.dev), max_rule);
  return fmt::format(
      "no reverse-path filtering on {}: a new namespace may inherit rp_filter=1 from the host{}",
      where(k.dev), max_rule);
}

}  // namespace

std::string switch_netns(const Switch& sw) {
  return fmt::format("switch {} gets a namespace of its own, so its bridge and ports never touch "
                     "the host's root namespace",
                     sw.name);
}

std::string bridge(const Roles& r, const Switch& sw) {
  std::string base = "a Linux bridge is the lab's Ethernet switch: it learns behind which port "
                     "each MAC address sits and, like a plain switch, floods multicast (no "
                     "IGMP/MLD snooping)";
  const auto& t = r.topology();
  auto on_switch = [&](const Node& n) {
    for (const auto& i : n.interfaces)
      if (i.sw == sw.name) return true;
    return false;
  };
  for (const auto& d : t.nodes) {
    if (!on_switch(d)) continue;
    for (const auto& s : d.services)
      for (const auto& rs : s.real_servers) {
        const Node* o = r.owner(rs.addr);
        if (rs.method == FwdMethod::Dr && o && on_switch(*o))
          return base + "; LVS-DR needs the director and its real servers on one such segment, "
                        "because the director only rewrites MAC addresses";
      }
  }
  return base;
}

std::string veth(const Node& n, const Interface& i) {
  if (!i.sw.empty())
    return fmt::format("a veth pair is a virtual cable: {} in {}, the other end ({}) plugged "
                       "into switch {}",
                       i.name, n.name, i.port, i.sw);
  return fmt::format("a veth pair is a virtual cable: {} in {} straight to {} in {}", i.name,
                     n.name, i.peer_ifname, i.peer_node);
}

std::string bridge_up(const Switch& sw) {
  return fmt::format("switch {} comes up once its ports are: it takes them into forwarding all "
                     "at once",
                     sw.name);
}

std::string no_ipv6(const Node& n) {
  return fmt::format("{} has no IPv6 addresses, so the interfaces made for it get no IPv6 either: "
                     "no DAD, MLD or router solicitations on the wire, and captures show only "
                     "the lab's own traffic",
                     n.name);
}

namespace {
std::string impair_why(const Impairment& imp, const std::string& leaving,
                       const std::string& other_way) {
  const std::string qdisc = needs_netem(imp) ? "netem" : "tbf";
  return qdisc + " applies " + impairment_summary(imp) + " to every packet leaving " + leaving +
         ": egress only; to impair the other direction too, " + other_way;
}
}  // namespace

namespace {
// A rate on the interface a director holds its VIPs on caps the road its NAT replies take
// back to the clients, and not its DR or TUN ones: the course's NAT-vs-DR lesson.
std::string director_road(const Node& n, const Interface& i) {
  std::vector<std::string> nat, bypass;
  for (const auto& s : n.services) {
    const bool here = std::any_of(i.addresses.begin(), i.addresses.end(),
                                  [&](const IpPrefix& a) { return !s.fwmark && a.addr == s.vip; });
    if (!here || s.real_servers.empty()) continue;
    std::set<FwdMethod> methods;
    for (const auto& rs : s.real_servers) methods.insert(rs.method);
    if (methods == std::set<FwdMethod>{FwdMethod::Nat}) {
      nat.push_back(s.name);
    } else if (!methods.count(FwdMethod::Nat) && !methods.count(FwdMethod::Local)) {
      std::vector<std::string> names;  // "DR", "TUN"
      for (FwdMethod m : methods) {
        names.emplace_back(to_string(m));
        for (char& ch : names.back()) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      }
      bypass.push_back(fmt::format("{} ({})", s.name, fmt::join(names, ", ")));
    }
  }
  if (nat.empty()) return "";
  std::string w = fmt::format(
      ". Clients reach the VIPs on this interface, so every reply of NAT service{} {} leaves through "
      "this cap too: requests ride in on bicycles in the morning (a few hundred bytes), replies drive "
      "home in trucks in the evening (whole pages), and NAT sends every truck down the director's one road",
      nat.size() == 1 ? "" : "s", fmt::join(nat, ", "));
  if (!bypass.empty())
    w += fmt::format("; the replies of {} go from the real servers straight to the client and never queue here",
                     fmt::join(bypass, ", "));
  return w;
}
}  // namespace

std::string impair(const Node& n, const Interface& i) {
  const std::string self = n.name + ":" + i.name;
  return impair_why(i.impair, self,
                    !i.sw.empty() ? "give " + self + " a port_impair (the switch's port towards it)"
                                  : "give " + i.peer_node + ":" + i.peer_ifname +
                                        " an impair of its own") +
         (i.impair.rate ? director_road(n, i) : "");
}

std::string port_impair(const Node& n, const Interface& i) {
  const std::string self = n.name + ":" + i.name;
  return impair_why(i.port_impair, "switch " + i.sw + " towards " + self,
                    "give " + self + " an impair of its own");
}

std::string link_up(const Node& n, const std::string& dev) {
  if (dev == "lo" && !n.lo_addresses.empty())
    return "a new namespace starts with lo down; 127.0.0.1 and the addresses put on lo here "
           "work only once it is up";
  if (dev == "lo") return "a new namespace starts with lo down; local traffic needs it up";
  if (dev == "tunl0")
    return "IP-in-IP packets that match no other tunnel are received on tunl0, and only while "
           "it is up";
  if (dev == "ip6tnl0")
    return "IPv6-in-IPv6 packets that match no other tunnel are received on ip6tnl0, and only "
           "while it is up";
  return "";
}

std::string address(const Roles& r, const Node& n, const std::string& dev, const IpPrefix& a) {
  if (const auto* s = r.service_with_vip(n, a.addr))
    return fmt::format("the VIP of {}: IPVS takes packets in LOCAL_IN, so the VIP must be a "
                       "local address of the director; clients ARP for it and {} answers",
                       service_label(*s), the("director", n.name));
  for (const auto& m : r.memberships(n)) {
    if (a.addr != m.service->vip) continue;
    if (dev == "lo")
      return fmt::format(
          "the VIP on lo, as /32: {} must own {} to accept what the director sends it (with "
          "DR only the MAC was rewritten, the IP destination is still the VIP) and answers from "
          "it; /32 adds no network route, and arp_ignore/arp_announce keep it out of ARP so only "
          "the director answers for it",
          n.name, a.addr.str());
    if (dev == "ip6tnl0")
      return fmt::format(
          "the VIP on ip6tnl0, as /128: the packet inside the IPv6-in-IPv6 wrapper is addressed "
          "to {}, so {} must own it to accept it, and it replies to the client from it",
          a.addr.str(), n.name);
    if (dev == "tunl0")
      return fmt::format(
          "the VIP on tunl0, as /32: the packet inside the IP-in-IP wrapper is addressed to {}, "
          "so {} must own it to accept it, and it replies to the client from it",
          a.addr.str(), n.name);
    return fmt::format("{} holds the VIP {} itself", n.name, a.addr.str());
  }
  const std::string lesson = network_number(a, dev);
  // The address NAT real servers use as their gateway back through this director.
  if (r.is_director(n)) {
    for (const auto& other : r.topology().nodes)
      for (const auto& rt : other.routes)
        if (rt.via && *rt.via == a.addr && r.is_real_server(other, FwdMethod::Nat))
          return "the real servers' side of the director: their default gateway" +
                 (lesson.empty() ? "" : ". " + lesson);
  }
  return lesson;
}

std::string network_number(const IpPrefix& a, const std::string& dev) {
  if (a.len >= a.addr.max_prefix()) return "";
  const IpPrefix net = a.network();
  if (a.addr.v4()) {
    const uint32_t bits = a.len == 0 ? 0 : ~uint32_t{0} << (32 - a.len);
    const std::string mask = fmt::format("{}.{}.{}.{}", bits >> 24, (bits >> 16) & 0xff,
                                         (bits >> 8) & 0xff, bits & 0xff);
    return fmt::format(
        "mask {} AND address {} = network number {}: the kernel adds the route {} dev {} "
        "(gateway 0.0.0.0 in `route -n`), so every address of that network is on-link and "
        "reached by ARP on {}; any other destination needs a route via a next hop (a gateway)",
        mask, a.addr.str(), net.addr.str(), net.str(), dev, dev);
  }
  return fmt::format(
      "prefix /{}: the first {} bits of {} are its network number {}: the kernel adds the route "
      "{} dev {}, so every address of that network is on-link and found by neighbour discovery "
      "on {}; any other destination needs a route via a next hop",
      a.len, a.len, a.addr.str(), net.addr.str(), net.str(), dev, dev);
}

std::string sysctl(const Roles& r, const Node& n, const Sysctl& s) {
  auto k = split_key(s.key);
  if (k.leaf == "arp_ignore") return arp_ignore(r, n, k, s.value);
  if (k.leaf == "arp_announce") return arp_announce(r, n, k, s.value);
  if (k.leaf == "rp_filter") return rp_filter(r, n, k, s.value);
  if (s.key == "net.ipv4.ip_forward" || k.leaf == "forwarding") return forwarding(r, n, s.value);
  if (s.key == "net.ipv4.vs.conntrack" && s.value == "1")
    return "let conntrack see IPVS connections, so netfilter NAT and stateful rules match them";
  if (k.leaf == "send_redirects" && s.value == "0")
    return "don't send ICMP redirects telling hosts to bypass this node";
  if (k.leaf == "accept_local" && s.value == "1")
    return "accept packets whose source is one of this node's own addresses";
  return "";
}

std::string route(const Roles& r, const Node& n, const Route& rt) {
  if (!rt.via) return "";
  const Node* gw = r.owner(*rt.via);
  if (!gw) return "";
  std::string dest = rt.to ? rt.to->network().str() : "everything without a closer route";
  for (const auto& m : r.memberships(n))
    if (m.dest->method == FwdMethod::Nat && m.director == gw)
      return fmt::format(
          "replies must pass back through {} so it can un-NAT them (source {} → VIP {}); sent "
          "straight to the client they would come from an address the client never talked to, "
          "and be dropped",
          the("director", gw->name), m.dest->addr.str(), m.service->vip.str());
  std::string out = fmt::format("{} is reached through {}", dest,
                                r.is_router(*gw) ? the("router", gw->name) : gw->name);
  if (r.is_real_server(n, FwdMethod::Tun) || r.is_real_server(n, FwdMethod::Dr))
    if (!rt.to && !r.is_director(*gw))
      out += "; replies to clients leave this way, straight from the VIP, not through the "
             "director";
  return out;
}

std::string enable_ipip(const Roles& r, const Node& n) {
  for (const auto& m : r.memberships(n))
    if (m.dest->method == FwdMethod::Tun)
      return fmt::format(
          "load ipip: its tunl0 receives IP-in-IP from any sender. For {} {} wraps each client "
          "packet in an outer header (director → {}) addressed to {}",
          service_label(*m.service), the("director", m.director->name), m.dest->addr.str(), n.name);
  return "load ipip: its tunl0 receives IP-in-IP packets from any sender";
}

std::string enable_ip6tnl(const Roles& r, const Node& n) {
  for (const auto& m : r.memberships(n))
    if (m.dest->method == FwdMethod::Tun && m.dest->addr.v6())
      return fmt::format(
          "load ip6_tunnel: its ip6tnl0 receives IPv6-in-IPv6 from any sender. For {} {} wraps "
          "each client packet in an outer IPv6 header (director → {}) addressed to {}",
          service_label(*m.service), the("director", m.director->name), m.dest->addr.str(), n.name);
  return "load ip6_tunnel: its ip6tnl0 receives IPv6-in-IPv6 packets from any sender";
}

std::string ipip(const Tunnel& t) {
  return fmt::format("a point-to-point IP-in-IP tunnel: packets routed into {} get an outer IP "
                     "header {} → {}",
                     t.name, t.local.str(), t.remote.str());
}

std::string scheduler(const std::string& name) {
  static const std::pair<const char*, const char*> kSchedulers[] = {
      {"rr", "round robin: each new connection goes to the next real server in turn"},
      {"wrr", "weighted round robin: like rr, in proportion to the weights (static: it looks at "
              "the weights, never the load)"},
      {"lc", "least connections: the real server with the fewest active connections, an active "
             "one counting as 256 inactive; weights are ignored but 0 (dynamic: it counts the load)"},
      {"wlc", "weighted least connections: fewest connections relative to weight (dynamic; the "
              "kernel's default)"},
      {"sh", "source hashing: one client address always lands on the same real server (static: "
             "the hash picks, whatever the load)"},
      {"dh", "destination hashing: one destination address always maps to one real server"},
      {"mh", "Maglev hashing: consistent hashing that moves few clients when servers change"},
      {"lblc", "locality-based least connections, for cache clusters: one destination address "
               "keeps its real server while that one is not overloaded, then the least loaded "
               "per weight takes the address over (dynamic, per destination)"},
      {"lblcr", "locality-based least connections with replication: one destination address maps "
                "to a set of real servers and the least loaded of the set serves it; when all are "
                "overloaded the least loaded of the cluster joins the set (dynamic, per "
                "destination)"},
      {"sed", "shortest expected delay: the least (active connections + 1) per weight"},
      {"nq", "never queue: an idle real server first, else shortest expected delay"},
      {"fo", "weighted failover: the highest-weight available real server"},
      {"ovf", "weighted overflow: the highest-weight real server until its active connections "
              "exceed its weight, then the next"},
      {"twos", "weighted random twos choice: of two servers picked at random, the one with fewer "
               "connections per weight"},
  };
  for (const auto& [n, text] : kSchedulers)
    if (name == n) return text;
  return "";
}

std::string service(const VirtualService& s) {
  std::string sched = scheduler(s.scheduler);
  std::string out = fmt::format(
      "IPVS virtual service {}: the director catches packets for it in LOCAL_IN and hands each "
      "new connection to one real server; scheduler {}{}",
      service_label(s), s.scheduler, sched.empty() ? "" : " (" + sched + ")");
  if (s.persistence > 0)
    out += fmt::format("; persistent for {} s: a client keeps its real server", s.persistence);
  if (s.netmask)
    out += fmt::format(", and every client of one /{} network shares it", *s.netmask);
  if (s.fwmark == 0 && s.port == 0) out += "; port 0: any port of the VIP, each kept by the client's template";
  if (!s.sched_flags.empty()) out += fmt::format("; scheduler flags {}", fmt::join(s.sched_flags, ", "));
  if (s.one_packet) out += "; one-packet scheduling: every UDP datagram is scheduled on its own";
  return out;
}

std::string marks(const Node& n) {
  return fmt::format(
      "{} packet-marking rule{} for fwmark services: nftables sets the mark in prerouting, before "
      "IPVS looks for services in LOCAL_IN, so one service can take several ports or addresses",
      n.marks.size(), n.marks.size() == 1 ? "" : "s");
}

std::string nft_rules(const Node& n) {
  std::vector<std::string> parts;
  if (!n.marks.empty()) parts.push_back(marks(n));
  std::size_t src = 0, dst = 0;
  for (const auto& r : n.nat) ++(r.source_nat() ? src : dst);
  if (dst)
    parts.push_back(fmt::format(
        "{} destination NAT rule{} (dnat, redirect) in prerouting: the first packet of a "
        "connection "
        "gets its new destination before routing, and conntrack rewrites the rest and the replies",
        dst, dst == 1 ? "" : "s"));
  if (src)
    parts.push_back(
        fmt::format("{} source NAT rule{} (masquerade, snat) in postrouting: connections leave "
                    "with this node's "
                    "address as source, so replies come back here to be rewritten",
                    src, src == 1 ? "" : "s"));
  return fmt::format("{}", fmt::join(parts, "; "));
}

std::string dest(const Roles& r, const VirtualService& s, const RealServer& d) {
  const Node* o = r.owner(d.addr);
  std::string who = o ? fmt::format("{} ({})", o->name, d.addr.str()) : d.addr.str();
  switch (d.method) {
    case FwdMethod::Dr:
      return fmt::format(
          "real server {} by DR (-g, gatewaying): the director keeps the IP addresses and ports "
          "(CIP -> VIP) and rewrites the destination MAC to the real server's; only the TTL drops "
          "by one, as at any forwarding hop. Both must share an L2 segment; the reply goes "
          "straight to the client",
          who);
    case FwdMethod::Nat: {
      uint16_t port = d.port != 0 ? d.port : s.port;
      return fmt::format(
          "real server {} by NAT (-m, masquerading): DNAT rewrites the destination {} → {}:{}; "
          "the reply passes back through the director, which rewrites its source to the VIP. "
          "NAT's cost: every reply crosses the director too, and replies (pages) are far bigger "
          "than requests, so the director carries both directions and becomes the bottleneck "
          "that DR and TUN avoid",
          who, service_label(s), d.addr.str(), port);
    }
    case FwdMethod::Tun:
      return fmt::format(
          "real server {} by TUN (-i, IP-in-IP): the director wraps the packet in a second IP "
          "header addressed to {}, so it may be routers away; the real server unwraps it and "
          "replies to the client straight from the VIP",
          who, d.addr.str());
    case FwdMethod::Local:
      return fmt::format(
          "the director {} is a real server of its own service (local delivery, the kernel's "
          "LOCALNODE method): IPVS passes the packet up its own stack unchanged. ipvsadm has no "
          "option for it; -g to the director's own address is delivered locally the same way",
          who);
  }
  return "";
}

std::string agent(const Node& n, const Agent& a) {
  const AgentKindPlan* k = find_agent_kind_plan(a.kind);
  return k && k->why ? k->why(n, a) : "";
}

std::string ipvs_sync(const Node& n, bool master) {
  const IpvsSync& s = *n.ipvs_sync;
  if (master)
    return fmt::format(
        "{} multicasts every connection its IPVS table makes (client, VIP, real server, state) on {}, "
        "sync id {}: a backup director learns them, so when it takes the VIP over, the packets of "
        "established connections find their real server there instead of being reset",
        n.name, s.interface, s.id);
  return fmt::format(
      "{} listens on {} for a master director's connections (sync id {}) and copies them into its own "
      "IPVS table: after a takeover it forwards established connections to the real server that "
      "already serves them, instead of resetting them as packets of no connection it knows",
      n.name, s.interface, s.id);
}

}  // namespace labctl::why
