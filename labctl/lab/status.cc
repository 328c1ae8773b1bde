#include "labctl/lab/status.h"

#include <linux/pkt_sched.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "labctl/base/file.h"
#include "labctl/kernel/netns.h"
#include "labctl/kernel/process.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/lab/state.h"

namespace labctl {
namespace {

std::string cmdline_of(pid_t pid) {
  std::string raw = read_text("/proc/" + std::to_string(pid) + "/cmdline");
  for (char& c : raw)
    if (c == '\0') c = ' ';
  while (!raw.empty() && raw.back() == ' ') raw.pop_back();
  return raw;
}

VirtualService identity_of(const IpvsService& s) {
  VirtualService v;
  v.proto = s.protocol == IPPROTO_UDP ? Proto::Udp : s.protocol == IPPROTO_SCTP ? Proto::Sctp : Proto::Tcp;
  v.vip = s.addr;
  if (v.vip.family == 0) v.vip.family = s.family;
  v.port = s.port;
  v.fwmark = s.fwmark;
  return v;
}

// Reads one namespace from inside it. IPVS is optional: most nodes have no services and
// the host kernel may have no IPVS at all.
NetnsStatus read_netns(const std::string& lab, const std::string& ns) {
  NetnsStatus out;
  out.ns = ns;
  out.member = ns.substr(lab.size() + 1);
  auto fd = open_netns(ns);
  if (!fd) {
    out.error = fd.error().str();
    return out;
  }
  Status st = run_in_netns(fd->get(), [&]() -> Status {
    TRY_ASSIGN(Rtnl rtnl, Rtnl::open(ns));
    TRY_ASSIGN(out.links, rtnl.links());
    TRY(rtnl.socket().dump(qdisc::dump_request(), [&](const nlmsghdr& nlh) -> Status {
      TRY_ASSIGN(QdiscInfo q, qdisc::parse(nlh));
      if (q.parent == TC_H_ROOT && q.impairment) out.impairments.push_back(std::move(q));
      return {};
    }));
    if (std::any_of(out.links.begin(), out.links.end(), [](const LinkInfo& l) { return l.vxlan.has_value(); })) {
      TRY_ASSIGN(auto fdb, rtnl.fdb());
      for (auto& e : fdb)
        if (e.dst && e.mac == "00:00:00:00:00:00") out.vxlan_remotes.push_back(std::move(e));
    }
    TRY_ASSIGN(out.addresses, rtnl.addresses());
    TRY_ASSIGN(out.routes, rtnl.routes(AF_INET));
    TRY_ASSIGN(auto v6, rtnl.routes(AF_INET6));
    out.routes.insert(out.routes.end(), v6.begin(), v6.end());
    if (auto ipvs = Ipvs::open(ns)) {
      TRY_ASSIGN(out.services, ipvs->services());
      for (const auto& s : out.services) {
        TRY_ASSIGN(auto d, ipvs->dests(identity_of(s)));
        out.dests.push_back(std::move(d));
      }
      TRY_ASSIGN(out.sync, ipvs->daemons());
    }
    return {};
  });
  if (!st) out.error = st.error().str();
  for (pid_t pid : pids_in_netns(netns_path(ns))) out.processes.push_back({pid, cmdline_of(pid)});
  return out;
}

bool live_state(const AgentState& a) {
  return a.state == "running" || a.state == "starting" || a.state == "restarting";
}

const char* method_name(const IpvsDest& d) {
  return d.method ? to_string(*d.method) : "other";
}

std::string service_label(const IpvsService& s) {
  if (s.fwmark) return "fwmark " + std::to_string(s.fwmark);
  std::string proto = s.protocol == IPPROTO_UDP ? "udp" : s.protocol == IPPROTO_SCTP ? "sctp" : "tcp";
  std::string addr = s.addr.v6() ? "[" + s.addr.str() + "]" : s.addr.str();
  return proto + " " + addr + ":" + std::to_string(s.port);
}

bool is_kernel_local_route(const RouteInfo& r) {
  // Prefix routes the kernel adds for each address say nothing the addresses don't.
  return r.protocol == 2 /* RTPROT_KERNEL */ || (r.family == AF_INET6 && r.dst &&
                                                 r.dst->addr.bytes[0] == 0xfe && r.dst->len == 64);
}

}  // namespace

Result<LabStatus> lab_status(const std::string& lab) {
  LabStatus s;
  s.lab = lab;
  auto with_state = labs_with_state();
  s.has_state = std::find(with_state.begin(), with_state.end(), lab) != with_state.end();
  for (const auto& ns : lab_namespaces(lab)) s.namespaces.push_back(read_netns(lab, ns));
  for (auto& a : read_agent_states(lab))
    for (auto& n : s.namespaces)
      if (n.member == a.node) {
        // A record says running, but only the kernel knows: is its supervisor still there?
        const bool present = std::any_of(n.processes.begin(), n.processes.end(),
                                         [&](const ProcessInfo& p) { return p.pid == a.supervisor; });
        if (live_state(a) && !present) a.state = "gone";
        n.agents.push_back(std::move(a));
        break;
      }
  if (s.namespaces.empty() && !s.has_state)
    return fail("lab " + lab + " is not up", "`labctl ls` lists running labs");
  return s;
}

std::vector<AgentState> read_agent_states(const std::string& lab) {
  std::vector<AgentState> out;
  std::error_code ec;
  // agents/NODE/AGENT.json
  for (const auto& node : std::filesystem::directory_iterator(state_dir(lab) + "/agents", ec)) {
    std::error_code ec2;
    if (!node.is_directory(ec2)) continue;
    for (const auto& e : std::filesystem::directory_iterator(node.path(), ec2)) {
      if (e.path().extension() != ".json") continue;
      if (auto a = parse_agent_state(read_text(e.path()))) out.push_back(std::move(*a));
    }
  }
  std::sort(out.begin(), out.end(), [](const AgentState& a, const AgentState& b) {
    return std::tie(a.node, a.agent) < std::tie(b.node, b.agent);
  });
  return out;
}

std::vector<std::string> failed_agents(const LabStatus& s) {
  std::vector<std::string> out;
  for (const auto& n : s.namespaces)
    for (const auto& a : n.agents)
      if (!agent_ok(a)) out.push_back(a.node + ":" + a.agent + " " + describe(a));
  return out;
}

std::optional<std::string> link_impairment(const NetnsStatus& n, const LinkInfo& l) {
  for (const auto& q : n.impairments)
    if (q.ifindex == l.index) return q.kind + " " + impairment_summary(*q.impairment);
  return std::nullopt;
}

namespace {
std::vector<std::string> remotes_of(const NetnsStatus& n, const LinkInfo& l) {
  std::vector<std::string> out;
  for (const auto& e : n.vxlan_remotes)
    if (e.index == l.index) out.push_back(e.dst->str());
  return out;
}
}  // namespace

std::optional<std::string> link_vxlan(const NetnsStatus& n, const LinkInfo& l) {
  if (!l.vxlan) return std::nullopt;
  std::string rs;
  for (const auto& r : remotes_of(n, l)) rs += (rs.empty() ? "" : ",") + r;
  return "vni " + std::to_string(l.vxlan->vni) +
         (l.vxlan->local ? " local " + l.vxlan->local->str() : std::string()) + " port " +
         std::to_string(l.vxlan->port) + " remotes " + (rs.empty() ? "none" : rs);
}

nlohmann::json status_json(const LabStatus& s) {
  using nlohmann::json;
  json nodes = json::array();
  for (const auto& n : s.namespaces) {
    json links = json::array(), addrs = json::array(), routes = json::array(),
         procs = json::array(), services = json::array();
    for (const auto& l : n.links) {
      links.push_back({{"name", l.name}, {"kind", l.kind}, {"up", l.up}, {"mtu", l.mtu},
                       {"mac", l.mac}, {"master", l.master}, {"index", l.index}});
      if (auto imp = link_impairment(n, l)) links.back()["impair"] = *imp;
      if (l.vxlan)
        links.back()["vxlan"] = {{"vni", l.vxlan->vni},
                                 {"local", l.vxlan->local ? json(l.vxlan->local->str()) : json(nullptr)},
                                 {"port", l.vxlan->port},
                                 {"remotes", remotes_of(n, l)}};
    }
    for (const auto& a : n.addresses) addrs.push_back({{"dev", a.dev}, {"address", a.prefix.str()}});
    for (const auto& r : n.routes)
      routes.push_back({{"to", r.dst ? r.dst->str() : "default"},
                        {"via", r.via ? r.via->str() : ""},
                        {"dev", r.dev},
                        {"family", r.family == AF_INET6 ? "inet6" : "inet"}});
    for (const auto& p : n.processes) procs.push_back({{"pid", p.pid}, {"cmdline", p.cmdline}});
    json agents = json::array();
    for (const auto& a : n.agents)
      agents.push_back({{"name", a.agent},
                        {"state", a.state},
                        {"status", describe(a)},
                        {"ok", agent_ok(a)},
                        {"pid", a.pid},
                        {"supervisor", a.supervisor},
                        {"restarts", a.restarts},
                        {"exit_code", a.code >= 0 && a.signal == 0 ? json(a.code) : json(nullptr)},
                        {"signal", a.signal ? json(signal_name(a.signal)) : json(nullptr)}});
    for (size_t i = 0; i < n.services.size(); ++i) {
      const auto& sv = n.services[i];
      json dests = json::array();
      for (const auto& d : n.dests[i])
        dests.push_back({{"address", d.addr.str()}, {"port", d.port}, {"method", method_name(d)},
                         {"weight", d.weight}, {"active_conns", d.active_conns},
                         {"inactive_conns", d.inact_conns}, {"conns", d.stats.conns},
                         {"inpkts", d.stats.inpkts}, {"outpkts", d.stats.outpkts}});
      services.push_back({{"service", service_label(sv)}, {"scheduler", sv.scheduler},
                          {"persistence", sv.timeout}, {"conns", sv.stats.conns},
                          {"inpkts", sv.stats.inpkts}, {"outpkts", sv.stats.outpkts},
                          {"real_servers", dests}});
    }
    json node = {{"name", n.member}, {"netns", n.ns},        {"links", links},
                 {"addresses", addrs}, {"routes", routes},   {"processes", procs},
                 {"ipvs", services},   {"agents", agents}};
    // The conns/inpkts/outpkts above lag: the kernel's estimator refreshes them every ~2 s.
    if (!n.services.empty()) node["ipvs_counters"] = "estimator, refreshed about every 2 s";
    if (!n.sync.empty()) {
      json sync = json::array();
      for (const auto& d : n.sync)
        sync.push_back({{"role", ipvs::role_name(d.role)}, {"interface", d.interface}, {"syncid", d.sync_id},
                        {"group", d.group.family ? json(d.group.str()) : json(nullptr)}, {"port", d.port}});
      node["ipvs_sync"] = sync;
    }
    if (!n.error.empty()) node["error"] = n.error;
    nodes.push_back(node);
  }
  return {{"lab", s.lab}, {"state", s.has_state}, {"nodes", nodes}};
}

std::string render_status(const LabStatus& s) {
  std::ostringstream o;
  o << "lab " << s.lab << ": " << s.namespaces.size() << " namespaces"
    << (s.has_state ? "" : " (no state in " + state_dir(s.lab) + ")") << "\n";
  for (const auto& n : s.namespaces) {
    o << "\n" << n.member << "  (netns " << n.ns << ")\n";
    if (!n.error.empty()) o << "  ! " << n.error << "\n";
    int width = 10;
    for (const auto& l : n.links) width = std::max(width, static_cast<int>(l.name.size()));
    for (const auto& l : n.links) {
      std::string addrs;
      for (const auto& a : n.addresses)
        if (a.dev == l.name) addrs += " " + a.prefix.str();
      std::string master;
      for (const auto& m : n.links)
        if (l.master && m.index == l.master) master = " master " + m.name;
      char line[160];
      std::snprintf(line, sizeof line, "  %-*s %-6s %-5s mtu %-5d", width, l.name.c_str(),
                    l.kind.empty() ? "-" : l.kind.c_str(), l.up ? "UP" : "DOWN", l.mtu);
      auto imp = link_impairment(n, l);
      auto vx = link_vxlan(n, l);
      o << line << master << addrs << (imp ? "  impair " + *imp : "") << (vx ? "  " + *vx : "")
        << "\n";
    }
    for (const auto& r : n.routes) {
      if (is_kernel_local_route(r)) continue;
      o << "  route " << (r.dst ? r.dst->str() : std::string("default"))
        << (r.via ? " via " + r.via->str() : "") << (r.dev.empty() ? "" : " dev " + r.dev) << "\n";
    }
    for (size_t i = 0; i < n.services.size(); ++i) {
      const auto& sv = n.services[i];
      o << "  ipvs " << service_label(sv) << " " << sv.scheduler
        << (sv.timeout ? " persistent " + std::to_string(sv.timeout) : "") << "  conns "
        << sv.stats.conns << " in " << sv.stats.inpkts << " out " << sv.stats.outpkts << "\n";
      for (const auto& d : n.dests[i])
        o << "    -> " << d.addr.str() << ":" << d.port << " " << method_name(d) << " weight "
          << d.weight << " active " << d.active_conns << " inactive " << d.inact_conns << "\n";
    }
    for (const auto& d : n.sync)
      o << "  ipvs sync " << ipvs::role_name(d.role) << " on " << d.interface << " syncid " << d.sync_id
        << (d.group.family ? " group " + d.group.str() + ":" + std::to_string(d.port) : "") << "\n";
    if (!n.services.empty())
      o << "  (ipvs counters are the kernel estimator's, refreshed about every 2 s; exact totals: "
           "labctl ipvs " << s.lab << " " << n.member << " --stats)\n";
    for (const auto& a : n.agents)
      o << "  agent " << a.agent << "  " << describe(a)
        << (a.pid > 0 ? "  pid " + std::to_string(a.pid) : std::string()) << "\n";
    for (const auto& p : n.processes) o << "  pid " << p.pid << "  " << p.cmdline << "\n";
  }
  return o.str();
}

}  // namespace labctl
