#include "labctl/model/keepalived.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "labctl/base/display.h"

namespace labctl {

std::vector<KeepalivedAgentRef> keepalived_agents_of(const Topology& t, const std::string& name) {
  std::vector<KeepalivedAgentRef> out;
  for (const auto& n : t.nodes)
    for (const auto& a : n.agents)
      if (a.keepalived && std::any_of(a.keepalived->services.begin(), a.keepalived->services.end(),
                                      [&](const KeepalivedService& s) { return s.name == name; }))
        out.push_back({&n, &a});
  return out;
}

bool keepalived_managed(const Topology& t, const std::string& name) {
  return !keepalived_agents_of(t, name).empty();
}

bool keepalived_floats(const Node& n, const IpAddr& addr) {
  for (const auto& a : n.agents) {
    if (!a.keepalived) continue;
    for (const auto* v : {&a.keepalived->vrrp, &a.keepalived->gateway})
      if (*v)
        for (const auto& p : (*v)->vips)
          if (p.addr == addr) return true;
  }
  return false;
}

namespace topo {
namespace {

class KeepalivedRules {
 public:
  KeepalivedRules(const Topology& t, const Net& net, Reporter& r) : t_(t), net_(net), r_(r) {}

  void run() {
    for (const auto& n : t_.nodes)
      for (const auto& a : n.agents)
        if (a.keepalived) agent(n, a);
    pairs();
  }

 private:
  void agent(const Node& n, const Agent& a) {
    const KeepalivedSpec& k = *a.keepalived;
    const std::string where = fmt::format("keepalived agent {}:{}", plain(n.name), plain(a.name));
    if (k.vrrp) instance(n, *k.vrrp, where);
    if (k.gateway) instance(n, *k.gateway, "gateway of " + where);
    std::set<std::string> seen;
    for (const auto& ks : k.services) {
      if (!seen.insert(ks.name).second) {
        r_.error(ks.pos, fmt::format("{} lists service {} twice", where, plain(ks.name)));
        continue;
      }
      const auto [director, svc] = t_.service(ks.name);
      if (!svc) {
        std::vector<std::string> names;
        for (const auto& m : t_.nodes)
          for (const auto& s : m.services) names.push_back(s.name);
        r_.error(ks.pos,
                 fmt::format("{} manages service {}, which does not exist", where, shown(ks.name)),
                 did_you_mean(ks.name, names,
                              names.empty() ? "declare it under [nodes.<director>.services.<name>]"
                                            : fmt::format("services: {}", fmt::join(names, ", "))));
        continue;
      }
      const bool tcp = svc->fwmark || svc->proto == Proto::Tcp;
      if ((ks.check == "tcp" || ks.check == "http") && !tcp)
        r_.error(ks.pos,
                 fmt::format("{}: service {} is {}, and a {} check connects over TCP", where,
                             plain(ks.name), to_string(svc->proto), ks.check),
                 "use check = \"udp\" (keepalived's UDP_CHECK) or \"none\"");
      if (ks.check == "udp" && !svc->fwmark && svc->proto != Proto::Udp)
        r_.error(ks.pos,
                 fmt::format("{}: service {} is {}, and a udp check sends a UDP datagram", where,
                             plain(ks.name), to_string(svc->proto)),
                 "use check = \"tcp\" or \"http\"");
      if (ks.sorry_server && svc->vip.family && ks.sorry_server->family != svc->vip.family)
        r_.error(ks.pos,
                 fmt::format("{}: sorry_server {} of service {} is not of its VIP's family", where,
                             ks.sorry_server->str(), plain(ks.name)),
                 "IPVS forwards a service to servers of its own family");
      // The service is written on one director; validate's LVS rules check DR from there
      // only. This director forwards to the same real servers, so DR must hold here too.
      if (director != &n)
        for (const auto& rs : svc->real_servers) {
          const Node* rsn = rs.node.empty() ? nullptr : t_.node(rs.node);
          if (rsn && rsn != &n && rs.method == FwdMethod::Dr && !net_.share_segment(n, *rsn))
            r_.error(
                ks.pos,
                fmt::format(
                    "{} programs service {}, whose DR real server {} shares no L2 segment with {}",
                    where, plain(ks.name), plain(rs.node), plain(n.name)),
                fmt::format("DR rewrites only the MAC address: connect {} to {}'s switch", n.name,
                            rs.node));
        }
      // keepalived adds the service on this node: with a generated config its VIP must be one
      // this agent floats (or a fixed address of the node), or IPVS never sees the packets.
      if (k.vrrp && svc->vip.family && !svc->fwmark && !keepalived_floats(n, svc->vip) &&
          !net_.owns(n, svc->vip))
        r_.error(
            ks.pos,
            fmt::format("{} manages service {}, whose VIP {} is neither among its vips nor an "
                        "address of {}",
                        where, plain(ks.name), svc->vip.str(), plain(n.name)),
            fmt::format(
                "add \"{}/<prefix>\" to the agent's vips: keepalived then moves it with the master",
                svc->vip.str()));
    }
  }

  void instance(const Node& n, const VrrpInstance& v, const std::string& where) {
    if (!v.interface.empty() &&
        std::none_of(n.interfaces.begin(), n.interfaces.end(),
                     [&](const Interface& i) { return i.name == v.interface; })) {
      std::vector<std::string> names;
      for (const auto& i : n.interfaces) names.push_back(i.name);
      r_.error(v.keys.of("interface", v.pos),
               fmt::format("{} runs VRRP on interface {}, which node {} does not have", where,
                           shown(v.interface), plain(n.name)),
               did_you_mean(v.interface, names,
                            fmt::format("its interfaces: {}", fmt::join(names, ", "))));
    }
    for (const auto& p : v.vips) {
      // The floating VIP is keepalived's to add and remove: a fixed copy on some node would
      // answer ARP for it whoever is MASTER.
      for (const auto& m : t_.nodes)
        for (const auto& i : m.interfaces)
          for (const auto& ia : i.addresses)
            if (ia.addr == p.addr)
              r_.error(
                  v.keys.of("vips", v.pos),
                  fmt::format("{} floats {}, which is also a fixed address of {}:{}", where,
                              p.addr.str(), plain(m.name), plain(i.name)),
                  fmt::format(
                      "remove \"{}\" from the addresses of {}:{}: keepalived adds it on the MASTER "
                      "and removes it on the BACKUP",
                      ia.str(), m.name, i.name));
    }
  }

  // Routers of one pair share a virtual_router_id. Two that never hear each other's
  // adverts (no common segment) both become MASTER: split brain.
  void pairs() {
    struct Member {
      const Node* node;
      const Agent* agent;
      const VrrpInstance* v;
      std::string segment;
    };
    std::map<int, std::vector<Member>> by_id;
    for (const auto& n : t_.nodes)
      for (const auto& a : n.agents) {
        if (!a.keepalived) continue;
        for (const auto* v : {&a.keepalived->vrrp, &a.keepalived->gateway}) {
          if (!*v || !(*v)->virtual_router_id) continue;
          std::string seg;
          for (const auto& i : n.interfaces)
            if (i.name == (*v)->interface) seg = net_.segment(n, i);
          by_id[(*v)->virtual_router_id].push_back({&n, &a, &**v, seg});
        }
      }
    for (const auto& [id, members] : by_id) {
      if (members.size() < 2) continue;
      const Member& first = members.front();
      for (std::size_t k = 1; k < members.size(); ++k) {
        const Member& m = members[k];
        // A gateway instance beside its own main one is its own error (parse.cc).
        if (m.segment.empty() || first.segment.empty() || m.agent == first.agent) continue;
        if (m.segment != first.segment)
          r_.warning(
              m.agent->keys.of("interface", m.v->pos),
              fmt::format(
                  "keepalived agents {}:{} and {}:{} share virtual_router_id {} but run VRRP on "
                  "different segments ({} on {}, {} on {}): they never hear each other's adverts, "
                  "so "
                  "both become MASTER and both hold the VIP (split brain)",
                  plain(first.node->name), plain(first.agent->name), plain(m.node->name),
                  plain(m.agent->name), id, first.v->interface, first.segment, m.v->interface,
                  m.segment),
              "run both on the interface facing the clients, where the VIP lives");
        else if (m.v->priority == first.v->priority && m.v->master == first.v->master)
          r_.warning(m.agent->keys.of("priority", m.v->pos),
                     fmt::format("keepalived agents {}:{} and {}:{} of virtual_router_id {} have "
                                 "the same state and "
                                 "priority {}: the higher primary address wins, which nobody "
                                 "reading the lab expects",
                                 plain(first.node->name), plain(first.agent->name),
                                 plain(m.node->name), plain(m.agent->name), id, m.v->priority),
                     "give the MASTER the higher priority, e.g. 150 and 100");
      }
    }
  }

  const Topology& t_;
  const Net& net_;
  Reporter& r_;
};

}  // namespace

void check_keepalived(const Topology& t, const Net& net, Reporter& r) {
  KeepalivedRules(t, net, r).run();
}

}  // namespace topo
}  // namespace labctl
