// Each step as the ip/ipvsadm/sysctl command an administrator would type, and its inverse.
#include "labctl/plan/plan.h"

#include "labctl/plan/agent.h"
#include "labctl/plan/nft.h"

#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <string>
#include <type_traits>
#include <vector>

#include "labctl/base/overloaded.h"
#include "labctl/base/shell_quote.h"

namespace labctl {
namespace {

std::string endpoint(const IpAddr& a, uint16_t port) {
  if (a.v6()) return "[" + a.str() + "]:" + std::to_string(port);
  return a.str() + ":" + std::to_string(port);
}

/// ipvsadm's service identity: "-t VIP:PORT", "-u VIP:PORT" or "-f MARK [-6]".
std::vector<std::string> service_id(const VirtualService& s) {
  if (s.fwmark != 0) {
    std::vector<std::string> w{"-f", std::to_string(s.fwmark)};
    if (s.vip.v6()) w.push_back("-6");
    return w;
  }
  const char* flag = s.proto == Proto::Udp ? "-u" : s.proto == Proto::Sctp ? "--sctp-service" : "-t";
  return {flag, endpoint(s.vip, s.port)};
}

/// ipvsadm -M: an IPv4 mask in dotted form (ipvsadm reads a bare number as the mask's
/// bytes: -M 24 becomes 0.0.0.24), an IPv6 prefix length as a number.
std::string netmask_arg(const VirtualService& s) {
  const int len = *s.netmask;
  if (s.vip.v6()) return std::to_string(len);
  IpAddr mask{AF_INET, {}};
  for (int i = 0; i < len; ++i) mask.bytes[i / 8] |= static_cast<uint8_t>(0x80 >> (i % 8));
  return mask.str();
}

std::string service_text(const VirtualService& s) {
  if (s.fwmark != 0) return "fwmark " + std::to_string(s.fwmark);
  return std::string(to_string(s.proto)) + " " + endpoint(s.vip, s.port);
}

uint16_t dest_port(const VirtualService& s, const RealServer& d) {
  return d.port != 0 ? d.port : s.port;
}

/// "-r RIP[:PORT]"; a fwmark or port-0 service has no port of its own, so a dest without
/// one has none. ipvsadm takes "[v6]" only with a port: a bare IPv6 address goes unbracketed.
std::vector<std::string> dest_id(const VirtualService& s, const RealServer& d) {
  uint16_t port = dest_port(s, d);
  if (port == 0) return {"-r", d.addr.str()};
  return {"-r", endpoint(d.addr, port)};
}

const char* method_flag(FwdMethod m) {
  switch (m) {
    case FwdMethod::Nat: return "-m";
    case FwdMethod::Dr: return "-g";
    case FwdMethod::Tun: return "-i";
    // ipvsadm cannot ask for the kernel's Local method; gatewaying to one of the
    // director's own addresses is delivered locally the same way (ipvsadm -Ln: Route).
    case FwdMethod::Local: return "-g";
  }
  return "-g";
}

int route_family(const Route& r) {
  if (r.family != 0) return r.family;
  if (r.to) return r.to->addr.family;
  if (r.via) return r.via->family;
  return AF_INET;
}

/// The route's selector words after "route add": "default|PREFIX [via GW] [dev DEV]".
std::vector<std::string> route_spec(const Route& r) {
  std::vector<std::string> w{r.to ? r.to->network().str() : "default"};
  if (r.via) {
    w.push_back("via");
    w.push_back(r.via->str());
  }
  if (!r.dev.empty()) {
    w.push_back("dev");
    w.push_back(r.dev);
  }
  return w;
}

std::string route_text(const Route& r) {
  std::string out;
  for (const auto& w : route_spec(r)) out += (out.empty() ? "" : " ") + w;
  return out;
}

/// "ip [-6] -n NS OBJECT ..." as words.
std::vector<std::string> ip_cmd(const std::string& ns, std::vector<std::string> rest,
                                bool v6 = false) {
  std::vector<std::string> w{"ip"};
  if (v6) w.push_back("-6");
  w.push_back("-n");
  w.push_back(ns);
  w.insert(w.end(), rest.begin(), rest.end());
  return w;
}

std::vector<std::string> in_netns(const std::string& ns, std::vector<std::string> rest) {
  std::vector<std::string> w{"ip", "netns", "exec", ns};
  w.insert(w.end(), rest.begin(), rest.end());
  return w;
}

}  // namespace

// The shell form keeps agent pids and logs apart from labctl's own state (state.h): the
// script has no journal, and labctl's state must stay labctl's alone.
std::string script_dir(const std::string& lab) { return "/run/labctl-script/" + lab; }

namespace {
constexpr std::string_view kMarkPrefix = "labctl:";
}  // namespace

std::string netns_mark(const std::string& lab) { return std::string(kMarkPrefix) + lab; }

std::optional<std::string> lab_of_mark(std::string_view mark) {
  if (!mark.starts_with(kMarkPrefix)) return std::nullopt;
  return std::string(mark.substr(kMarkPrefix.size()));
}

namespace {

// A folder per node, as in labctl's own state (lab/state.h): "NODE-AGENT" would give
// node a's agent b-c and node a-b's agent c one log and one pid file.
std::string node_dir(const step::StartAgent& a) { return script_dir(a.lab) + "/" + a.node; }
std::string agent_base(const step::StartAgent& a) { return node_dir(a) + "/" + a.agent.name; }

std::string script_log_path(const step::StartAgent& s) { return agent_base(s) + ".log"; }
std::string script_pid_path(const step::StartAgent& s) { return agent_base(s) + ".pid"; }

std::vector<std::string> add_address_words(const step::AddAddress& s) {
  std::vector<std::string> w{"addr", "add", s.addr.str(), "dev", s.dev};
  if (s.scope == RT_SCOPE_HOST) {
    w.push_back("scope");
    w.push_back("host");
  }
  // Duplicate address detection would hold a fresh v6 address back for a second or two.
  if (s.addr.addr.v6()) w.push_back("nodad");
  if (s.deprecated) {
    w.push_back("preferred_lft");
    w.push_back("0");
  }
  return w;
}

std::vector<std::string> veth_words(const step::CreateVeth& s) {
  std::vector<std::string> w{"link", "add", "name", s.name};
  auto link_opts = [&](const std::string& mac) {
    if (s.mtu > 0) {
      w.push_back("mtu");
      w.push_back(std::to_string(s.mtu));
    }
    if (!mac.empty()) {
      w.push_back("address");
      w.push_back(mac);
    }
    w.insert(w.end(), {"numtxqueues", "1", "numrxqueues", "1"});
  };
  link_opts(s.mac);
  w.insert(w.end(), {"type", "veth", "peer", "name", s.peer_name, "netns", s.peer_ns});
  link_opts(s.peer_mac);
  return w;
}

std::vector<std::string> ipip_words(const Tunnel& t) {
  std::vector<std::string> w{"link", "add", "name", t.name, "type",
                             "ipip",   "local",        t.local.str(),
                             "remote", t.remote.str(), "ttl",    std::to_string(t.ttl)};
  if (!t.dev.empty()) {
    w.push_back("dev");
    w.push_back(t.dev);
  }
  return w;
}

}  // namespace

bool is_rtnetlink_step(const Step& s) {
  return std::holds_alternative<step::CreateBridge>(s) ||
         std::holds_alternative<step::CreateVeth>(s) ||
         std::holds_alternative<step::SetMaster>(s) || std::holds_alternative<step::LinkUp>(s) ||
         std::holds_alternative<step::AddAddress>(s) ||
         std::holds_alternative<step::AddRoute>(s) ||
         std::holds_alternative<step::EnableIpip>(s) ||
         std::holds_alternative<step::CreateIpip>(s);
}

const std::string& step_netns(const Step& s) {
  return std::visit([](const auto& x) -> const std::string& { return x.ns; }, s);
}

std::vector<std::string> agent_argv(const step::StartAgent& s) {
  // The script runs labagent from PATH, unsupervised.
  Agent a = s.agent;
  if (agent_needs_dir(a)) a.params["dir"] = agent_base(s) + ".keepalived";
  return labctl::agent_argv(a, s.node, "labagent");
}

std::string shell_command(const Step& step) {
  return std::visit(
      Overloaded{
          // Marked as `up` marks it, so `labctl down` finds a script-built lab too.
          [](const step::CreateNetns& s) {
            return shell_join({"ip", "netns", "add", s.ns}) + "; " +
                   shell_join(ip_cmd(s.ns, {"link", "set", "dev", "lo", "alias",
                                            netns_mark(s.lab)}));
          },
          [](const step::CreateBridge& s) {
            std::vector<std::string> w{"link", "add", "name", s.name};
            if (s.mtu > 0) w.insert(w.end(), {"mtu", std::to_string(s.mtu)});
            w.insert(w.end(), {"type", "bridge", "mcast_snooping", "0"});
            return shell_join(ip_cmd(s.ns, w));
          },
          [](const step::CreateVeth& s) { return shell_join(ip_cmd(s.ns, veth_words(s))); },
          [](const step::SetMaster& s) {
            return shell_join(ip_cmd(s.ns, {"link", "set", "dev", s.dev, "master", s.master}));
          },
          [](const step::LinkUp& s) {
            return shell_join(ip_cmd(s.ns, {"link", "set", "dev", s.dev, "up"}));
          },
          [](const step::AddAddress& s) {
            return shell_join(ip_cmd(s.ns, add_address_words(s)));
          },
          [](const step::AddRoute& s) {
            std::vector<std::string> w{"route", "add"};
            auto spec = route_spec(s.route);
            w.insert(w.end(), spec.begin(), spec.end());
            return shell_join(ip_cmd(s.ns, w, route_family(s.route) == AF_INET6));
          },
          [](const step::SetSysctl& s) {
            return shell_join(in_netns(s.ns, {"sysctl", "-qw", s.key + "=" + s.value}));
          },
          [](const step::EnableIpip& s) {
            // The module's per-namespace init creates tunl0 (ip6tnl0) in every namespace; the
            // check fails loudly when the host set net.core.fb_tunnels_only_for_init_net.
            const bool v6 = s.family == AF_INET6;
            return std::string(v6 ? "modprobe ip6_tunnel && " : "modprobe ipip && ") +
                   shell_join(ip_cmd(s.ns, {"link", "show", "dev", v6 ? "ip6tnl0" : "tunl0"})) +
                   " >/dev/null";
          },
          [](const step::CreateIpip& s) { return shell_join(ip_cmd(s.ns, ipip_words(s.tunnel))); },
          [](const step::AddIpvsService& s) {
            std::vector<std::string> w{"ipvsadm", "-A"};
            auto id = service_id(s.service);
            w.insert(w.end(), id.begin(), id.end());
            w.insert(w.end(), {"-s", s.service.scheduler});
            if (s.service.persistence > 0)
              w.insert(w.end(), {"-p", std::to_string(s.service.persistence)});
            if (s.service.netmask) w.insert(w.end(), {"-M", netmask_arg(s.service)});
            if (!s.service.sched_flags.empty()) {
              std::string flags;
              for (const auto& f : s.service.sched_flags) flags += (flags.empty() ? "" : ",") + f;
              w.insert(w.end(), {"-b", flags});
            }
            if (s.service.one_packet) w.push_back("-o");
            return shell_join(in_netns(s.ns, w));
          },
          [](const step::AddIpvsDest& s) {
            std::vector<std::string> w{"ipvsadm", "-a"};
            auto id = service_id(s.service);
            auto rid = dest_id(s.service, s.dest);
            w.insert(w.end(), id.begin(), id.end());
            w.insert(w.end(), rid.begin(), rid.end());
            w.push_back(method_flag(s.dest.method));
            w.insert(w.end(), {"-w", std::to_string(s.dest.weight)});
            if (s.dest.u_thresh > 0) w.insert(w.end(), {"-x", std::to_string(s.dest.u_thresh)});
            if (s.dest.l_thresh > 0) w.insert(w.end(), {"-y", std::to_string(s.dest.l_thresh)});
            return shell_join(in_netns(s.ns, w));
          },
          [](const step::StartAgent& s) {
            // `ip netns exec` execs the program, so $! is the agent's own pid.
            return "(umask 077 && mkdir -p " + shell_quote(node_dir(s)) + ") && { " +
                   shell_join(in_netns(s.ns, agent_argv(s))) + " </dev/null >" +
                   shell_quote(script_log_path(s)) + " 2>&1 & echo $! >" +
                   shell_quote(script_pid_path(s)) + "; }";
          },
          // The ruleset as nft reads it, in one transaction: what `up` hands libnftables.
          [](const step::ApplyNftRules& s) {
            return shell_join(in_netns(s.ns, {"nft", "-f", "-"})) + " <<'EOF'\n" + s.ruleset + "EOF";
          },
      },
      step);
}

std::string undo_command(const Step& step) {
  return std::visit(
      Overloaded{
          [](const step::CreateNetns& s) { return shell_join({"ip", "netns", "del", s.ns}); },
          [](const step::CreateBridge& s) {
            return shell_join(ip_cmd(s.ns, {"link", "del", "dev", s.name}));
          },
          // Deleting one end of a veth pair deletes the other, wherever it lives.
          [](const step::CreateVeth& s) {
            return shell_join(ip_cmd(s.ns, {"link", "del", "dev", s.name}));
          },
          [](const step::SetMaster& s) {
            return shell_join(ip_cmd(s.ns, {"link", "set", "dev", s.dev, "nomaster"}));
          },
          [](const step::LinkUp& s) {
            return shell_join(ip_cmd(s.ns, {"link", "set", "dev", s.dev, "down"}));
          },
          [](const step::AddAddress& s) {
            return shell_join(ip_cmd(s.ns, {"addr", "del", s.addr.str(), "dev", s.dev}));
          },
          [](const step::AddRoute& s) {
            std::vector<std::string> w{"route", "del"};
            auto spec = route_spec(s.route);
            w.insert(w.end(), spec.begin(), spec.end());
            return shell_join(ip_cmd(s.ns, w, route_family(s.route) == AF_INET6));
          },
          // The old value is not known to a plan; the namespace takes the setting with it.
          [](const step::SetSysctl&) { return std::string(); },
          // tunl0 cannot be deleted, and unloading ipip would hit every other namespace.
          [](const step::EnableIpip&) { return std::string(); },
          [](const step::CreateIpip& s) {
            return shell_join(ip_cmd(s.ns, {"link", "del", "dev", s.tunnel.name}));
          },
          [](const step::AddIpvsService& s) {
            std::vector<std::string> w{"ipvsadm", "-D"};
            auto id = service_id(s.service);
            w.insert(w.end(), id.begin(), id.end());
            return shell_join(in_netns(s.ns, w));
          },
          [](const step::AddIpvsDest& s) {
            std::vector<std::string> w{"ipvsadm", "-d"};
            auto id = service_id(s.service);
            auto rid = dest_id(s.service, s.dest);
            w.insert(w.end(), id.begin(), id.end());
            w.insert(w.end(), rid.begin(), rid.end());
            return shell_join(in_netns(s.ns, w));
          },
          [](const step::StartAgent& s) {
            std::string pid = shell_quote(script_pid_path(s));
            return "kill \"$(cat " + pid + ")\" && rm -f " + pid;
          },
          [](const step::ApplyNftRules& s) {
            return shell_join(in_netns(s.ns, {"nft", "delete", "table", "inet", kNftTable}));
          },
      },
      step);
}

std::string describe(const Step& step) {
  return std::visit(
      Overloaded{
          [](const step::CreateNetns& s) { return "create namespace " + s.ns; },
          [](const step::CreateBridge& s) { return "create bridge " + s.name + " in " + s.ns; },
          [](const step::CreateVeth& s) {
            return "create veth " + s.name + " in " + s.ns + " (peer " + s.peer_name + " in " +
                   s.peer_ns + ")";
          },
          [](const step::SetMaster& s) {
            return "attach " + s.dev + " to bridge " + s.master + " in " + s.ns;
          },
          [](const step::LinkUp& s) { return "bring up " + s.dev + " in " + s.ns; },
          [](const step::AddAddress& s) {
            return "add address " + s.addr.str() + " to " + s.dev + " in " + s.ns;
          },
          [](const step::AddRoute& s) {
            return "add route " + route_text(s.route) + " in " + s.ns;
          },
          [](const step::SetSysctl& s) {
            return "set " + s.key + "=" + s.value + " in " + s.ns;
          },
          [](const step::EnableIpip& s) {
            return std::string(s.family == AF_INET6 ? "enable ip6_tunnel (ip6tnl0) in "
                                                    : "enable ipip (tunl0) in ") +
                   s.ns;
          },
          [](const step::CreateIpip& s) {
            return "create ipip tunnel " + s.tunnel.name + " in " + s.ns;
          },
          [](const step::AddIpvsService& s) {
            return "add IPVS service " + service_text(s.service) + " in " + s.ns;
          },
          [](const step::AddIpvsDest& s) {
            return "add real server " + s.dest.addr.str() + " (" + to_string(s.dest.method) +
                   ") to " + service_text(s.service) + " in " + s.ns;
          },
          [](const step::StartAgent& s) {
            return "start agent " + s.agent.name + " (" + s.agent.kind + ") in " + s.ns;
          },
          [](const step::ApplyNftRules& s) {
            return std::string("load packet rules (nft table inet ") + kNftTable + ") in " + s.ns;
          },
      },
      step);
}

std::string step_type(const Step& step) {
  static constexpr const char* kNames[] = {
      "create-netns", "create-bridge", "create-veth",      "set-master", "link-up",
      "add-address",  "add-route",     "set-sysctl",       "enable-ipip", "create-ipip",
      "add-ipvs-service", "add-ipvs-dest", "start-agent", "apply-nft"};
  static_assert(std::size(kNames) == std::variant_size_v<Step>);
  return kNames[step.index()];
}

}  // namespace labctl
