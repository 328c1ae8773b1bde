#include "labctl/plan/explain.h"

#include <fmt/format.h>

#include <set>
#include <sstream>

#include "labctl/plan/network_number.h"
#include "labctl/plan/nft.h"
#include "labctl/plan/render.h"
#include "labctl/model/hosts.h"
#include "labctl/plan/part.h"
#include "labctl/plan/roles.h"

namespace labctl {
namespace {

constexpr std::size_t kWidth = 96;

std::string join_prefixes(const std::vector<IpPrefix>& v) {
  std::string out;
  for (const auto& p : v) out += (out.empty() ? "" : ", ") + p.str();
  return out.empty() ? "no address" : out;
}

void para(std::ostringstream& out, const std::string& indent, const std::string& text) {
  for (const auto& line : wrap_words(text, kWidth - indent.size())) out << indent << line << "\n";
}

std::string membership_text(const Membership& m) {
  std::string what = fmt::format("Real server ({}) of {} on {}: ", method_upper(m.dest->method),
                                 service_label(*m.service), m.director->name);
  switch (m.dest->method) {
    case FwdMethod::Dr:
      return what + "the director forwards it the client's packet unchanged except for the "
                    "destination MAC; it holds the VIP itself and replies straight to the client.";
    case FwdMethod::Nat:
      return what + "the director rewrites the destination to " + m.dest->addr.str() +
             " (DNAT); replies go back through the director, which puts the VIP back as source.";
    case FwdMethod::Tun:
      return what + "the director wraps the client's packet in an outer IP header to " +
             m.dest->addr.str() + "; it unwraps it on tunl0 and replies straight to the client.";    case FwdMethod::Local:
      return what + "the director serves the service itself: IPVS hands the client's packet to its "
                    "own stack unchanged, and it replies from the VIP.";
  }
  return what;
}

std::string dest_text(const Roles& r, const VirtualService& s, const RealServer& d) {
  const Node* o = r.owner(d.addr);
  uint16_t port = d.port != 0 ? d.port : s.port;
  std::string who = o ? o->name + " " : "";
  return fmt::format("{}{}:{} ({}, weight {})", who, d.addr.str(), port, method_upper(d.method),
                     d.weight);
}

void node_intro(std::ostringstream& out, const Roles& r, const Topology& t, const Node& n) {
  out << n.name << ": " << r.role_name(n) << "  [namespace " << netns_name(t.name, n.name)
      << "]\n";
  const auto keepalived = r.keepalived_role(n);
  if (r.is_director(n) && !keepalived)
    para(out, "  ",
         "It owns the VIP of each service below and hands every new client connection to one "
         "of the real servers with IPVS.");
  if (keepalived) {
    std::string services;
    for (const auto* s : keepalived->services)
      services += (services.empty() ? "" : ", ") + s->name + " (" + service_label(*s) + ")";
    para(out, "  ",
         keepalived->master
             ? "The MASTER director of a keepalived (VRRP) pair: its keepalived programs the IPVS "
               "service " + services + " here and adds the VIP while it is MASTER; when it fails, "
               "the BACKUP takes the VIP over. labctl adds neither the VIP nor the service."
             : "The BACKUP director of a keepalived (VRRP) pair: its keepalived programs the same "
               "IPVS service " + services + " here, and takes the VIP over (announcing it with "
               "gratuitous ARP) when the MASTER's adverts stop. It is no client: it holds the "
               "VIP only while the MASTER is down.");
  }
  for (const auto& m : r.memberships(n)) para(out, "  ", membership_text(m));
  if (r.is_router(n)) para(out, "  ", "It forwards packets between its networks.");
  if (r.is_proxy(n))
    para(out, "  ",
         "An L7 proxy: it takes each client's TCP handshake, reads the request, and connects to an app "
         "server of its own choosing (by the path), from its own address and port.");
  if (r.is_app(n))
    para(out, "  ",
         "An application server behind the proxies: only they connect to it, and the clients never see "
         "its address.");
  if (!r.directs(n) && !r.is_real_server(n) && !r.is_router(n) && !r.is_proxy(n) && !r.is_app(n))
    para(out, "  ",
         r.lab_has_services() ? "It talks to the services' VIPs like any host outside the cluster would."
                              : "A host: it sends from its own addresses and answers on them, through the "
                                "routes below.");
  for (const auto& i : n.interfaces) {
    std::string link = !i.sw.empty() ? "on switch " + i.sw
                                     : "cable to " + i.peer_node + " " + i.peer_ifname;
    out << fmt::format("    {:<7} {}  ({})\n", i.name, join_prefixes(i.addresses), link);
  }
  if (!n.lo_addresses.empty())
    out << fmt::format("    {:<7} {}\n", "lo", join_prefixes(n.lo_addresses));
  if (n.accept_ipip)
    out << fmt::format("    {:<7} {}  (receives IP-in-IP)\n", "tunl0",
                       join_prefixes(n.tunl0_addresses));
  if (n.accept_ip6ip6)
    out << fmt::format("    {:<7} {}  (receives IPv6-in-IPv6)\n", "ip6tnl0",
                       join_prefixes(n.ip6tnl0_addresses));
  for (const auto& tun : n.tunnels)
    out << fmt::format("    {:<7} {}  (ipip {} -> {})\n", tun.name, join_prefixes(tun.addresses),
                       tun.local.str(), tun.remote.str());
  // The course's next hop: what each route matches, and whom ARP asks.
  for (const auto& lesson : next_hop_lessons(t, n)) {
    const auto lines = wrap_words(lesson, kWidth - 8);
    for (size_t i = 0; i < lines.size(); ++i) out << (i ? "        " : "      - ") << lines[i] << "\n";
  }
  for (const auto& s : n.services) {
    out << fmt::format("    service {} {}, scheduler {}{}\n", to_string(s.proto), service_label(s),
                       s.scheduler, s.persistence ? fmt::format(", persistent {} s", s.persistence) : "");
    for (const auto& d : s.real_servers) out << "      -> " << dest_text(r, s, d) << "\n";
  }
  for (const auto& m : n.marks) out << "    mark    " << nft_rule(m) << "\n";
  for (const auto& rule : n.nat) out << "    nat     " << nft_nat_rule(rule) << "\n";
}

void switch_intro(std::ostringstream& out, const Topology& t, const Switch& sw) {
  out << "switch " << sw.name << "  [namespace " << netns_name(t.name, sw.name) << "]\n";
  std::string ports;
  for (const auto& n : t.nodes)
    for (const auto& i : n.interfaces)
      if (i.sw == sw.name)
        ports += (ports.empty() ? "" : ", ") + i.port + " (" + n.name + " " + i.name + ")";
  para(out, "  ", "A bridge joining " + (ports.empty() ? std::string("no ports yet") : ports) + ".");
}

// A switch stretched across hosts (docs/multihost.md): why, and the VXLAN device each host
// adds to its copy of the bridge (the steps of the hosts' parts, not of the whole plan).
void stretched_intro(std::ostringstream& out, const Topology& t, const Plan& p, const StretchedSegment& seg) {
  std::string hosts;
  for (const auto& h : seg.hosts) hosts += (hosts.empty() ? "" : ", ") + h;
  para(out, "  ",
       fmt::format("Its members run on hosts {}: each host has a copy of this bridge, and the copies are one "
                   "Ethernet segment through VXLAN {} (UDP {} between the hosts' underlay addresses). A frame "
                   "for a MAC on another host is wrapped in UDP to that host; a broadcast (ARP, VRRP) goes to "
                   "every other host, one copy each. The device is made from the host's own namespace, so its "
                   "socket stays there, and lives in this one beside the bridge:",
                   hosts, seg.vni, kVxlanPort));
  for (const auto& h : seg.hosts)
    for (const auto& ps : plan_part(t, p, h).steps)
      if (const auto* vx = std::get_if<step::CreateVxlan>(&ps.step); vx && vx->master == seg.sw->name)
        out << "       on " << h << ": " << vx->shell() << "\n";
}

void steps_of(std::ostringstream& out, const Plan& p, const std::string& member) {
  out << "\n";
  for (std::size_t k = 0; k < p.steps.size(); ++k) {
    const auto& s = p.steps[k];
    if (s.node != member) continue;
    std::string num = fmt::format("  {:>3}. ", k + 1);
    out << num << shell_command(s.step) << "\n";
    if (!s.why.empty()) para(out, std::string(num.size(), ' '), s.why);
  }
}

// The course's HTTP by hand: bash opens a TCP connection as fd 8 (/dev/tcp), the student
// writes the request line, and the real server's answer comes back on the same fd. Shown
// for the first TCP service on a VIP whose real servers run the http agent, sent from the
// node the lab's checks of it send from.
void by_hand(std::ostringstream& out, const Topology& t) {
  for (const auto& d : t.nodes)
    for (const auto& s : d.services) {
      if (s.fwmark || s.proto != Proto::Tcp || !s.vip.family || s.port == 0) continue;
      bool http = false;
      for (const auto& rs : s.real_servers)
        if (const Node* o = t.node(rs.node))
          for (const auto& a : o->agents)
            if (a.kind == "http" && a.port == (rs.port ? rs.port : s.port)) http = true;
      std::string client;
      for (const auto& c : t.checks)
        if (client.empty() && c.service == s.name && t.node(c.from)) client = c.from;
      if (!http || client.empty()) continue;
      out << "\nBy hand\n";
      para(out, "  ",
           "The course's /dev/tcp exercise: bash opens a TCP connection to the VIP as file "
           "descriptor 8 (the three-way handshake happens here; `ls -l /proc/$$/fd` shows fd 8 as "
           "a socket), you write the smallest HTTP request yourself, and the real server's answer, "
           "its name, comes back on fd 8:");
      out << fmt::format("  labctl exec {} {} -- bash -c 'exec 8<>/dev/tcp/{}/{}; ls -l /proc/$$/fd; "
                         "printf \"GET / HTTP/1.0\\r\\n\\r\\n\" >&8; cat <&8'\n",
                         t.name, client, s.vip.str(), s.port);
      return;
    }
}

}  // namespace

std::string render_explain(const Topology& t, const Plan& p) {
  Roles roles(t);
  std::ostringstream out;
  out << "Lab " << t.name;
  if (!t.description.empty()) out << ": " << t.description;
  out << "\n";
  para(out, "",
       fmt::format("{} steps in {} namespaces, numbered in the order `labctl up {}` runs them; "
                   "each shows the equivalent command. Source: {}.",
                   p.steps.size(), t.nodes.size() + t.switches.size(), t.name,
                   t.source.empty() ? "(unknown)" : t.source));
  std::set<std::string> shown;
  for (const auto& n : t.nodes) {
    out << "\n";
    node_intro(out, roles, t, n);
    steps_of(out, p, n.name);
    shown.insert(n.name);
  }
  const auto stretched = stretched_segments(t);
  for (const auto& sw : t.switches) {
    out << "\n";
    switch_intro(out, t, sw);
    for (const auto& seg : stretched)
      if (seg.sw == &sw) stretched_intro(out, t, p, seg);
    steps_of(out, p, sw.name);
    shown.insert(sw.name);
  }
  // Steps of anything else (a hand-made plan) are still shown rather than silently dropped.
  std::set<std::string> rest;
  for (const auto& s : p.steps)
    if (!shown.count(s.node)) rest.insert(s.node);
  for (const auto& member : rest) {
    out << "\n" << (member.empty() ? "(lab-wide)" : member) << "\n";
    steps_of(out, p, member);
  }
  by_hand(out, t);
  return out.str();
}

}  // namespace labctl
