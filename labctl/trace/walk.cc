#include "labctl/trace/walk.h"

#include <netinet/in.h>

#include <algorithm>
#include <set>
#include <tuple>

#include <fmt/format.h>

namespace labctl {
namespace {

constexpr uint8_t kSyn = 0x02, kAck = 0x10;

const char* method_name(const std::optional<FwdMethod>& method) {
  if (!method) return "routing";
  switch (*method) {
    case FwdMethod::Nat: return "NAT";
    case FwdMethod::Dr: return "DR";
    case FwdMethod::Tun: return "TUN";
    case FwdMethod::Local: return "local delivery";
  }
  return "?";
}

// The changes in words, as a hop's "why" quotes them.
std::string joined(const std::vector<PacketChange>& changes) {
  std::string out;
  for (const auto& c : changes) out += (out.empty() ? "" : "; ") + to_string(c);
  return out;
}

bool is_tcp(const Packet& p) { return p.l4 && p.l4->proto == IPPROTO_TCP; }
bool is_udp(const Packet& p) { return p.l4 && p.l4->proto == IPPROTO_UDP; }

// The client's first packet of a connection to the service: a SYN (or a datagram) from the
// client node to VIP:port.
bool opens_connection(const TraceSetup& s, const TracedFrame& f) {
  const Packet& p = f.pkt;
  const IpHeader* in = p.inner();
  if (!in || !p.l4 || in->dst != s.vip || p.l4->dport != s.port) return false;
  if (s.proto == Proto::Tcp) return is_tcp(p) && (p.l4->tcp_flags & (kSyn | kAck)) == kSyn;
  return is_udp(p);
}

class WalkBuilder {
 public:
  WalkBuilder(const TraceSetup& s, std::vector<TracedFrame> frames) : frames_(std::move(frames)) {
    w_.setup = s;
    // Time order. A tunnel device hands on the very skb its underlay received, timestamp
    // and all, so a tie puts what came in before what went out, and the wrapped packet
    // before the unwrapped one.
    auto key = [](const TracedFrame& f) {
      return std::tuple(f.t_ns, f.dir == Direction::Out, -static_cast<int>(f.pkt.ip.size()));
    };
    std::stable_sort(frames_.begin(), frames_.end(),
                     [&](const TracedFrame& a, const TracedFrame& b) { return key(a) < key(b); });
    for (const auto& i : s.ifaces)
      if (!i.mac.empty()) mac_owner_[i.mac] = i.node + ":" + i.iface;
  }

  Walk build() {
    const TraceSetup& s = w_.setup;
    const TracedFrame* first = nullptr;
    for (const auto& f : frames_)
      if (node_of(f) == s.client && f.dir == Direction::Out && opens_connection(s, f)) {
        first = &f;
        break;
      }
    if (!first) {
      no_request();
      return std::move(w_);
    }
    w_.client_ip = first->pkt.inner()->src;
    w_.client_port = first->pkt.l4->sport;
    const uint32_t isn = first->pkt.l4->seq;
    const bool tcp = s.proto == Proto::Tcp;
    w_.request = hops_where([&](const Packet& p) {
      if (!p.l4 || p.l4->sport != *w_.client_port || !p.inner() || p.inner()->src != *w_.client_ip) return false;
      if (!tcp) return is_udp(p);
      return is_tcp(p) && (p.l4->tcp_flags & (kSyn | kAck)) == kSyn && p.l4->seq == isn;
    }, true);
    w_.reply = hops_where([&](const Packet& p) {
      if (!p.l4 || p.l4->dport != *w_.client_port || !p.inner() || p.inner()->dst != *w_.client_ip) return false;
      if (!tcp) return is_udp(p);
      return is_tcp(p) && (p.l4->tcp_flags & (kSyn | kAck)) == (kSyn | kAck) && p.l4->ack == isn + 1;
    }, false);
    explain(w_.request, true);
    explain(w_.reply, false);
    conclude();
    follow_proxies();
    if (s.whole && tcp && !w_.request.empty()) {
      std::string server = w_.real_server;
      if (server.empty()) server = owner_name(s.vip);
      w_.life = life_of(s.client, w_.request.front(), *w_.client_ip, *w_.client_port, server, s.vip, s.port);
      if (!s.director.empty()) count_at_director(*w_.life);
      for (auto& leg : w_.upstream)
        if (!leg.request.empty())
          leg.life = life_of(leg.proxy, leg.request.front(), leg.src, leg.sport, leg.server.empty() ? owner_name(leg.dst) : leg.server,
                             leg.dst, leg.dport);
    }
    return std::move(w_);
  }

 private:
  const std::string& node_of(const TracedFrame& f) const { return w_.setup.ifaces[f.iface].node; }
  const std::string& node_of(const Hop& h) const { return h.node; }

  std::string mac_label(const MacAddr& m) const {
    const std::string t = mac_text(m);
    if (auto it = mac_owner_.find(t); it != mac_owner_.end()) return t + " (" + it->second + ")";
    if (t == "ff:ff:ff:ff:ff:ff") return t + " (broadcast)";
    return t;
  }
  std::string ip_label(const IpAddr& a) const {
    if (a == w_.setup.vip && w_.setup.method) return a.str() + " (VIP)";
    if (w_.client_ip && a == *w_.client_ip) return a.str() + " (client)";
    if (auto it = w_.setup.addr_owner.find(a); it != w_.setup.addr_owner.end())
      return a.str() + " (" + it->second + ")";
    return a.str();
  }
  std::string mac_owner_node(const MacAddr& m) const {
    auto it = mac_owner_.find(mac_text(m));
    return it == mac_owner_.end() ? "" : it->second.substr(0, it->second.find(':'));
  }

  // The first frame matching `match` on each interface and direction: one hop each.
  // Further copies on the client's way out are retransmissions.
  template <class Match>
  std::vector<Hop> hops_where(const Match& match, bool count_copies) {
    std::vector<Hop> hops;
    std::set<std::pair<size_t, Direction>> seen;
    for (const auto& f : frames_) {
      if (!match(f.pkt)) continue;
      if (!seen.insert({f.iface, f.dir}).second) {
        if (count_copies && node_of(f) == w_.setup.client && f.dir == Direction::Out) ++copies_;
        continue;
      }
      Hop h;
      h.iface = f.iface;
      h.node = w_.setup.ifaces[f.iface].node;
      h.ifname = w_.setup.ifaces[f.iface].iface;
      h.dir = f.dir;
      h.t_ns = f.t_ns;
      h.pkt = f.pkt;
      hops.push_back(std::move(h));
    }
    return hops;
  }

  static std::vector<PacketChange> diff(const Packet& a, const Packet& b, const WalkBuilder& wb) {
    using K = PacketChange::Kind;
    std::vector<PacketChange> d;
    auto add = [&](K kind, std::string from = {}, std::string to = {}, bool inner = false) {
      d.push_back(PacketChange{kind, inner, std::move(from), std::move(to)});
    };
    if (a.eth && b.eth) {
      if (a.eth->src != b.eth->src)
        add(K::SrcMac, wb.mac_label(a.eth->src), wb.mac_label(b.eth->src));
      if (a.eth->dst != b.eth->dst)
        add(K::DstMac, wb.mac_label(a.eth->dst), wb.mac_label(b.eth->dst));
    } else if (a.eth && !b.eth) {
      add(K::EthernetRemoved);
    } else if (!a.eth && b.eth) {
      add(K::EthernetAdded);
    }
    const IpHeader* ao = a.outer();
    const IpHeader* bo = b.outer();
    if (!ao && bo)
      add(K::Wrapped, wb.ip_label(bo->src), wb.ip_label(bo->dst));
    else if (ao && !bo)
      add(K::Unwrapped, wb.ip_label(ao->src), wb.ip_label(ao->dst));
    else if (ao && bo) {
      if (ao->src != bo->src) add(K::OuterSrc, wb.ip_label(ao->src), wb.ip_label(bo->src));
      if (ao->dst != bo->dst) add(K::OuterDst, wb.ip_label(ao->dst), wb.ip_label(bo->dst));
      if (ao->ttl != bo->ttl) add(K::OuterTtl, std::to_string(ao->ttl), std::to_string(bo->ttl));
    }
    const IpHeader* ai = a.inner();
    const IpHeader* bi = b.inner();
    const bool inner = ao || bo;
    if (ai && bi) {
      if (ai->src != bi->src) add(K::SrcIp, wb.ip_label(ai->src), wb.ip_label(bi->src), inner);
      if (ai->dst != bi->dst) add(K::DstIp, wb.ip_label(ai->dst), wb.ip_label(bi->dst), inner);
      if (ai->ttl != bi->ttl) add(K::Ttl, std::to_string(ai->ttl), std::to_string(bi->ttl), inner);
    }
    if (a.l4 && b.l4) {
      if (a.l4->sport != b.l4->sport)
        add(K::SrcPort, std::to_string(a.l4->sport), std::to_string(b.l4->sport));
      if (a.l4->dport != b.l4->dport)
        add(K::DstPort, std::to_string(a.l4->dport), std::to_string(b.l4->dport));
    }
    return d;
  }

  static bool only_macs_changed(const std::vector<PacketChange>& changes) {
    return !changes.empty() &&
           std::all_of(changes.begin(), changes.end(), [](const PacketChange& c) {
             return c.kind == PacketChange::Kind::SrcMac || c.kind == PacketChange::Kind::DstMac;
           });
  }
  // A change of this kind; of the inner header of an IPIP packet only when `inner`.
  static bool has(const std::vector<PacketChange>& changes, PacketChange::Kind kind,
                  bool inner = false) {
    return std::any_of(changes.begin(), changes.end(),
                       [&](const PacketChange& c) { return c.kind == kind && c.inner == inner; });
  }

  std::string why_first(const Hop& h, bool request) const {
    const TraceSetup& s = w_.setup;
    const IpHeader* in = h.pkt.inner();
    if (!request)
      return fmt::format("{} answers {} -> {}", h.node, ip_label(in->src), ip_label(in->dst));
    std::string why = s.method ? fmt::format("the client sends CIP -> VIP ({} -> {})", in->src.str(), in->dst.str())
                               : fmt::format("the client sends {} -> {}", in->src.str(), in->dst.str());
    if (h.pkt.eth) {
      const std::string to = mac_owner_node(h.pkt.eth->dst);
      if (!to.empty() && to == s.director)
        why += ", to the director's MAC: the director answered ARP for the VIP";
      else if (!to.empty())
        why += ", to " + to + "'s MAC (its gateway or the VIP's owner on this link)";
    }
    return why;
  }

  // Why the packet looks as it does at `h`, given `prev` (the hop before it).
  std::string why_hop(const Hop& prev, const Hop& h, bool request) const {
    const TraceSetup& s = w_.setup;
    using K = PacketChange::Kind;
    const std::string m = method_name(s.method);
    const auto& c = h.changes;
    const IpHeader* in = h.pkt.inner();
    const IpHeader* out = h.pkt.outer();
    if (prev.node != h.node) {
      if (c.empty()) return fmt::format("crossed the link from {}:{} unchanged", prev.node, prev.ifname);
      return fmt::format("changed between {}:{} and {}:{} (something on the link rewrote it)", prev.node,
                         prev.ifname, h.node, h.ifname);
    }
    if (prev.dir == Direction::In && h.dir == Direction::In) {
      if (prev.pkt.outer() && !out)
        return fmt::format("{} took the outer header off ({}): the inner packet {} -> {} is addressed to the "
                           "VIP, which {} holds on tunl0",
                           h.node, h.ifname, in->src.str(), in->dst.str(), h.node);
      return fmt::format("seen again on {}:{}", h.node, h.ifname);
    }
    if (prev.dir == Direction::Out) return fmt::format("{} sent it again on {}", h.node, h.ifname);
    // In on a node, then out of it: that node forwarded the packet.
    if (s.method && h.node == s.director && request) {
      const std::string rs = out ? owner_name(out->dst) : owner_name(in->dst);
      const std::string rs_mac = h.pkt.eth ? mac_owner_node(h.pkt.eth->dst) : "";
      switch (*s.method) {
        case FwdMethod::Dr:
          if (has(c, K::DstMac) && !has(c, K::DstIp) && !has(c, K::SrcIp) && !has(c, K::Wrapped) &&
              !has(c, K::DstPort))
            return fmt::format(
                "DR: the director rewrote only the destination MAC, to {}'s (the source MAC "
                "is its own, as on every frame it sends); the IP addresses and ports are "
                "unchanged ({} -> {}){}, so {} must hold the VIP itself (on lo)",
                rs_mac.empty() ? "the real server" : rs_mac, in->src.str(), in->dst.str(),
                has(c, K::Ttl) ? ", only the TTL dropped by one as at any forwarding hop" : "",
                rs_mac.empty() ? "the real server" : rs_mac);
          break;
        case FwdMethod::Nat:
          if (has(c, K::DstIp) && !has(c, K::SrcIp))
            return fmt::format("NAT: the director rewrote the destination VIP -> RIP ({}, {}); the source "
                               "stays the client's, and the director keeps the connection to undo this on "
                               "the reply",
                               in->dst.str(), rs);
          break;
        case FwdMethod::Tun:
          if (has(c, K::Wrapped) && !has(c, K::SrcIp, /*inner=*/true) &&
              !has(c, K::DstIp, /*inner=*/true))
            return fmt::format("TUN: the director wrapped the packet, unchanged inside ({} -> {}), in a second "
                               "IP header DIP -> RIP ({} -> {}, IPIP) so routers can carry it to {}",
                               in->src.str(), in->dst.str(), out->src.str(), out->dst.str(), rs);
          break;
        case FwdMethod::Local:
          break;  // the director answers itself: the request never leaves it
      }
      return fmt::format("{}: the director forwarded it, but not as {} does: {}", m, m,
                         c.empty() ? "nothing changed" : joined(c));
    }
    if (s.method && h.node == s.director && !request) {
      if (s.method == FwdMethod::Nat && has(c, K::SrcIp))
        return fmt::format("NAT: the director rewrote the reply's source RIP -> VIP ({}), the address the "
                           "client asked, and sends it on",
                           in->src.str());
      return fmt::format("the director forwarded the reply: {}",
                         c.empty() ? "unchanged" : joined(c));
    }
    if (only_macs_changed(c) || (has(c, K::SrcMac) && (has(c, K::Ttl) || has(c, K::OuterTtl)) &&
                                 !has(c, K::DstIp) && !has(c, K::SrcIp) && !has(c, K::OuterDst)))
      return fmt::format("{} routed it: new MACs for the next link, TTL down by one; the IP addresses stay", h.node);
    return fmt::format("{} forwarded it: {}", h.node, c.empty() ? "unchanged" : joined(c));
  }

  std::string owner_name(const IpAddr& a) const {
    auto it = w_.setup.addr_owner.find(a);
    return it == w_.setup.addr_owner.end() ? a.str() : it->second;
  }

  void explain(std::vector<Hop>& hops, bool request) {
    for (size_t i = 0; i < hops.size(); ++i) {
      if (i == 0) {
        hops[i].why = why_first(hops[i], request);
        continue;
      }
      hops[i].changes = diff(hops[i - 1].pkt, hops[i].pkt, *this);
      hops[i].why = why_hop(hops[i - 1], hops[i], request);
    }
  }

  Hop hop_of(const TracedFrame& f) const {
    Hop h;
    h.iface = f.iface;
    h.node = node_of(f);
    h.ifname = w_.setup.ifaces[f.iface].iface;
    h.dir = f.dir;
    h.t_ns = f.t_ns;
    h.pkt = f.pkt;
    return h;
  }

  // A TCP frame of the connection whose client end is `ip`:`port`: +1 sent by that end,
  // -1 sent to it, 0 neither.
  static int end_of(const Packet& p, const IpAddr& ip, uint16_t port) {
    const IpHeader* in = p.inner();
    if (!in || !is_tcp(p)) return 0;
    if (in->src == ip && p.l4->sport == port) return 1;
    if (in->dst == ip && p.l4->dport == port) return -1;
    return 0;
  }

  // A node that received the request and, before it answered, opened a connection of its
  // own: a proxy. Its connection is walked like the first, and so on down the tiers.
  void follow_proxies() {
    if (!w_.client_ip || w_.real_server.empty() || w_.setup.proto != Proto::Tcp) return;
    std::string at = w_.real_server;
    IpAddr cip = *w_.client_ip;
    uint16_t cport = *w_.client_port;
    constexpr int kMaxTiers = 4;
    for (int tier = 0; tier < kMaxTiers && !at.empty(); ++tier) {
      // When the request's data reached `at`, and when `at` first sent data back.
      const TracedFrame* request_in = nullptr;
      const TracedFrame* answer_out = nullptr;
      for (const auto& f : frames_) {
        if (node_of(f) != at || !f.pkt.l4 || f.pkt.l4->payload_len == 0) continue;
        const int end = end_of(f.pkt, cip, cport);
        if (!request_in && f.dir == Direction::In && end == 1) request_in = &f;
        if (request_in && !answer_out && f.dir == Direction::Out && end == -1) answer_out = &f;
      }
      if (!request_in) return;
      const TracedFrame* syn = nullptr;
      for (const auto& f : frames_) {
        if (f.t_ns < request_in->t_ns || (answer_out && f.t_ns > answer_out->t_ns)) continue;
        if (node_of(f) != at || f.dir != Direction::Out || !is_tcp(f.pkt) || !f.pkt.inner()) continue;
        if ((f.pkt.l4->tcp_flags & (kSyn | kAck)) != kSyn) continue;
        syn = &f;
        break;
      }
      if (!syn) return;
      ProxyLeg leg;
      leg.proxy = at;
      leg.src = syn->pkt.inner()->src;
      leg.sport = syn->pkt.l4->sport;
      leg.dst = syn->pkt.inner()->dst;
      leg.dport = syn->pkt.l4->dport;
      const uint32_t isn = syn->pkt.l4->seq;
      leg.request = hops_where([&](const Packet& p) {
        return end_of(p, leg.src, leg.sport) == 1 && (p.l4->tcp_flags & (kSyn | kAck)) == kSyn && p.l4->seq == isn;
      }, false);
      leg.reply = hops_where([&](const Packet& p) {
        return end_of(p, leg.src, leg.sport) == -1 && (p.l4->tcp_flags & (kSyn | kAck)) == (kSyn | kAck) &&
               p.l4->ack == isn + 1;
      }, false);
      explain(leg.request, true);
      explain(leg.reply, false);
      for (auto it = leg.request.rbegin(); it != leg.request.rend(); ++it)
        if (it->node != at && it->dir == Direction::In) {
          leg.server = it->node;
          break;
        }
      const std::string server = leg.server.empty() ? ip_label(leg.dst) : leg.server;
      if (!leg.request.empty())
        leg.request.front().why = fmt::format(
            "{} opens a connection of its own to {}: a new source address and port ({} -> {}); the client's "
            "connection ends at {}",
            at, server, endpoint_text(leg.src, leg.sport), endpoint_text(leg.dst, leg.dport), at);
      for (const auto& h : leg.reply)
        if (h.node == at && h.dir == Direction::In) leg.answered = true;
      for (const auto& f : frames_)
        if (node_of(f) == at && f.dir == Direction::In && f.pkt.l4 && f.pkt.l4->payload_len > 0 &&
            end_of(f.pkt, leg.src, leg.sport) == -1) {
          leg.server_answer = hop_of(f);
          break;
        }
      if (answer_out) leg.proxy_answer = hop_of(*answer_out);
      auto& f = w_.findings;
      f.push_back(fmt::format("{} took the client's connection itself and opened a second one to {}, from a new "
                              "source address and port {} (the client's was {}): a proxy (L7) holds both "
                              "handshakes, an LVS director holds none",
                              at, server, endpoint_text(leg.src, leg.sport), endpoint_text(cip, cport)));
      if (!leg.answered) {
        w_.ok = false;
        f.push_back(fmt::format("!! {}'s connection to {} was not answered (no SYN-ACK reached {})", at,
                                endpoint_text(leg.dst, leg.dport), at));
      } else if (leg.server_answer && leg.proxy_answer) {
        f.push_back(fmt::format("{} answered {}, then {} answered its own client", server, at, at));
      }
      at = leg.server;
      cip = leg.src;
      cport = leg.sport;
      w_.upstream.push_back(std::move(leg));
    }
  }

  // The whole connection as the opening side's interface saw it (that of its first hop).
  ConnectionLife life_of(const std::string& client_node, const Hop& first, const IpAddr& cip, uint16_t cport,
                         const std::string& server_node, const IpAddr& sip, uint16_t sport) const {
    ConnectionLife c;
    c.seen_at = first.node + ":" + first.ifname;
    c.client_node = client_node;
    c.server_node = server_node;
    c.client_ip = cip;
    c.client_port = cport;
    c.server_ip = sip;
    c.server_port = sport;
    c.life = follow_connection(connection_segments(frames_, first.iface, cip, cport));
    return c;
  }

  // What an LVS director received of the connection: in DR and TUN only the client's half.
  void count_at_director(ConnectionLife& c) const {
    for (const auto& f : frames_) {
      if (node_of(f) != w_.setup.director || f.dir != Direction::In) continue;
      const int end = end_of(f.pkt, c.client_ip, c.client_port);
      const bool fin = end != 0 && (f.pkt.l4->tcp_flags & 0x01);
      if (end == 1) {
        ++c.director_from_client;
        c.director_fin_from_client |= fin;
      } else if (end == -1) {
        ++c.director_from_server;
        c.director_fin_from_server |= fin;
      }
    }
  }

  static std::string endpoint_text(const IpAddr& a, uint16_t port) {
    return a.v6() ? fmt::format("[{}]:{}", a.str(), port) : fmt::format("{}:{}", a.str(), port);
  }

  void no_request() {
    const TraceSetup& s = w_.setup;
    std::string f = fmt::format("the client ({}) sent no {} to {}:{} while the trace ran", s.client,
                                s.proto == Proto::Tcp ? "TCP SYN" : "UDP datagram", s.vip.str(), s.port);
    // Unanswered ARP from the client is the usual reason nothing left it.
    std::map<IpAddr, int> asked;
    std::set<IpAddr> answered;
    for (const auto& fr : frames_) {
      if (!fr.pkt.arp || node_of(fr) != s.client) continue;
      if (fr.pkt.arp->op == 1 && fr.dir == Direction::Out) ++asked[fr.pkt.arp->target_ip];
      if (fr.pkt.arp->op == 2 && fr.dir == Direction::In) answered.insert(fr.pkt.arp->sender_ip);
    }
    for (const auto& [ip, n] : asked)
      if (!answered.contains(ip))
        f += fmt::format("; it asked ARP who-has {} {} time{} and nobody answered", ip_label(ip), n, n == 1 ? "" : "s");
    w_.findings.push_back(f);
  }

  std::string where(const Hop& h) const { return h.node + ":" + h.ifname + " (" + to_string(h.dir) + ")"; }

  void conclude() {
    const TraceSetup& s = w_.setup;
    const std::string m = method_name(s.method);
    w_.retransmissions = copies_;
    for (const auto& h : w_.request)
      if (h.node == s.director) w_.request_via_director = true;
    for (const auto& h : w_.reply)
      if (h.node == s.director) w_.reply_via_director = true;
    for (auto it = w_.request.rbegin(); it != w_.request.rend(); ++it)
      if (it->node != s.client && it->node != s.director && it->dir == Direction::In) {
        w_.real_server = it->node;
        break;
      }
    for (const auto& h : w_.reply)
      if (h.node == s.client && h.dir == Direction::In) w_.answered = true;
    bool ok = w_.answered;
    auto& f = w_.findings;
    if (s.method && !w_.request_via_director) {
      ok = false;
      f.push_back("!! the request never reached the director: the client sent it to " +
                  (w_.request.empty() || !w_.request[0].pkt.eth ? std::string("another node")
                                                                : mac_label(w_.request[0].pkt.eth->dst)) +
                  "; whoever answers ARP for the VIP gets the traffic (look at arp_ignore/arp_announce on "
                  "the real servers)");
    }
    if (w_.answered) {
      const Hop& last = w_.reply.back();
      const IpHeader* in = last.pkt.inner();
      std::string path;
      for (const auto& h : w_.reply) path += (path.empty() ? "" : " -> ") + h.node + ":" + h.ifname;
      const bool want_via = s.method == FwdMethod::Nat;
      if (!s.method)
        f.push_back("reply path: " + path);
      else
        f.push_back(fmt::format("reply path: {}; it {} the director{}", path,
                                w_.reply_via_director ? "passed" : "did not pass",
                                w_.reply_via_director == want_via
                                    ? fmt::format(" (as {} promises)", m)
                                    : fmt::format(" -- {} promises it {}", m, want_via ? "does" : "does not")));
      if (s.method && w_.reply_via_director != want_via) ok = false;
      if (!s.method) {
        if (in->src != s.vip) {
          ok = false;
          f.push_back(fmt::format("!! the client got its answer from {}, not from {}", ip_label(in->src), s.vip.str()));
        }
      } else if (in->src != s.vip) {
        ok = false;
        f.push_back(fmt::format("!! the client got its answer from {}, not from the VIP {}: its TCP stack does not "
                                "know that address and resets the connection",
                                ip_label(in->src), s.vip.str()));
      } else {
        f.push_back(fmt::format("the client got its answer from the VIP {}, the address it asked", s.vip.str()));
      }
      if (s.method && !w_.real_server.empty())
        f.push_back(fmt::format("answered by {} ({} forwarding)", w_.real_server, m));
    } else {
      ok = false;
      if (!w_.reply.empty()) {
        f.push_back("!! no answer reached the client: the reply was last seen on " + where(w_.reply.back()));
        if (s.method == FwdMethod::Nat && !w_.reply_via_director)
          f.push_back("   NAT replies must go back through the director (the real server's default gateway), "
                      "which rewrites their source RIP -> VIP");
      } else if (!w_.request.empty()) {
        const Hop& last = w_.request.back();
        f.push_back("!! no answer: the request was last seen on " + where(last) + ", and no reply was seen anywhere");
        if (std::string refused = refusal(); !refused.empty()) f.push_back("   " + refused);
        else f.push_back("   " + stuck_hint(last));
      }
    }
    if (w_.retransmissions > 0)
      f.push_back(fmt::format("the client sent its first packet {} more time{} (retransmissions: no answer in time)",
                              w_.retransmissions, w_.retransmissions == 1 ? "" : "s"));
    w_.ok = ok;
  }

  // A TCP reset or ICMP error sent back toward the client's port instead of an answer.
  std::string refusal() const {
    for (const auto& f : frames_) {
      const Packet& p = f.pkt;
      const IpHeader* in = p.inner();
      if (!in || !p.l4 || f.dir != Direction::Out || in->dst != *w_.client_ip) continue;
      if (p.l4->proto == IPPROTO_TCP && (p.l4->tcp_flags & 0x04) && p.l4->dport == *w_.client_port)
        return fmt::format("{} answered with a TCP reset from {}:{}: nothing listens on that port there", node_of(f),
                           in->src.str(), p.l4->sport);
      if ((p.l4->proto == IPPROTO_ICMP && p.l4->icmp_type == 3) || (p.l4->proto == IPPROTO_ICMPV6 && p.l4->icmp_type == 1))
        return fmt::format("{} sent an ICMP destination unreachable (code {}) from {}", node_of(f), p.l4->icmp_code,
                           in->src.str());
    }
    return "";
  }

  std::string stuck_hint(const Hop& last) const {
    const TraceSetup& s = w_.setup;
    if (last.node == s.client)
      return "nothing on the lab received it: is the client's route or ARP entry for the VIP right? "
             "(`labctl exec " + s.lab + " " + s.client + " -- ip neigh`)";
    if (last.node == s.director)
      return last.dir == Direction::In
                 ? "the director received it but did not forward it: is the IPVS service there with real "
                   "servers (`labctl status " + s.lab + "`), and ip_forward on for NAT?"
                 : "the director sent it on but no real server interface saw it arrive";
    if (last.pkt.outer() && last.dir == Direction::In)
      return last.node + " received the IPIP packet but did not unwrap it: is ipip loaded with tunl0 up "
                         "(accept_ipip = true)?";
    if (last.dir == Direction::In) {
      const std::string port = std::to_string(last.pkt.l4 ? last.pkt.l4->dport : s.port);
      if (!last.pkt.eth && s.method == FwdMethod::Tun)
        return last.node + " unwrapped it on " + last.ifname + " but sent nothing back: the kernel dropped the "
               "inner packet, most likely by reverse-path filtering (the route back to the client leaves by "
               "another interface, so rp_filter must be 0 on " + last.ifname + " and all), or nothing listens "
               "on port " + port;
      if (s.method == FwdMethod::Nat)
        return last.node + " received it but sent nothing back: it needs a route back to the client through "
               "the director (its default gateway), and something listening on port " + port;
      if (s.method == FwdMethod::Dr)
        return last.node + " received it but sent nothing back: CIP -> VIP is local to it only with the VIP "
               "on its lo; and something must listen on port " + port;
      return last.node + " received it but sent nothing back: nothing listens on port " + port +
             ", the kernel dropped it, or it has no route back to the client";
    }
    return last.node + " sent it on but the next interface never saw it";
  }

  std::vector<TracedFrame> frames_;
  std::map<std::string, std::string> mac_owner_;
  Walk w_;
  int copies_ = 0;
};

std::string endpoint(const IpAddr& a, uint16_t port) { return endpoint_text(a, port); }

nlohmann::json hop_json(const Hop& h, int64_t t0) {
  nlohmann::json j = {{"node", h.node},
                      {"iface", h.ifname},
                      {"dir", to_string(h.dir)},
                      {"t_us", static_cast<double>(h.t_ns - t0) / 1000.0}};
  if (h.pkt.eth) {
    j["src_mac"] = mac_text(h.pkt.eth->src);
    j["dst_mac"] = mac_text(h.pkt.eth->dst);
  } else {
    j["src_mac"] = nullptr;
    j["dst_mac"] = nullptr;
  }
  if (const IpHeader* in = h.pkt.inner()) {
    j["src"] = in->src.str();
    j["dst"] = in->dst.str();
    j["ttl"] = in->ttl;
  }
  if (h.pkt.l4) {
    j["sport"] = h.pkt.l4->sport;
    j["dport"] = h.pkt.l4->dport;
    if (h.pkt.l4->proto == IPPROTO_TCP) j["flags"] = tcp_flags_text(h.pkt.l4->tcp_flags);
  }
  if (const IpHeader* out = h.pkt.outer())
    j["outer"] = {{"src", out->src.str()}, {"dst", out->dst.str()}, {"ttl", out->ttl}, {"proto", out->proto}};
  else
    j["outer"] = nullptr;
  j["changes"] = nlohmann::json::array();
  for (const auto& c : h.changes) j["changes"].push_back(to_string(c));
  j["why"] = h.why;
  j["packet"] = packet_json(h.pkt);
  return j;
}

void render_hops(std::string& out, const std::vector<Hop>& hops, int64_t t0) {
  size_t width = 0;
  for (const auto& h : hops) width = std::max(width, h.node.size() + 1 + h.ifname.size());
  int n = 0;
  for (const auto& h : hops) {
    const std::string where = h.node + ":" + h.ifname;
    out += fmt::format("  {:>2}  {:<{}}  {:<3}  +{:.3f} ms  {}\n", ++n, where, width, to_string(h.dir),
                       static_cast<double>(h.t_ns - t0) / 1e6, packet_summary(h.pkt));
    for (const auto& c : h.changes) out += fmt::format("        changed: {}\n", to_string(c));
    if (n > 1 && h.changes.empty()) out += "        changed: nothing\n";
    if (!h.why.empty()) out += fmt::format("        why: {}\n", h.why);
  }
}

// "client", or the node's name when the side has one.
const std::string& side_name(const ConnectionLife& c, Side side) {
  return side == Side::Client ? c.client_node : c.server_node;
}

void render_life(std::string& out, const ConnectionLife& c, const std::string& director, int64_t t0) {
  const Lifecycle& l = c.life;
  out += fmt::format("the whole connection {} <-> {} ({} <-> {}), as {} saw it:\n",
                     endpoint(c.client_ip, c.client_port), endpoint(c.server_ip, c.server_port), c.client_node,
                     c.server_node, c.seen_at);
  size_t width = std::max(c.client_node.size(), c.server_node.size());
  int n = 0;
  for (const auto& st : l.steps)
    out += fmt::format("  {:>2}  +{:.3f} ms  {:<{}} -> {:<{}}  {:<4} {}\n", ++n,
                       static_cast<double>(st.seg.t_ns - t0) / 1e6, side_name(c, st.seg.from), width,
                       side_name(c, other(st.seg.from)), width, tcp_flags_text(st.seg.flags),
                       step_text(st, c.client_node, c.server_node));
  if (l.steps.empty()) out += "  (no segment of it was seen)\n";
  if (l.reset_by)
    out += fmt::format("{} reset the connection: no four-way close, and nobody holds TIME_WAIT\n",
                       side_name(c, *l.reset_by));
  else if (!l.closed_first)
    out += "nobody closed the connection while the trace ran\n";
  else if (!l.closed)
    out += fmt::format("{} closed first, but the four-way close was not seen to its end\n",
                       side_name(c, *l.closed_first));
  else
    out += fmt::format("closed first: {} (its FIN came first), so {} holds TIME_WAIT: it waits a while (60 s on "
                       "Linux) before the connection's port is free again; {} freed its side at once\n",
                       side_name(c, *l.closed_first), side_name(c, *l.closed_first),
                       side_name(c, other(*l.closed_first)));
  std::string tables;
  for (const auto& sf : c.sockets) {
    const std::string me = sf.side == Side::Client ? endpoint(c.client_ip, c.client_port)
                                                   : endpoint(c.server_ip, c.server_port);
    const std::string peer = sf.side == Side::Client ? endpoint(c.server_ip, c.server_port)
                                                     : endpoint(c.client_ip, c.client_port);
    std::string one = !sf.error.empty() ? sf.node + ": not read (" + sf.error + ")"
                      : sf.state.empty() ? sf.node + ": no socket of it left (CLOSED)"
                                         : fmt::format("{}: {} <-> {} {}", sf.node, me, peer, sf.state);
    tables += (tables.empty() ? "" : "; ") + one;
  }
  if (!tables.empty()) out += "socket tables after the close: " + tables + "\n";
  if (director.empty()) return;
  if (c.director_from_server == 0)
    out += fmt::format("{} received {} segment{} of it, all from the client{}, none from {}: the answers and {}'s "
                       "FIN go straight to the client, so the director never sees the connection end\n",
                       director, c.director_from_client, c.director_from_client == 1 ? "" : "s",
                       c.director_fin_from_client ? " (its FIN too)" : "", c.server_node, c.server_node);
  else
    out += fmt::format("{} received both halves ({} segment{} from the client, {} from {}{}): it carries the "
                       "whole connection\n",
                       director, c.director_from_client, c.director_from_client == 1 ? "" : "s",
                       c.director_from_server, c.server_node,
                       c.director_fin_from_client && c.director_fin_from_server ? ", both FINs among them" : "");
  if (c.director_entry) {
    const DirectorEntryFact& e = *c.director_entry;
    if (!e.error.empty())
      out += fmt::format("{}'s IPVS connection entry: not read ({})\n", director, e.error);
    else if (!e.found)
      out += fmt::format("{}'s IPVS connection entry: none left\n", director);
    else
      out += fmt::format("{}'s IPVS connection entry: {}, expires in {} s; `labctl ipvs` counts it in {} until "
                         "then{}\n",
                         director, e.state, e.expires, e.state == "ESTABLISHED" ? "ActiveConn" : "InActConn",
                         c.director_from_server == 0 && e.state != "TIME_WAIT" && e.state != "CLOSE"
                             ? " (it stays there: without the real server's FIN the director waits out its "
                               "tcpfin timeout, docs/ipvs.md)"
                             : "");
  }
}

nlohmann::json life_json(const ConnectionLife& c, int64_t t0) {
  const Lifecycle& l = c.life;
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& st : l.steps)
    steps.push_back({{"t_us", static_cast<double>(st.seg.t_ns - t0) / 1000.0},
                     {"from", to_string(st.seg.from)},
                     {"flags", tcp_flags_text(st.seg.flags)},
                     {"seq", st.seg.seq},
                     {"ack", st.seg.ack},
                     {"len", st.seg.payload_len},
                     {"handshake", st.handshake},
                     {"data", st.data},
                     {"close", st.close},
                     {"close_ack", st.close_ack},
                     {"reset", st.reset},
                     {"again", st.again},
                     {"text", step_text(st, c.client_node, c.server_node)}});
  auto side = [&](const std::optional<Side>& sd) {
    return sd ? nlohmann::json(to_string(*sd)) : nlohmann::json();
  };
  auto node = [&](const std::optional<Side>& sd) {
    return sd ? nlohmann::json(side_name(c, *sd)) : nlohmann::json();
  };
  nlohmann::json sockets = nlohmann::json::array();
  for (const auto& sf : c.sockets)
    sockets.push_back({{"node", sf.node},
                       {"side", to_string(sf.side)},
                       {"state", sf.state.empty() ? nlohmann::json() : nlohmann::json(sf.state)},
                       {"error", sf.error.empty() ? nlohmann::json() : nlohmann::json(sf.error)}});
  nlohmann::json j = {{"seen_at", c.seen_at},
                      {"client", {{"node", c.client_node}, {"ip", c.client_ip.str()}, {"port", c.client_port}}},
                      {"server", {{"node", c.server_node}, {"ip", c.server_ip.str()}, {"port", c.server_port}}},
                      {"steps", steps},
                      {"established", l.established},
                      {"request_bytes", l.request_bytes},
                      {"reply_bytes", l.reply_bytes},
                      {"closed_first", side(l.closed_first)},
                      {"closed_first_node", node(l.closed_first)},
                      {"closed", l.closed},
                      {"reset_by", side(l.reset_by)},
                      {"time_wait", side(l.time_wait())},
                      {"time_wait_node", node(l.time_wait())},
                      {"sockets", sockets}};
  if (c.director_entry || c.director_from_client || c.director_from_server) {
    nlohmann::json d = {{"from_client", c.director_from_client},
                        {"from_server", c.director_from_server},
                        {"fin_from_client", c.director_fin_from_client},
                        {"fin_from_server", c.director_fin_from_server},
                        {"entry", nullptr}};
    if (c.director_entry) {
      const auto& e = *c.director_entry;
      if (!e.error.empty()) d["entry"] = {{"error", e.error}};
      else if (e.found)
        d["entry"] = {{"state", e.state}, {"expires", e.expires}, {"inactive", e.state != "ESTABLISHED"}};
    }
    j["director"] = d;
  }
  return j;
}

nlohmann::json leg_json(const ProxyLeg& leg, int64_t t0) {
  nlohmann::json req = nlohmann::json::array(), rep = nlohmann::json::array();
  for (const auto& h : leg.request) req.push_back(hop_json(h, t0));
  for (const auto& h : leg.reply) rep.push_back(hop_json(h, t0));
  nlohmann::json j = {{"proxy", leg.proxy},
                      {"src", leg.src.str()},
                      {"sport", leg.sport},
                      {"dst", leg.dst.str()},
                      {"dport", leg.dport},
                      {"server", leg.server},
                      {"answered", leg.answered},
                      {"request", req},
                      {"reply", rep},
                      {"server_answer", leg.server_answer ? hop_json(*leg.server_answer, t0) : nlohmann::json()},
                      {"proxy_answer", leg.proxy_answer ? hop_json(*leg.proxy_answer, t0) : nlohmann::json()}};
  if (leg.life) j["lifecycle"] = life_json(*leg.life, t0);
  return j;
}

void render_leg(std::string& out, const ProxyLeg& leg, int64_t t0) {
  out += fmt::format("{}'s own connection onward (TCP SYN {} -> {}: a new source address and port), hop by hop:\n",
                     leg.proxy, endpoint(leg.src, leg.sport), endpoint(leg.dst, leg.dport));
  render_hops(out, leg.request, t0);
  if (leg.reply.empty()) out += "its reply: none seen\n";
  else {
    out += "its reply (TCP SYN-ACK), hop by hop:\n";
    render_hops(out, leg.reply, t0);
  }
  const std::string server = leg.server.empty() ? leg.dst.str() : leg.server;
  if (leg.server_answer)
    out += fmt::format("  {} answered {} at +{:.3f} ms: {}\n", server, leg.proxy,
                       static_cast<double>(leg.server_answer->t_ns - t0) / 1e6, packet_summary(leg.server_answer->pkt));
  if (leg.proxy_answer)
    out += fmt::format("  {} answered its own client at +{:.3f} ms: {}\n", leg.proxy,
                       static_cast<double>(leg.proxy_answer->t_ns - t0) / 1e6, packet_summary(leg.proxy_answer->pkt));
}

}  // namespace

std::string to_string(const PacketChange& c) {
  using K = PacketChange::Kind;
  const std::string pre = c.inner ? "inner " : "";
  const std::string from_to = c.from + " -> " + c.to;
  switch (c.kind) {
    case K::SrcMac:
      return "src MAC " + from_to;
    case K::DstMac:
      return "dst MAC " + from_to;
    case K::EthernetRemoved:
      return "no Ethernet header (a tunnel device carries bare IP)";
    case K::EthernetAdded:
      return "Ethernet header again";
    case K::Wrapped:
      return "wrapped in an outer IP header " + from_to + " (IPIP)";
    case K::Unwrapped:
      return "outer IP header " + from_to + " removed";
    case K::OuterSrc:
      return "outer src " + from_to;
    case K::OuterDst:
      return "outer dst " + from_to;
    case K::OuterTtl:
      return "outer TTL " + from_to;
    case K::SrcIp:
      return pre + "src IP " + from_to;
    case K::DstIp:
      return pre + "dst IP " + from_to;
    case K::Ttl:
      return pre + "TTL " + from_to;
    case K::SrcPort:
      return "src port " + from_to;
    case K::DstPort:
      return "dst port " + from_to;
  }
  return "?";
}

std::vector<TcpSegment> connection_segments(const std::vector<TracedFrame>& frames, size_t iface,
                                            const IpAddr& cip, uint16_t cport) {
  std::vector<TcpSegment> out;
  for (const auto& f : frames) {
    const Packet& p = f.pkt;
    const IpHeader* in = p.inner();
    if (f.iface != iface || !in || !is_tcp(p)) continue;
    Side from;
    if (f.dir == Direction::Out && in->src == cip && p.l4->sport == cport) from = Side::Client;
    else if (f.dir == Direction::In && in->dst == cip && p.l4->dport == cport) from = Side::Server;
    else continue;
    out.push_back({f.t_ns, from, p.l4->tcp_flags, p.l4->seq, p.l4->ack, p.l4->payload_len});
  }
  return out;
}

Walk build_walk(const TraceSetup& setup, std::vector<TracedFrame> frames) {
  return WalkBuilder(setup, std::move(frames)).build();
}

std::string endpoint_text(const IpAddr& a, uint16_t port) {
  return a.v6() ? fmt::format("[{}]:{}", a.str(), port) : fmt::format("{}:{}", a.str(), port);
}

std::string render_walk(const Walk& w) {
  const TraceSetup& s = w.setup;
  std::string out =
      s.method ? fmt::format("trace {}: service {} ({}, {} {}), one request from {}\n", s.lab, s.service,
                             method_name(s.method), s.proto == Proto::Tcp ? "TCP" : "UDP", endpoint(s.vip, s.port),
                             s.client)
               : fmt::format("trace {}: {} {} (no IPVS service: plain routing), one request from {}\n", s.lab,
                             s.proto == Proto::Tcp ? "TCP" : "UDP", endpoint(s.vip, s.port), s.client);
  const int64_t t0 = !w.request.empty() ? w.request.front().t_ns : 0;
  if (w.client_port) {
    const bool tcp = s.proto == Proto::Tcp;
    out += fmt::format("request ({} {} -> {}), hop by hop:\n", tcp ? "TCP SYN" : "UDP datagram",
                       endpoint(*w.client_ip, *w.client_port), endpoint(s.vip, s.port));
    render_hops(out, w.request, t0);
    if (w.reply.empty()) out += "reply: none seen\n";
    else {
      out += fmt::format("reply ({}), hop by hop:\n", tcp ? "TCP SYN-ACK" : "UDP datagram");
      render_hops(out, w.reply, t0);
    }
  }
  for (const auto& leg : w.upstream) render_leg(out, leg, t0);
  if (w.life) render_life(out, *w.life, s.director, t0);
  for (const auto& leg : w.upstream)
    if (leg.life) render_life(out, *leg.life, "", t0);
  for (const auto& f : w.findings) out += f + "\n";
  if (!s.method)
    out += w.ok ? fmt::format("{}: answered\n", s.lab) : fmt::format("{}: NOT answered as asked (see the !! lines)\n", s.lab);
  else
    out += w.ok ? fmt::format("{}: the walk is what {} promises\n", s.lab, method_name(s.method))
                : fmt::format("{}: the walk is NOT what {} promises (see the !! lines)\n", s.lab, method_name(s.method));
  return out;
}

nlohmann::json walk_json(const Walk& w) {
  const TraceSetup& s = w.setup;
  const int64_t t0 = !w.request.empty() ? w.request.front().t_ns : 0;
  nlohmann::json req = nlohmann::json::array(), rep = nlohmann::json::array();
  for (const auto& h : w.request) req.push_back(hop_json(h, t0));
  for (const auto& h : w.reply) rep.push_back(hop_json(h, t0));
  nlohmann::json j = {{"lab", s.lab},
                      {"service", s.service},
                      {"method", method_name(s.method)},
                      {"proto", s.proto == Proto::Tcp ? "tcp" : "udp"},
                      {"vip", s.vip.str()},
                      {"port", s.port},
                      {"client", s.client},
                      {"director", s.director},
                      {"client_ip", w.client_ip ? nlohmann::json(w.client_ip->str()) : nlohmann::json()},
                      {"client_port", w.client_port ? nlohmann::json(*w.client_port) : nlohmann::json()},
                      {"request", req},
                      {"reply", rep},
                      {"answered", w.answered},
                      {"real_server", w.real_server},
                      {"request_via_director", w.request_via_director},
                      {"reply_via_director", w.reply_via_director},
                      {"retransmissions", w.retransmissions},
                      {"findings", w.findings},
                      {"ok", w.ok}};
  if (!w.upstream.empty()) {
    j["upstream"] = nlohmann::json::array();
    for (const auto& leg : w.upstream) j["upstream"].push_back(leg_json(leg, t0));
  }
  if (w.life) j["lifecycle"] = life_json(*w.life, t0);
  return j;
}

}  // namespace labctl
