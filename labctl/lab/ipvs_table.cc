#include "labctl/lab/ipvs_table.h"

#include <arpa/inet.h>
#include <linux/ip_vs.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <tuple>

#include "labctl/kernel/netns.h"

namespace labctl {
namespace {

std::string addr_port(const IpAddr& a, uint16_t port) {
  return (a.v6() ? "[" + a.str() + "]" : a.str()) + ":" + std::to_string(port);
}

// The service column as ipvsadm prints it: "TCP  10.0.0.1:80" or "FWM  7".
std::string service_column(const IpvsService& s) {
  if (s.fwmark) return "FWM  " + std::to_string(s.fwmark) + (s.family == AF_INET6 ? " IPv6" : "");
  return protocol_name(s.protocol) + "  " + addr_port(s.addr, s.port);
}

std::string netmask_text(const IpvsService& s) {
  if (s.family == AF_INET6) return std::to_string(s.netmask);
  in_addr m{};
  m.s_addr = s.netmask;
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &m, buf, sizeof buf);
  return buf;
}

bool full_netmask(const IpvsService& s) {
  return s.family == AF_INET6 ? s.netmask == 128 : s.netmask == 0xffffffff;
}

std::string counter_note(const IpvsTable& t) {
  std::string n =
      "counters: per service and server from the kernel's estimator (refreshed about every "
      "2 s; the kernel keeps no exact per-service copy)";
  if (t.totals)
    n += "; exact totals of the namespace (per-cpu): conns " + std::to_string(t.totals->exact.conns) +
         ", in " + std::to_string(t.totals->exact.inpkts) + " pkts / " +
         std::to_string(t.totals->exact.inbytes) + " bytes, out " +
         std::to_string(t.totals->exact.outpkts) + " pkts / " +
         std::to_string(t.totals->exact.outbytes) + " bytes";
  return n;
}

nlohmann::json stats_json(const IpvsStats& s) {
  return {{"conns", s.conns},     {"inpkts", s.inpkts},   {"outpkts", s.outpkts},
          {"inbytes", s.inbytes}, {"outbytes", s.outbytes}};
}

nlohmann::json rates_json(const IpvsStats& s) {
  return {{"cps", s.cps},     {"inpps", s.inpps}, {"outpps", s.outpps},
          {"inbps", s.inbps}, {"outbps", s.outbps}};
}

nlohmann::json flag_list(const IpvsService& s) {
  nlohmann::json f = nlohmann::json::array();
  if (s.flags & IP_VS_SVC_F_PERSISTENT) f.push_back("persistent");
  if (s.flags & IP_VS_SVC_F_ONEPACKET) f.push_back("ops");
  const std::string sched = sched_flag_names(s.scheduler, s.flags);
  std::istringstream in(sched);
  std::string one;
  while (std::getline(in, one, ','))
    if (!one.empty()) f.push_back(one);
  return f;
}

}  // namespace

std::string protocol_name(int protocol) {
  switch (protocol) {
    case IPPROTO_TCP:
      return "TCP";
    case IPPROTO_UDP:
      return "UDP";
    case IPPROTO_SCTP:
      return "SCTP";
    default:
      return "proto " + std::to_string(protocol);
  }
}

const char* forward_name(uint32_t fwd_method) {
  switch (fwd_method & IP_VS_CONN_F_FWD_MASK) {
    case IP_VS_CONN_F_MASQ:
      return "Masq";
    case IP_VS_CONN_F_LOCALNODE:
      return "Local";
    case IP_VS_CONN_F_TUNNEL:
      return "Tunnel";
    case IP_VS_CONN_F_DROUTE:
      return "Route";
    case IP_VS_CONN_F_BYPASS:
      return "Bypass";
    default:
      return "?";
  }
}

std::string sched_flag_names(const std::string& scheduler, uint32_t flags) {
  // Only sh and mh give their flags names; ipvsadm calls the others flag-1..3.
  const bool named = scheduler == "sh" || scheduler == "mh";
  const std::pair<uint32_t, std::string> all[] = {
      {IP_VS_SVC_F_SCHED1, named ? scheduler + "-fallback" : "flag-1"},
      {IP_VS_SVC_F_SCHED2, named ? scheduler + "-port" : "flag-2"},
      {IP_VS_SVC_F_SCHED3, "flag-3"}};
  std::string out;
  for (const auto& [bit, name] : all)
    if (flags & bit) out += (out.empty() ? "" : ",") + name;
  return out;
}

std::vector<std::string> director_nodes(const Topology& t) {
  std::vector<std::string> out;
  for (const auto& n : t.nodes)
    if (!n.services.empty()) out.push_back(n.name);
  return out;
}

Result<std::string> pick_director(const Topology& t, const std::string& node) {
  const auto directors = director_nodes(t);
  auto listed = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s.empty() ? std::string("none") : s;
  };
  if (!node.empty()) {
    if (!t.node(node)) {
      std::vector<std::string> all;
      for (const auto& n : t.nodes) all.push_back(n.name);
      return fail("lab " + t.name + " has no node " + node,
                  "its nodes: " + listed(all) + "; its directors: " + listed(directors));
    }
    return node;
  }
  if (directors.empty())
    return fail("lab " + t.name + " has no director (no node has IPVS services)",
                "name a node: labctl ipvs " + t.name + " NODE");
  if (directors.size() > 1)
    return fail("lab " + t.name + " has " + std::to_string(directors.size()) +
                    " directors: " + listed(directors),
                "name one: labctl ipvs " + t.name + " " + directors.front());
  return directors.front();
}

std::string node_holding(const Topology& t, const IpAddr& a) {
  const Node* n = t.owner_of(a);
  return n ? n->name : "";
}

void name_ipvs_table(const Topology& t, IpvsTable& table) {
  const Node* director = t.node(table.node);
  for (auto& s : table.services) {
    if (director)
      for (const auto& v : director->services)
        if (same_service(s.service, v)) s.name = v.name;
    for (auto& d : s.dests) d.node = node_holding(t, d.dest.addr);
  }
}

bool same_service(const IpvsService& live, const VirtualService& v) {
  if (v.fwmark) return live.fwmark == v.fwmark && live.family == v.vip.family;
  return live.fwmark == 0 && live.addr == v.vip && live.port == v.port &&
         live.protocol == ip_protocol(v.proto);
}

Result<IpvsTable> read_ipvs_table(const Topology& t, const std::string& node, bool conns) {
  IpvsTable table;
  table.lab = t.name;
  table.node = node;
  table.ns = netns_name(t.name, node);
  table.with_conns = conns;
  TRY_ASSIGN(Fd fd, open_netns(table.ns));
  TRY(run_in_netns(fd.get(), [&]() -> Status {
    TRY_ASSIGN(Ipvs ipvs, Ipvs::open(table.ns));
    TRY_ASSIGN(table.info, ipvs.info());
    TRY_ASSIGN(table.timeouts, ipvs.timeouts());
    TRY_ASSIGN(auto services, ipvs.services());
    for (auto& s : services) {
      IpvsTableService ts;
      ts.service = std::move(s);
      TRY_ASSIGN(auto dests, ipvs.dests(ts.service));
      for (auto& d : dests) ts.dests.push_back({std::move(d), ""});
      table.services.push_back(std::move(ts));
    }
    // ipvsadm's order (its default --sort): services by protocol, address and port (fwmark
    // services after), real servers by address and port; the kernel's is newest first.
    std::sort(table.services.begin(), table.services.end(),
              [](const IpvsTableService& a, const IpvsTableService& b) {
                const auto& x = a.service;
                const auto& y = b.service;
                return std::tie(x.fwmark, x.protocol, x.family, x.addr, x.port) <
                       std::tie(y.fwmark, y.protocol, y.family, y.addr, y.port);
              });
    for (auto& ts : table.services)
      std::sort(ts.dests.begin(), ts.dests.end(), [](const IpvsTableDest& a, const IpvsTableDest& b) {
        return std::tie(a.dest.addr, a.dest.port) < std::tie(b.dest.addr, b.dest.port);
      });
    if (auto totals = ipvs::read_totals()) table.totals = *totals;
    if (conns) {
      TRY_ASSIGN(table.conns, ipvs::read_conn_table());
    }
    return {};
  }));
  name_ipvs_table(t, table);
  return table;
}

std::string render_ipvs(const IpvsTable& t, IpvsView v) {
  std::ostringstream o;
  char line[256];
  if (v == IpvsView::Timeouts) {
    o << "Timeout (tcp tcpfin udp): " << t.timeouts.tcp << " " << t.timeouts.tcp_fin << " "
      << t.timeouts.udp << "\n";
    return o.str();
  }
  if (v == IpvsView::Connections) {
    o << "IPVS connection entries  (" << t.node << ", netns " << t.ns << ")\n";
    o << "pro expire state       source             virtual            destination\n";
    for (const auto& c : t.conns) {
      std::snprintf(line, sizeof line, "%-3s %02u:%02u  %-11s %-18s %-18s %s", c.protocol.c_str(),
                    c.expires / 60, c.expires % 60, c.state.c_str(),
                    addr_port(c.client, c.client_port).c_str(), addr_port(c.vip, c.vport).c_str(),
                    addr_port(c.dest, c.dport).c_str());
      o << line;
      const std::string who = [&] {
        for (const auto& s : t.services)
          for (const auto& d : s.dests)
            if (d.dest.addr == c.dest && !d.node.empty()) return d.node;
        return std::string();
      }();
      if (!who.empty()) o << "  " << who;
      o << "\n";
    }
    if (t.conns.empty()) o << "(no connections)\n";
    return o.str();
  }
  o << "IP Virtual Server version " << t.info.version_str() << " (size=" << t.info.conn_tab_size
    << ")  on " << t.node << " (netns " << t.ns << ")\n";
  if (v == IpvsView::List) {
    o << "Prot LocalAddress:Port Scheduler Flags\n"
      << "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn  Node\n";
  } else if (v == IpvsView::Stats) {
    o << "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n"
      << "  -> RemoteAddress:Port\n";
  } else {
    o << "Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n"
      << "  -> RemoteAddress:Port\n";
  }
  auto numbers = [&](const std::string& first, const IpvsStats& s) {
    if (v == IpvsView::Stats)
      std::snprintf(line, sizeof line, "%-33s %8llu %8llu %8llu %8llu %8llu", first.c_str(),
                    (unsigned long long)s.conns, (unsigned long long)s.inpkts,
                    (unsigned long long)s.outpkts, (unsigned long long)s.inbytes,
                    (unsigned long long)s.outbytes);
    else
      std::snprintf(line, sizeof line, "%-33s %8llu %8llu %8llu %8llu %8llu", first.c_str(),
                    (unsigned long long)s.cps, (unsigned long long)s.inpps,
                    (unsigned long long)s.outpps, (unsigned long long)s.inbps,
                    (unsigned long long)s.outbps);
    return std::string(line);
  };
  for (const auto& ts : t.services) {
    const auto& s = ts.service;
    const std::string name = ts.name.empty() ? "" : "  (" + ts.name + ")";
    if (v == IpvsView::List) {
      std::string head = service_column(s) + " " + s.scheduler;
      if (const auto f = sched_flag_names(s.scheduler, s.flags); !f.empty()) head += " (" + f + ")";
      if (s.flags & IP_VS_SVC_F_PERSISTENT) {
        head += " persistent " + std::to_string(s.timeout);
        if (!full_netmask(s)) head += " mask " + netmask_text(s);
        if (!s.pe_name.empty()) head += " pe " + s.pe_name;
      }
      if (s.flags & IP_VS_SVC_F_ONEPACKET) head += " ops";
      o << head << name << "\n";
      for (const auto& d : ts.dests) {
        std::snprintf(line, sizeof line, "  -> %-28s %-7s %-6d %-10u %-10u",
                      addr_port(d.dest.addr, d.dest.port).c_str(), forward_name(d.dest.fwd_method),
                      d.dest.weight, d.dest.active_conns, d.dest.inact_conns);
        o << line << " " << (d.node.empty() ? "-" : d.node) << "\n";
      }
    } else {
      o << numbers(service_column(s), s.stats) << name << "\n";
      for (const auto& d : ts.dests)
        o << numbers("  -> " + addr_port(d.dest.addr, d.dest.port), d.dest.stats)
          << (d.node.empty() ? "" : "  " + d.node) << "\n";
    }
    if (ts.dests.empty())
      o << "  (no real servers: requests to this service fail)\n";
  }
  if (t.services.empty()) o << "(no virtual services)\n";
  if (v == IpvsView::List) {
    // The course's 4-way close as the director sees it in DR and TUN: half of it.
    bool bypassed_closes = false;
    for (const auto& ts : t.services)
      for (const auto& d : ts.dests)
        bypassed_closes |= d.dest.inact_conns > 0 && (d.dest.fwd_method == IP_VS_CONN_F_DROUTE ||
                                                      d.dest.fwd_method == IP_VS_CONN_F_TUNNEL);
    if (bypassed_closes)
      o << "InActConn of Route (DR) and Tunnel (TUN) servers: connections the client has closed. The\n"
           "director sees only the client's half of the close (its FIN), never the real server's,\n"
           "whose replies bypass it, so each entry waits out its FIN_WAIT timeout (--timeouts:\n"
           "tcpfin, 2 min by default) before it goes; --connections lists them.\n";
  }
  if (v != IpvsView::List) o << counter_note(t) << "\n";
  return o.str();
}

nlohmann::json ipvs_json(const IpvsTable& t) {
  using nlohmann::json;
  json services = json::array();
  for (const auto& ts : t.services) {
    const auto& s = ts.service;
    json dests = json::array();
    for (const auto& d : ts.dests)
      dests.push_back({{"node", d.node.empty() ? json(nullptr) : json(d.node)},
                       {"address", d.dest.addr.str()},
                       {"port", d.dest.port},
                       {"forward", forward_name(d.dest.fwd_method)},
                       {"method", d.dest.method ? json(to_string(*d.dest.method)) : json(nullptr)},
                       {"weight", d.dest.weight},
                       {"active_conns", d.dest.active_conns},
                       {"inactive_conns", d.dest.inact_conns},
                       {"persist_conns", d.dest.persist_conns},
                       {"u_thresh", d.dest.u_thresh},
                       {"l_thresh", d.dest.l_thresh},
                       {"tun_type", d.dest.tun_type},
                       {"tun_port", d.dest.tun_port},
                       {"tun_flags", d.dest.tun_flags},
                       {"stats", stats_json(d.dest.stats)},
                       {"rates", rates_json(d.dest.stats)}});
    services.push_back(
        {{"name", ts.name.empty() ? json(nullptr) : json(ts.name)},
         {"family", s.family == AF_INET6 ? "inet6" : "inet"},
         {"protocol", s.fwmark ? json(nullptr) : json(protocol_name(s.protocol))},
         {"address", s.fwmark ? json(nullptr) : json(s.addr.str())},
         {"port", s.port},
         {"fwmark", s.fwmark},
         {"scheduler", s.scheduler},
         {"flags", flag_list(s)},
         {"flags_raw", s.flags & ~static_cast<uint32_t>(IP_VS_SVC_F_HASHED)},
         {"persistent", (s.flags & IP_VS_SVC_F_PERSISTENT) != 0},
         {"timeout", s.timeout},
         {"netmask", netmask_text(s)},
         {"pe", s.pe_name},
         {"stats", stats_json(s.stats)},
         {"rates", rates_json(s.stats)},
         {"real_servers", dests}});
  }
  json out = {{"lab", t.lab},
              {"node", t.node},
              {"netns", t.ns},
              {"version", t.info.version_str()},
              {"conn_table_size", t.info.conn_tab_size},
              {"timeouts", {{"tcp", t.timeouts.tcp}, {"tcpfin", t.timeouts.tcp_fin},
                            {"udp", t.timeouts.udp}}},
              {"counters",
               {{"services_and_servers", "estimator"},
                {"refresh_seconds", 2},
                {"totals", t.totals ? "exact per-cpu" : "unavailable"}}},
              {"services", services}};
  if (t.totals)
    out["totals"] = {{"cpus", t.totals->cpus},
                     {"exact", stats_json(t.totals->exact)},
                     {"rates", rates_json(t.totals->rates)}};
  if (t.with_conns) {
    json conns = json::array();
    for (const auto& c : t.conns)
      conns.push_back({{"protocol", c.protocol},
                       {"client", c.client.str()},
                       {"client_port", c.client_port},
                       {"vip", c.vip.str()},
                       {"vport", c.vport},
                       {"dest", c.dest.str()},
                       {"dport", c.dport},
                       {"state", c.state},
                       {"expires", c.expires},
                       {"pe", c.pe_name},
                       {"pe_data", c.pe_data}});
    out["connections"] = conns;
  }
  return out;
}

Result<IpvsTable> ipvs_table_from_json(const nlohmann::json& j) {
  auto stats_of = [](const nlohmann::json& st, const nlohmann::json& r) {
    IpvsStats x;
    x.conns = st.at("conns").get<uint64_t>();
    x.inpkts = st.at("inpkts").get<uint64_t>();
    x.outpkts = st.at("outpkts").get<uint64_t>();
    x.inbytes = st.at("inbytes").get<uint64_t>();
    x.outbytes = st.at("outbytes").get<uint64_t>();
    x.cps = r.at("cps").get<uint64_t>();
    x.inpps = r.at("inpps").get<uint64_t>();
    x.outpps = r.at("outpps").get<uint64_t>();
    x.inbps = r.at("inbps").get<uint64_t>();
    x.outbps = r.at("outbps").get<uint64_t>();
    return x;
  };
  auto address = [](const nlohmann::json& v) -> Result<IpAddr> {
    auto a = IpAddr::parse(v.get<std::string>());
    if (!a) return fail("not an address: " + v.get<std::string>());
    return *a;
  };
  IpvsTable t;
  try {
    t.lab = j.at("lab").get<std::string>();
    t.node = j.at("node").get<std::string>();
    t.ns = j.at("netns").get<std::string>();
    t.info.conn_tab_size = j.at("conn_table_size").get<uint32_t>();
    unsigned major = 0, minor = 0, patch = 0;
    if (std::sscanf(j.at("version").get<std::string>().c_str(), "%u.%u.%u", &major, &minor, &patch) == 3)
      t.info.version = major << 16 | minor << 8 | patch;
    t.timeouts.tcp = j.at("timeouts").at("tcp").get<uint32_t>();
    t.timeouts.tcp_fin = j.at("timeouts").at("tcpfin").get<uint32_t>();
    t.timeouts.udp = j.at("timeouts").at("udp").get<uint32_t>();
    for (const auto& js : j.at("services")) {
      IpvsTableService ts;
      IpvsService& s = ts.service;
      ts.name = js.at("name").is_null() ? "" : js.at("name").get<std::string>();
      s.family = js.at("family").get<std::string>() == "inet6" ? AF_INET6 : AF_INET;
      s.fwmark = js.at("fwmark").get<uint32_t>();
      if (!s.fwmark) {
        const std::string p = js.at("protocol").get<std::string>();
        s.protocol = p == "TCP" ? IPPROTO_TCP : p == "UDP" ? IPPROTO_UDP : p == "SCTP" ? IPPROTO_SCTP : 0;
        if (!s.protocol) return fail("service protocol " + p + " is not TCP, UDP or SCTP");
        TRY_ASSIGN(s.addr, address(js.at("address")));
      }
      s.port = js.at("port").get<uint16_t>();
      s.scheduler = js.at("scheduler").get<std::string>();
      s.pe_name = js.at("pe").get<std::string>();
      s.flags = js.at("flags_raw").get<uint32_t>();
      s.timeout = js.at("timeout").get<uint32_t>();
      const std::string mask = js.at("netmask").get<std::string>();
      if (s.family == AF_INET6) {
        s.netmask = static_cast<uint32_t>(std::stoul(mask));
      } else {
        in_addr m{};
        if (::inet_pton(AF_INET, mask.c_str(), &m) != 1) return fail("service netmask " + mask + " is not IPv4");
        s.netmask = m.s_addr;
      }
      s.stats = stats_of(js.at("stats"), js.at("rates"));
      for (const auto& jd : js.at("real_servers")) {
        IpvsTableDest td;
        IpvsDest& d = td.dest;
        td.node = jd.at("node").is_null() ? "" : jd.at("node").get<std::string>();
        TRY_ASSIGN(d.addr, address(jd.at("address")));
        d.port = jd.at("port").get<uint16_t>();
        const std::string fwd = jd.at("forward").get<std::string>();
        bool known = false;
        for (uint32_t m : {IP_VS_CONN_F_MASQ, IP_VS_CONN_F_LOCALNODE, IP_VS_CONN_F_TUNNEL, IP_VS_CONN_F_DROUTE,
                           IP_VS_CONN_F_BYPASS})
          if (fwd == forward_name(m)) d.fwd_method = m, known = true;
        if (!known) return fail("real server forward method " + fwd + " is not one ipvsadm names");
        for (FwdMethod m : {FwdMethod::Nat, FwdMethod::Dr, FwdMethod::Tun, FwdMethod::Local})
          if (ipvs::fwd_flags(m) == d.fwd_method) d.method = m;
        d.weight = jd.at("weight").get<int>();
        d.active_conns = jd.at("active_conns").get<uint32_t>();
        d.inact_conns = jd.at("inactive_conns").get<uint32_t>();
        d.persist_conns = jd.at("persist_conns").get<uint32_t>();
        d.u_thresh = jd.at("u_thresh").get<uint32_t>();
        d.l_thresh = jd.at("l_thresh").get<uint32_t>();
        d.tun_type = jd.at("tun_type").get<int>();
        d.tun_port = jd.at("tun_port").get<uint16_t>();
        d.tun_flags = jd.at("tun_flags").get<uint16_t>();
        d.stats = stats_of(jd.at("stats"), jd.at("rates"));
        ts.dests.push_back(std::move(td));
      }
      t.services.push_back(std::move(ts));
    }
    if (j.contains("totals")) {
      IpvsTotals tot;
      tot.cpus = j.at("totals").at("cpus").get<size_t>();
      tot.exact = stats_of(j.at("totals").at("exact"), nlohmann::json{{"cps", 0}, {"inpps", 0}, {"outpps", 0},
                                                                       {"inbps", 0}, {"outbps", 0}});
      t.totals = tot;
    }
  } catch (const nlohmann::json::exception& e) {
    return fail(std::string("an IPVS table in JSON is not as labctl writes it: ") + e.what());
  }
  return t;
}

}  // namespace labctl
