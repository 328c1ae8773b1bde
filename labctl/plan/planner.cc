// Step order, and why it is the order:
//   1. namespaces (nodes, then switches): everything else lives in one.
//   2. namespace-wide sysctls (conf.all, conf.default, ip_forward): before any interface
//      exists, so conf.default reaches every interface the lab creates and no address is
//      ever reachable under the wrong ARP or rp_filter policy.
//   3. bridges in switch namespaces; 4. veth pairs, created in the node's namespace
//      with the peer born in the switch's (or peer node's) namespace under its final name;
//   5. ports enslaved to their bridge; 6. ipip and ip6_tunnel: tunl0, ip6tnl0 and the
//      explicit tunnels, so that
//   7. per-device sysctls find every device, tunl0 included, before it carries traffic;
//   8. links up (ports, then their bridge, then lo, interfaces, tunnels, tunl0): a bridge
//      that comes up after its ports takes them all into forwarding at once, instead of
//      re-running port selection over every port each time another port comes up;
//   9. addresses; 10. routes, after addresses so every gateway is on a connected network;
//   11. packet marks and NAT rules (nftables), then IPVS services, each followed by
//   its real servers; 12. net.ipv4.vs.* sysctls, which
//      exist only once the first service has loaded ip_vs; then the IPVS sync daemons,
//      which read the vs.sync_* sysctls as they start; 13. agents last, on a working
//      network.
#include "labctl/plan/planner.h"

#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <set>
#include <utility>

#include "labctl/model/ipvs_sync.h"
#include "labctl/model/keepalived.h"
#include "labctl/plan/agent_kind.h"
#include "labctl/plan/nft.h"
#include "labctl/plan/roles.h"
#include "labctl/plan/why.h"

namespace labctl {

SysctlPhase sysctl_phase(const std::string& key) {
  if (key.rfind("net.ipv4.vs.", 0) == 0) return SysctlPhase::Ipvs;
  for (const char* prefix :
       {"net.ipv4.conf.", "net.ipv6.conf.", "net.ipv4.neigh.", "net.ipv6.neigh."}) {
    std::string p = prefix;
    if (key.rfind(p, 0) != 0) continue;
    auto dot = key.find('.', p.size());
    std::string dev = key.substr(p.size(), dot == std::string::npos ? std::string::npos
                                                                    : dot - p.size());
    if (dev != "all" && dev != "default") return SysctlPhase::Device;
  }
  return SysctlPhase::Namespace;
}

namespace {

class Planner {
 public:
  explicit Planner(const Topology& t) : t_(t), roles_(t) {}

  Plan run() {
    namespaces();
    sysctls(SysctlPhase::Namespace);
    switch_sysctls();
    bridges();
    veths();
    ports();
    tunnels();
    sysctls(SysctlPhase::Device);
    links_up();
    addresses();
    routes();
    marks();
    ipvs();
    sysctls(SysctlPhase::Ipvs);
    ipvs_sync();
    agents();
    return std::move(plan_);
  }

 private:
  std::string ns(const std::string& member) const { return netns_name(t_.name, member); }

  void add(Step s, const std::string& owner, std::string why = {}) {
    plan_.steps.push_back({std::move(s), owner, std::move(why)});
  }

  void namespaces() {
    for (const auto& n : t_.nodes) add(step::CreateNetns{ns(n.name), t_.name, n.name}, n.name);
    for (const auto& sw : t_.switches)
      add(step::CreateNetns{ns(sw.name), t_.name, sw.name}, sw.name, why::switch_netns(sw));
  }

  // A switch only forwards frames: its bridge and ports need no IPv6 addresses of their
  // own. Without this every port gets a link-local address and runs DAD and router
  // solicitation when it comes up (measured: 0.25 ms per port-up in a 1000-port switch
  // against 0.09 ms). Bridging IPv6 frames between nodes is unaffected. conf.default is
  // enough: it reaches every interface created after it, and lo sends nothing on a wire.
  void switch_sysctls() {
    for (const auto& sw : t_.switches)
      add(step::SetSysctl{ns(sw.name), "net.ipv6.conf.default.disable_ipv6", "1"}, sw.name,
          "a switch is pure layer 2: no IPv6 addresses of its own on the bridge or its ports");
  }

  void sysctls(SysctlPhase phase) {
    for (const auto& n : t_.nodes) {
      if (phase == SysctlPhase::Namespace) {
        no_dad(n);
        no_ipv6(n);
      }
      for (const auto& s : n.sysctls)
        if (sysctl_phase(s.key) == phase)
          add(step::SetSysctl{ns(n.name), s.key, s.value}, n.name, why::sysctl(roles_, n, s));
    }
  }

  static bool has_ipv6(const Node& n) {
    auto any6 = [](const std::vector<IpPrefix>& v) {
      for (const auto& p : v)
        if (p.addr.v6()) return true;
      return false;
    };
    if (any6(n.lo_addresses) || any6(n.tunl0_addresses) || any6(n.ip6tnl0_addresses)) return true;
    for (const auto& i : n.interfaces)
      if (any6(i.addresses)) return true;
    // An IPv6 route may lean on link-local addresses alone (via fe80::1 dev eth0).
    for (const auto& r : n.routes)
      if (r.family == AF_INET6) return true;
    return false;
  }

  // Duplicate address detection holds every new IPv6 address (link-local ones too) for
  // about 2 s, so the first packets of a fresh lab would stall. validate already proves
  // the lab's addresses unique; the topology can still set accept_dad itself.
  void no_dad(const Node& n) {
    if (!has_ipv6(n)) return;
    for (const auto& s : n.sysctls)
      if (s.key.find(".accept_dad") != std::string::npos) return;
    for (const char* key : {"net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad"})
      add(step::SetSysctl{ns(n.name), key, "0"}, n.name,
          "no duplicate address detection: it would hold the node's IPv6 addresses for ~2 s, "
          "and validate already proved them unique");
  }

  // A node without IPv6 addresses gets no IPv6 on the interfaces the lab makes for it.
  // Otherwise each one sends DAD probes, MLD reports and router solicitations when it comes
  // up, which a switch floods to every other port: on a 1000-node star that noise alone
  // doubled `down` and muddied every capture. lo keeps ::1 (conf.default does not reach
  // it), and the topology can still set disable_ipv6 itself.
  void no_ipv6(const Node& n) {
    if (has_ipv6(n)) return;
    for (const auto& s : n.sysctls)
      if (s.key.find(".disable_ipv6") != std::string::npos) return;
    add(step::SetSysctl{ns(n.name), "net.ipv6.conf.default.disable_ipv6", "1"}, n.name,
        why::no_ipv6(n));
  }

  void bridges() {
    for (const auto& sw : t_.switches)
      add(step::CreateBridge{ns(sw.name), sw.name, sw.mtu}, sw.name, why::bridge(roles_, sw));
  }

  int switch_mtu(const std::string& name) const {
    const Switch* sw = t_.find_switch(name);
    return sw ? sw->mtu : 0;
  }

  static const Interface* find_interface(const Node& n, const std::string& name) {
    for (const auto& i : n.interfaces)
      if (i.name == name) return &i;
    return nullptr;
  }

  void veths() {
    // A node-to-node link appears on both nodes; it is one veth pair, made from the first.
    std::set<std::pair<std::string, std::string>> made;
    for (const auto& n : t_.nodes) {
      for (const auto& i : n.interfaces) {
        if (!i.sw.empty()) {
          int mtu = i.mtu > 0 ? i.mtu : switch_mtu(i.sw);
          add(step::CreateVeth{ns(n.name), i.name, ns(i.sw), i.port, mtu, i.mac, ""}, n.name,
              why::veth(n, i));
        } else if (!i.peer_node.empty() && !made.count({n.name, i.name})) {
          const Node* peer = t_.node(i.peer_node);
          const Interface* pi = peer ? find_interface(*peer, i.peer_ifname) : nullptr;
          made.insert({i.peer_node, i.peer_ifname});
          int mtu = i.mtu > 0 ? i.mtu : (pi ? pi->mtu : 0);
          add(step::CreateVeth{ns(n.name), i.name, ns(i.peer_node), i.peer_ifname, mtu, i.mac,
                               pi ? pi->mac : ""},
              n.name, why::veth(n, i));
        }
      }
    }
  }

  /// Calls f(node, interface) for each interface plugged into `sw`, in topology order.
  template <class F>
  void for_each_port(const Switch& sw, F f) const {
    for (const auto& n : t_.nodes)
      for (const auto& i : n.interfaces)
        if (i.sw == sw.name) f(n, i);
  }

  void ports() {
    for (const auto& sw : t_.switches)
      for_each_port(sw, [&](const Node&, const Interface& i) {
        add(step::SetMaster{ns(sw.name), i.port, sw.name}, sw.name);
      });
  }

  void tunnels() {
    for (const auto& n : t_.nodes) {
      if (n.accept_ipip) add(step::EnableIpip{ns(n.name)}, n.name, why::enable_ipip(roles_, n));
      if (n.accept_ip6ip6)
        add(step::EnableIpip{ns(n.name), AF_INET6}, n.name, why::enable_ip6tnl(roles_, n));
      for (const auto& tun : n.tunnels) add(step::CreateIpip{ns(n.name), tun}, n.name, why::ipip(tun));
    }
  }

  /// The MTU an interface's link gets (as veths() chooses it), 0 for the kernel's default.
  int link_mtu(const Interface& i) const {
    if (i.mtu > 0) return i.mtu;
    if (!i.sw.empty()) return switch_mtu(i.sw);
    const Node* peer = t_.node(i.peer_node);
    const Interface* pi = peer ? find_interface(*peer, i.peer_ifname) : nullptr;
    return pi ? pi->mtu : 0;
  }

  // Impairments go just before their namespace's link-ups, in the same batch: a qdisc set
  // on a link that is still down costs microseconds, on an up one a large fraction of a
  // millisecond (bench-impair).
  void links_up() {
    for (const auto& sw : t_.switches) {
      for_each_port(sw, [&](const Node& n, const Interface& i) {
        if (!i.port_impair.empty())
          add(step::SetImpairment{ns(sw.name), i.port, i.port_impair, link_mtu(i)}, sw.name,
              why::port_impair(n, i));
      });
      for_each_port(sw, [&](const Node&, const Interface& i) {
        add(step::LinkUp{ns(sw.name), i.port}, sw.name);
      });
      add(step::LinkUp{ns(sw.name), sw.name}, sw.name, why::bridge_up(sw));
    }
    for (const auto& n : t_.nodes) {
      auto up = [&](const std::string& dev) {
        add(step::LinkUp{ns(n.name), dev}, n.name, why::link_up(n, dev));
      };
      for (const auto& i : n.interfaces)
        if (!i.impair.empty())
          add(step::SetImpairment{ns(n.name), i.name, i.impair, link_mtu(i)}, n.name,
              why::impair(n, i));
      up("lo");
      for (const auto& i : n.interfaces) up(i.name);
      for (const auto& tun : n.tunnels) up(tun.name);
      if (n.accept_ipip) up("tunl0");
      if (n.accept_ip6ip6) up("ip6tnl0");
    }
  }

  void addresses() {
    for (const auto& n : t_.nodes) {
      auto addr = [&](const std::string& dev, const IpPrefix& a) {
        int scope = dev == "lo" && n.scope_host(a.addr) ? RT_SCOPE_HOST : RT_SCOPE_UNIVERSE;
        add(step::AddAddress{ns(n.name), dev, a, scope, tun6_vip(n, a.addr)}, n.name,
            why::address(roles_, n, dev, a));
      };
      for (const auto& i : n.interfaces)
        for (const auto& a : i.addresses) addr(i.name, a);
      for (const auto& a : n.lo_addresses) addr("lo", a);
      for (const auto& tun : n.tunnels)
        for (const auto& a : tun.addresses) addr(tun.name, a);
      for (const auto& a : n.tunl0_addresses) addr("tunl0", a);
      for (const auto& a : n.ip6tnl0_addresses) addr("ip6tnl0", a);
    }
  }

  // The IPv6 VIP of a director's service with tun real servers. IPVS encapsulates from the
  // source address the kernel picks for the real server, and with the VIP and the DIP on one
  // interface that may be the VIP; the real server holds the VIP too, and ip6_tunnel drops
  // packets whose outer source is one of its own addresses (ip6_tnl_rcv_ctl). Deprecated
  // (preferred_lft 0), the VIP is never picked as a source and still takes its traffic.
  static bool tun6_vip(const Node& n, const IpAddr& a) {
    if (!a.v6()) return false;
    for (const auto& s : n.services)
      if (!s.fwmark && s.vip == a)
        for (const auto& rs : s.real_servers)
          if (rs.method == FwdMethod::Tun) return true;
    return false;
  }

  void routes() {
    for (const auto& n : t_.nodes)
      for (const auto& r : n.routes)
        add(step::AddRoute{ns(n.name), r}, n.name, why::route(roles_, n, r));
  }

  // Marks before services: a fwmark service must never see a packet of the lab unmarked.
  // A node's nat rules go in the same table, one transaction with its marks.
  void marks() {
    for (const auto& n : t_.nodes)
      if (!n.marks.empty() || !n.nat.empty())
        add(step::ApplyNftRules{ns(n.name), nft_ruleset(n)}, n.name, why::nft_rules(n));
  }

  void ipvs() {
    for (const auto& n : t_.nodes)
      for (const auto& s : n.services) {
        // keepalived programs these itself, health checks and all (plan/keepalived.h).
        if (keepalived_managed(t_, s.name)) continue;
        add(step::AddIpvsService{ns(n.name), s}, n.name, why::service(s));
        for (const auto& d : s.real_servers)
          add(step::AddIpvsDest{ns(n.name), s, d}, n.name, why::dest(roles_, s, d));
      }
  }

  // A director's sync daemon(s) in its role; keepalived runs them itself where it decides
  // the role (its keepalived.conf's lvs_sync_daemon, plan/keepalived.cc).
  void ipvs_sync() {
    for (const auto& n : t_.nodes) {
      if (!n.ipvs_sync || sync_by_keepalived(n)) continue;
      const IpvsSync& s = *n.ipvs_sync;
      for (bool master : {true, false})
        if (s.role == "both" || s.role == (master ? "master" : "backup"))
          add(step::StartIpvsSync{ns(n.name), master, s.interface, s.id}, n.name, why::ipvs_sync(n, master));
    }
  }

  // Servers first, then keepalived, then load clients: each agent is awaited until ready,
  // so keepalived's first health checks find the real servers listening (a failed one
  // would take a server out of its table for a few check rounds), and a load client only
  // starts once every server it could send to listens.
  void agents() {
    auto phase = [](const Agent& a) {
      const AgentKindPlan* k = find_agent_kind_plan(a.kind);
      return k ? k->phase : 0;
    };
    for (int p : {0, 1, 2})
      for (const auto& n : t_.nodes)
        for (const auto& a : n.agents)
          if (phase(a) == p) {
            Agent run = a;
            if (const AgentKindPlan* k = find_agent_kind_plan(a.kind); k && k->prepare) k->prepare(t_, n, run);
            add(step::StartAgent{ns(n.name), t_.name, n.name, run}, n.name, why::agent(n, a));
          }
  }

  const Topology& t_;
  Roles roles_;
  Plan plan_{t_.name, {}};
};

}  // namespace

Plan make_plan(const Topology& t) { return Planner(t).run(); }

}  // namespace labctl
