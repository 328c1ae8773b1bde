#include "labctl/lab/ipvs_edit.h"

#include <linux/ip_vs.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "labctl/base/file.h"
#include "labctl/kernel/ipvs_modules.h"
#include "labctl/kernel/netns.h"
#include "labctl/lab/ipvs_table.h"
#include "labctl/lab/state.h"

namespace labctl {
namespace {

struct KindName {
  IpvsEditKind kind;
  const char* name;
};
constexpr KindName kKinds[] = {
    {IpvsEditKind::SetWeight, "set-weight"},         {IpvsEditKind::Drain, "drain"},
    {IpvsEditKind::AddServer, "add-server"},         {IpvsEditKind::RemoveServer, "remove-server"},
    {IpvsEditKind::SetScheduler, "set-scheduler"},   {IpvsEditKind::SetPersistence, "set-persistence"},
    {IpvsEditKind::SetTimeouts, "set-timeouts"},
};

}  // namespace

std::vector<std::string> ipvs_edit_words() {
  std::vector<std::string> out;
  for (const auto& k : kKinds) out.emplace_back(k.name);
  return out;
}

namespace {

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s.empty() ? "none" : s;
}

uint16_t port_of(const VirtualService& s, const RealServer& r) { return r.port ? r.port : s.port; }

std::string addr_port(const IpAddr& a, uint16_t port) {
  return (a.v6() ? "[" + a.str() + "]" : a.str()) + ":" + std::to_string(port);
}

std::string server_label(const VirtualService& s, const RealServer& r) {
  const std::string ap = addr_port(r.addr, port_of(s, r));
  return r.node.empty() ? ap : r.node + " (" + ap + ")";
}

Result<ServiceRef> find_named_service(const Topology& t, const std::string& name) {
  if (ServiceRef found = t.service(name)) return found;
  std::vector<std::string> all;
  for (const auto& n : t.nodes)
    for (const auto& s : n.services) all.push_back(s.name + " (on " + n.name + ")");
  return fail("lab " + t.name + " has no service " + name, "its services: " + joined(all));
}

// "10.0.0.1", "10.0.0.1:8080", "fd00::1", "[fd00::1]:8080".
std::optional<std::pair<IpAddr, uint16_t>> parse_addr_port(const std::string& text) {
  if (auto a = IpAddr::parse(text)) return std::make_pair(*a, uint16_t{0});
  std::string host, port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find("]:");
    if (close == std::string::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  auto a = IpAddr::parse(host);
  if (!a || (a->v4() && text.front() == '[') || port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  const unsigned long p = std::stoul(port);
  if (p == 0 || p > 65535) return std::nullopt;
  return std::make_pair(*a, static_cast<uint16_t>(p));
}

Result<RealServer> find_server(const Topology& t, const VirtualService& s,
                               const std::string& spec) {
  std::vector<std::string> all;
  for (const auto& r : s.real_servers) all.push_back(server_label(s, r));
  std::vector<const RealServer*> hits;
  if (t.node(spec)) {
    for (const auto& r : s.real_servers)
      if (r.node == spec) hits.push_back(&r);
  } else if (auto ap = parse_addr_port(spec)) {
    for (const auto& r : s.real_servers)
      if (r.addr == ap->first && (ap->second == 0 || port_of(s, r) == ap->second)) hits.push_back(&r);
  } else {
    return fail("'" + spec + "' is neither a node of lab " + t.name + " nor ADDRESS[:PORT]",
                "real servers of " + s.name + ": " + joined(all));
  }
  if (hits.empty())
    return fail(spec + " is not a real server of " + s.name,
                "real servers of " + s.name + ": " + joined(all));
  if (hits.size() > 1)
    return fail(spec + " is more than one real server of " + s.name,
                "name one as ADDRESS:PORT: " + joined(all));
  return *hits.front();
}

// The address a node would serve `s` from: the node's one address of the VIP's family, or
// the one on a subnet the director is on.
Result<IpAddr> address_of_node(const Topology& t, const Node& director, const VirtualService& s,
                               const Node& n) {
  std::vector<IpPrefix> mine;
  for (const auto& i : n.interfaces)
    for (const auto& p : i.addresses)
      if (p.addr.family == s.vip.family && !(p.addr == s.vip)) mine.push_back(p);
  if (mine.size() == 1) return mine.front().addr;
  std::vector<IpAddr> near;
  for (const auto& p : mine)
    for (const auto& di : director.interfaces)
      for (const auto& dp : di.addresses)
        if (dp.len < dp.addr.max_prefix() && dp.network().contains(p.addr)) near.push_back(p.addr);
  if (near.size() == 1) return near.front();
  std::vector<std::string> listed;
  for (const auto& p : mine) listed.push_back(p.addr.str());
  if (mine.empty())
    return fail("node " + n.name + " has no " + (s.vip.v6() ? "IPv6" : "IPv4") +
                    " address on an interface to serve " + s.name + " from",
                "give the real server as ADDRESS[:PORT]");
  return fail("node " + n.name + " has several addresses " + s.name + " could use: " +
                  joined(listed),
              "name one: labctl ipvs " + t.name + " add-server " + s.name + " ADDRESS[:PORT]");
}

Result<ResolvedIpvsEdit> resolve_add(const Topology& t, ResolvedIpvsEdit r, const Node& director) {
  const VirtualService& s = r.service;
  const IpvsEdit& e = r.edit;
  RealServer add;
  if (const Node* named = t.node(e.server)) {
    TRY_ASSIGN(add.addr, address_of_node(t, director, s, *named));
    add.node = named->name;
  } else if (auto ap = parse_addr_port(e.server)) {
    add.addr = ap->first;
    add.port = ap->second == s.port ? 0 : ap->second;
    add.node = node_holding(t, add.addr);
  } else {
    std::vector<std::string> nodes;
    for (const auto& n : t.nodes) nodes.push_back(n.name);
    return fail("'" + e.server + "' is neither a node of lab " + t.name + " nor ADDRESS[:PORT]",
                "its nodes: " + joined(nodes));
  }
  for (const auto& have : s.real_servers)
    if (have.addr == add.addr && port_of(s, have) == port_of(s, add))
      return fail(server_label(s, have) + " is a real server of " + s.name + " already",
                  "change its weight instead: labctl ipvs " + t.name + " set-weight " + s.name +
                      " " + e.server + " W");
  if (e.method) add.method = *e.method;
  else if (!s.real_servers.empty()) add.method = s.real_servers.front().method;
  else
    return fail(s.name + " has no real servers to take the forward method from",
                "give one: --method nat|dr|tun");
  if (e.weight < 0) return fail("weight must be >= 0 (0 adds it drained)");
  add.weight = e.weight;
  if (add.addr.family != s.vip.family && add.method != FwdMethod::Tun)
    return fail("an " + std::string(s.vip.v6() ? "IPv6" : "IPv4") +
                    " service can reach a real server of the other family only in TUN mode",
                "use --method tun, or an address of the VIP's family");
  const Node* n = add.node.empty() ? nullptr : t.node(add.node);
  if (!n) {
    r.notes.push_back("no node of lab " + t.name + " has " + add.addr.str() +
                      ": the director will forward requests to it and nothing will answer them");
  } else {
    bool vip_on_lo = false, vip_on_tunl0 = false, serves = false;
    for (const auto& p : n->lo_addresses) vip_on_lo = vip_on_lo || p.addr == s.vip;
    for (const auto& p : n->tunl0_addresses) vip_on_tunl0 = vip_on_tunl0 || p.addr == s.vip;
    for (const auto& a : n->agents) serves = serves || a.port == port_of(s, add);
    if (add.method == FwdMethod::Dr && !vip_on_lo)
      r.notes.push_back(n->name + " does not hold the VIP " + s.vip.str() +
                        " on lo: in DR mode it will drop the requests it gets");
    for (const auto& p : n->ip6tnl0_addresses) vip_on_tunl0 = vip_on_tunl0 || p.addr == s.vip;
    const bool decap = s.vip.v6() ? n->accept_ip6ip6 : n->accept_ipip;
    if (add.method == FwdMethod::Tun && (!decap || !(vip_on_lo || vip_on_tunl0)))
      r.notes.push_back(n->name + " is not set up as a TUN real server (ipip and the VIP): "
                        "it will drop the tunnelled requests");
    if (!serves)
      r.notes.push_back(n->name + " runs no agent on port " + std::to_string(port_of(s, add)) +
                        ": requests it gets will be refused");
  }
  r.server = add;
  return r;
}

std::string service_label(const IpvsService& s) {
  if (s.fwmark) return "fwmark " + std::to_string(s.fwmark);
  return addr_port(s.addr, s.port);
}

// The edit on the kernel, in the director's namespace; returns the line saying what changed.
Result<std::string> edit_kernel(Ipvs& ipvs, const std::string& lab, const ResolvedIpvsEdit& r) {
  const IpvsEdit& e = r.edit;
  if (e.kind == IpvsEditKind::SetTimeouts) {
    TRY_ASSIGN(IpvsTimeouts before, ipvs.timeouts());
    TRY(ipvs.set_timeouts(e.timeouts));
    TRY_ASSIGN(IpvsTimeouts now, ipvs.timeouts());
    return "timeouts on " + r.director + " (tcp tcpfin udp): " + std::to_string(before.tcp) + " " +
           std::to_string(before.tcp_fin) + " " + std::to_string(before.udp) + " -> " +
           std::to_string(now.tcp) + " " + std::to_string(now.tcp_fin) + " " +
           std::to_string(now.udp);
  }
  const VirtualService& s = r.service;
  TRY_ASSIGN(auto services, ipvs.services());
  const IpvsService* live = nullptr;
  for (const auto& l : services)
    if (same_service(l, s)) live = &l;
  if (!live)
    return fail("service " + s.name + " (" + ipvs::service_name(s) +
                    ") is not in the director's IPVS table",
                "was it deleted by hand? `labctl up --replace " + lab + "` rebuilds the lab");
  IpvsService svc = *live;
  const std::string what = s.name + " (" + service_label(svc) + ")";
  switch (e.kind) {
    case IpvsEditKind::SetScheduler: {
      const std::string before = svc.scheduler;
      svc.scheduler = e.scheduler;
      TRY(ipvs.set_service(svc));
      return what + ": scheduler " + before + " -> " + e.scheduler;
    }
    case IpvsEditKind::SetPersistence: {
      const bool was = svc.flags & IP_VS_SVC_F_PERSISTENT;
      const uint32_t before = svc.timeout;
      if (e.persistence) svc.flags |= IP_VS_SVC_F_PERSISTENT;
      else svc.flags &= ~static_cast<uint32_t>(IP_VS_SVC_F_PERSISTENT);
      svc.timeout = e.persistence;
      TRY(ipvs.set_service(svc));
      auto text = [](bool on, uint32_t t) {
        return on ? std::to_string(t) + " s" : std::string("off");
      };
      return what + ": persistence " + text(was, before) + " -> " + text(e.persistence > 0, e.persistence);
    }
    case IpvsEditKind::AddServer: {
      IpvsDest d;
      d.addr = r.server.addr;
      d.port = port_of(s, r.server);
      d.fwd_method = ipvs::fwd_flags(r.server.method);
      d.weight = r.server.weight;
      TRY(ipvs.add_dest(svc, d));
      return what + ": added " + server_label(s, r.server) + " " + forward_name(d.fwd_method) +
             " weight " + std::to_string(d.weight);
    }
    default:
      break;
  }
  TRY_ASSIGN(auto dests, ipvs.dests(svc));
  const uint16_t port = port_of(s, r.server);
  const IpvsDest* found = nullptr;
  for (const auto& d : dests)
    if (d.addr == r.server.addr && d.port == port) found = &d;
  if (!found)
    return fail(server_label(s, r.server) + " is not a real server of " + s.name +
                    " in the director's IPVS table",
                "see `labctl ipvs " + lab + "`");
  IpvsDest d = *found;
  if (e.kind == IpvsEditKind::RemoveServer) {
    TRY(ipvs.del_dest(svc, d));
    return what + ": removed " + server_label(s, r.server);
  }
  const int before = d.weight;
  d.weight = e.kind == IpvsEditKind::Drain ? 0 : e.weight;
  TRY(ipvs.set_dest(svc, d));
  return what + ": " + server_label(s, r.server) + " weight " + std::to_string(before) + " -> " +
         std::to_string(d.weight);
}

Status record_edit(const std::string& lab, const IpvsEdit& e) {
  TRY_ASSIGN(auto edits, recorded_ipvs_edits(lab));
  edits.push_back(e);
  nlohmann::json all = nlohmann::json::array();
  for (const auto& x : edits) all.push_back(ipvs_edit_json(x));
  return write_file_atomically(ipvs_edits_path(lab), all.dump(2) + "\n");
}

}  // namespace

const char* to_string(IpvsEditKind k) {
  for (const auto& x : kKinds)
    if (x.kind == k) return x.name;
  return "?";
}

std::optional<IpvsEditKind> parse_ipvs_edit_kind(const std::string& word) {
  for (const auto& x : kKinds)
    if (word == x.name) return x.kind;
  return std::nullopt;
}

Result<ResolvedIpvsEdit> resolve_ipvs_edit(const Topology& t, const IpvsEdit& e) {
  ResolvedIpvsEdit r;
  r.edit = e;
  if (e.kind == IpvsEditKind::SetTimeouts) {
    TRY_ASSIGN(r.director, pick_director(t, e.node));
    if (!e.timeouts.tcp && !e.timeouts.tcp_fin && !e.timeouts.udp)
      return fail("set-timeouts: every timeout is 0, which changes nothing",
                  "give TCP TCPFIN UDP in seconds (0 leaves that one as it is)");
    return r;
  }
  TRY_ASSIGN(ServiceRef at, find_named_service(t, e.service));
  r.director = at.director->name;
  r.service = *at.service;
  const VirtualService& s = r.service;
  switch (e.kind) {
    case IpvsEditKind::SetWeight:
      if (e.weight < 0) return fail("weight must be >= 0 (0 drains the server)");
      [[fallthrough]];
    case IpvsEditKind::Drain: {
      TRY_ASSIGN(r.server, find_server(t, s, e.server));
      if (e.kind == IpvsEditKind::Drain)
        r.notes.push_back(server_label(s, r.server) +
                          " gets no new connections now; the ones it has go on until they end");
      return r;
    }
    case IpvsEditKind::RemoveServer: {
      TRY_ASSIGN(r.server, find_server(t, s, e.server));
      if (s.real_servers.size() == 1)
        r.notes.push_back(s.name + " has no real servers now: requests to it fail until you "
                                   "add one (labctl ipvs " + t.name + " add-server " + s.name +
                          " NODE)");
      return r;
    }
    case IpvsEditKind::AddServer:
      return resolve_add(t, std::move(r), *at.director);
    case IpvsEditKind::SetScheduler:
      if (e.scheduler.empty()) return fail("set-scheduler: no scheduler named");
      if (e.scheduler.size() >= IP_VS_SCHEDNAME_MAXLEN ||
          e.scheduler.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") != std::string::npos)
        return fail("'" + e.scheduler + "' cannot be an IPVS scheduler name",
                    "schedulers this kernel can load: " + joined(ipvs::loadable_schedulers()));
      return r;
    case IpvsEditKind::SetPersistence:
      if (e.persistence == 0 && s.persistence == 0)
        r.notes.push_back(s.name + " was not persistent");
      return r;
    case IpvsEditKind::SetTimeouts:
      break;
  }
  return r;
}

void edit_topology(Topology& t, const ResolvedIpvsEdit& r) {
  if (r.edit.kind == IpvsEditKind::SetTimeouts) return;  // not part of the topology
  for (auto& n : t.nodes) {
    if (n.name != r.director) continue;
    for (auto& s : n.services) {
      if (s.name != r.service.name) continue;
      auto same = [&](const RealServer& x) {
        return x.addr == r.server.addr && port_of(s, x) == port_of(s, r.server);
      };
      switch (r.edit.kind) {
        case IpvsEditKind::SetWeight:
        case IpvsEditKind::Drain:
          for (auto& x : s.real_servers)
            if (same(x)) x.weight = r.edit.kind == IpvsEditKind::Drain ? 0 : r.edit.weight;
          break;
        case IpvsEditKind::AddServer:
          s.real_servers.push_back(r.server);
          break;
        case IpvsEditKind::RemoveServer:
          std::erase_if(s.real_servers, same);
          break;
        case IpvsEditKind::SetScheduler:
          s.scheduler = r.edit.scheduler;
          break;
        case IpvsEditKind::SetPersistence:
          s.persistence = r.edit.persistence;
          break;
        case IpvsEditKind::SetTimeouts:
          break;
      }
    }
  }
}

Result<std::string> apply_ipvs_edit(const std::string& lab, const ResolvedIpvsEdit& r) {
  TRY_ASSIGN(LabLock lock, LabLock::acquire(lab));
  const std::string ns = netns_name(lab, r.director);
  TRY_ASSIGN(Fd fd, open_netns(ns));
  std::string done;
  TRY(run_in_netns(fd.get(), [&]() -> Status {
    TRY_ASSIGN(Ipvs ipvs, Ipvs::open(ns));
    TRY_ASSIGN(done, edit_kernel(ipvs, lab, r));
    return {};
  }));
  if (Status st = record_edit(lab, r.edit); !st)
    return fail("the kernel took the edit (" + done + ") but recording it failed: " +
                    st.error().str(),
                "`labctl check " + lab + "` may judge by the topology as it was before");
  return done;
}

nlohmann::json ipvs_edit_json(const IpvsEdit& e) {
  nlohmann::json j = {{"edit", to_string(e.kind)}};
  switch (e.kind) {
    case IpvsEditKind::SetWeight:
    case IpvsEditKind::AddServer:
      j["weight"] = e.weight;
      [[fallthrough]];
    case IpvsEditKind::Drain:
    case IpvsEditKind::RemoveServer:
      j["service"] = e.service;
      j["server"] = e.server;
      if (e.method) j["method"] = to_string(*e.method);
      break;
    case IpvsEditKind::SetScheduler:
      j["service"] = e.service;
      j["scheduler"] = e.scheduler;
      break;
    case IpvsEditKind::SetPersistence:
      j["service"] = e.service;
      j["persistence"] = e.persistence;
      break;
    case IpvsEditKind::SetTimeouts:
      j["node"] = e.node;
      j["timeouts"] = {{"tcp", e.timeouts.tcp}, {"tcpfin", e.timeouts.tcp_fin},
                       {"udp", e.timeouts.udp}};
      break;
  }
  return j;
}

Result<IpvsEdit> ipvs_edit_from_json(const nlohmann::json& j) {
  try {
    IpvsEdit e;
    auto kind = parse_ipvs_edit_kind(j.at("edit").get<std::string>());
    if (!kind) return fail("unknown edit " + j.at("edit").dump());
    e.kind = *kind;
    e.service = j.value("service", "");
    e.server = j.value("server", "");
    e.weight = j.value("weight", 1);
    e.scheduler = j.value("scheduler", "");
    e.persistence = j.value("persistence", 0u);
    e.node = j.value("node", "");
    if (j.contains("method")) {
      const auto m = j.at("method").get<std::string>();
      for (FwdMethod x : {FwdMethod::Nat, FwdMethod::Dr, FwdMethod::Tun})
        if (m == to_string(x)) e.method = x;
    }
    if (j.contains("timeouts")) {
      const auto& t = j.at("timeouts");
      e.timeouts = {t.value("tcp", 0u), t.value("tcpfin", 0u), t.value("udp", 0u)};
    }
    return e;
  } catch (const nlohmann::json::exception& ex) {
    return fail(std::string("malformed IPVS edit record: ") + ex.what());
  }
}

std::string ipvs_edits_path(const std::string& lab) { return state_dir(lab) + "/ipvs-edits.json"; }

Result<std::vector<IpvsEdit>> recorded_ipvs_edits(const std::string& lab) {
  TRY(check_lab_name(lab));
  std::vector<IpvsEdit> out;
  std::ifstream in(ipvs_edits_path(lab));
  if (!in) return out;
  nlohmann::json all = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!all.is_array())
    return fail(ipvs_edits_path(lab) + " is not a JSON array of edits",
                "remove it (the kernel's table stays as it is; `labctl ipvs " + lab + "` shows it)");
  for (const auto& j : all) {
    TRY_ASSIGN(IpvsEdit e, ipvs_edit_from_json(j));
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<std::string> apply_recorded_ipvs_edits(Topology& t) {
  std::vector<std::string> skipped;
  auto edits = recorded_ipvs_edits(t.name);
  if (!edits) return {edits.error().str()};
  for (const auto& e : *edits) {
    auto r = resolve_ipvs_edit(t, e);
    if (!r) {
      skipped.push_back(std::string(to_string(e.kind)) + " " + e.service + " " + e.server + ": " +
                        r.error().message);
      continue;
    }
    edit_topology(t, *r);
  }
  return skipped;
}

}  // namespace labctl
