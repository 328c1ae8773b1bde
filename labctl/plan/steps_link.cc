// The steps that make a lab's namespaces and its links, addresses, routes and tunnels: each
// as the ip command an administrator would type, its inverse, a description and its fields.
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <chrono>
#include <type_traits>
#include <variant>

#include <nlohmann/json.hpp>

#include "labctl/base/shell_quote.h"
#include "labctl/model/impair.h"
#include "labctl/plan/plan.h"
#include "labctl/plan/step_shell.h"

namespace labctl::step {
namespace {

using nlohmann::json;
using step_shell::ip_cmd;

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

}  // namespace

// CreateNetns. Marked as `up` marks it, so `labctl down` finds a script-built lab too.
std::string CreateNetns::shell() const {
  return shell_join({"ip", "netns", "add", ns}) + "; " +
         shell_join(ip_cmd(ns, {"link", "set", "dev", "lo", "alias", netns_mark(lab)}));
}
std::string CreateNetns::undo() const { return shell_join({"ip", "netns", "del", ns}); }
std::string CreateNetns::describe() const { return "create namespace " + ns; }
json CreateNetns::fields() const { return {{"lab", lab}, {"member", member}}; }

// CreateBridge.
std::string CreateBridge::shell() const {
  std::vector<std::string> w{"link", "add", "name", name};
  if (mtu > 0) w.insert(w.end(), {"mtu", std::to_string(mtu)});
  w.insert(w.end(), {"type", "bridge", "mcast_snooping", "0"});
  return shell_join(ip_cmd(ns, w));
}
std::string CreateBridge::undo() const {
  return shell_join(ip_cmd(ns, {"link", "del", "dev", name}));
}
std::string CreateBridge::describe() const { return "create bridge " + name + " in " + ns; }
json CreateBridge::fields() const { return {{"name", name}, {"mtu", mtu}}; }

// CreateVeth.
std::string CreateVeth::shell() const {
  std::vector<std::string> w{"link", "add", "name", name};
  auto link_opts = [&](const std::string& address) {
    if (mtu > 0) {
      w.push_back("mtu");
      w.push_back(std::to_string(mtu));
    }
    if (!address.empty()) {
      w.push_back("address");
      w.push_back(address);
    }
    w.insert(w.end(), {"numtxqueues", "1", "numrxqueues", "1"});
  };
  link_opts(mac);
  w.insert(w.end(), {"type", "veth", "peer", "name", peer_name, "netns", peer_ns});
  link_opts(peer_mac);
  return shell_join(ip_cmd(ns, w));
}
// Deleting one end of a veth pair deletes the other, wherever it lives.
std::string CreateVeth::undo() const {
  return shell_join(ip_cmd(ns, {"link", "del", "dev", name}));
}
std::string CreateVeth::describe() const {
  return "create veth " + name + " in " + ns + " (peer " + peer_name + " in " + peer_ns + ")";
}
json CreateVeth::fields() const {
  return {{"name", name}, {"peer_ns", peer_ns}, {"peer_name", peer_name},
          {"mtu", mtu},   {"mac", mac},         {"peer_mac", peer_mac}};
}

// SetMaster.
std::string SetMaster::shell() const {
  return shell_join(ip_cmd(ns, {"link", "set", "dev", dev, "master", master}));
}
std::string SetMaster::undo() const {
  return shell_join(ip_cmd(ns, {"link", "set", "dev", dev, "nomaster"}));
}
std::string SetMaster::describe() const {
  return "attach " + dev + " to bridge " + master + " in " + ns;
}
json SetMaster::fields() const { return {{"dev", dev}, {"master", master}}; }

// SetImpairment.
std::string SetImpairment::shell() const { return tc_command(ns, dev, impair, mtu); }
std::string SetImpairment::undo() const { return tc_clear_command(ns, dev); }
std::string SetImpairment::describe() const {
  return "impair " + dev + " in " + ns + " (" + impairment_summary(impair) + ")";
}
json SetImpairment::fields() const {
  // Each key as the topology spells it, in tc's units ("20ms", "1%", "10mbit").
  json keys = json::object();
  for (const auto& k : impair_keys()) {
    std::visit(
        [&](auto member) {
          const auto& v = impair.*member;
          if (!v) return;
          using T = std::decay_t<decltype(*v)>;
          if constexpr (std::is_same_v<T, uint64_t>)
            keys[std::string(k.name)] = format_rate(*v);
          else if constexpr (std::is_same_v<T, std::chrono::nanoseconds>)
            keys[std::string(k.name)] = format_time(*v);
          else if constexpr (std::is_same_v<T, Probability>)
            keys[std::string(k.name)] = format_percent(*v);
          else
            keys[std::string(k.name)] = *v;
        },
        k.field);
  }
  return {{"dev", dev}, {"qdisc", needs_netem(impair) ? "netem" : "tbf"}, {"impair", keys},
          {"mtu", mtu}};
}

// LinkUp.
std::string LinkUp::shell() const {
  return shell_join(ip_cmd(ns, {"link", "set", "dev", dev, "up"}));
}
std::string LinkUp::undo() const {
  return shell_join(ip_cmd(ns, {"link", "set", "dev", dev, "down"}));
}
std::string LinkUp::describe() const { return "bring up " + dev + " in " + ns; }
json LinkUp::fields() const { return {{"dev", dev}}; }

// AddAddress.
std::string AddAddress::shell() const {
  std::vector<std::string> w{"addr", "add", addr.str(), "dev", dev};
  if (scope == RT_SCOPE_HOST) {
    w.push_back("scope");
    w.push_back("host");
  }
  // Duplicate address detection would hold a fresh v6 address back for a second or two.
  if (addr.addr.v6()) w.push_back("nodad");
  if (deprecated) {
    w.push_back("preferred_lft");
    w.push_back("0");
  }
  return shell_join(ip_cmd(ns, w));
}
std::string AddAddress::undo() const {
  return shell_join(ip_cmd(ns, {"addr", "del", addr.str(), "dev", dev}));
}
std::string AddAddress::describe() const {
  return "add address " + addr.str() + " to " + dev + " in " + ns;
}
json AddAddress::fields() const {
  return {
      {"dev", dev}, {"address", addr.str()}, {"scope", scope == RT_SCOPE_HOST ? "host" : "global"}};
}

// AddRoute.
std::string AddRoute::shell() const {
  std::vector<std::string> w{"route", "add"};
  auto spec = route_spec(route);
  w.insert(w.end(), spec.begin(), spec.end());
  return shell_join(ip_cmd(ns, w, route_family(route) == AF_INET6));
}
std::string AddRoute::undo() const {
  std::vector<std::string> w{"route", "del"};
  auto spec = route_spec(route);
  w.insert(w.end(), spec.begin(), spec.end());
  return shell_join(ip_cmd(ns, w, route_family(route) == AF_INET6));
}
std::string AddRoute::describe() const {
  std::string text;
  for (const auto& w : route_spec(route)) text += (text.empty() ? "" : " ") + w;
  return "add route " + text + " in " + ns;
}
json AddRoute::fields() const {
  return {{"to", route.to ? route.to->network().str() : "default"},
          {"family", route.family == AF_INET6 ? "inet6" : "inet"},
          {"via", route.via ? route.via->str() : ""},
          {"dev", route.dev}};
}

// EnableIpip.
std::string EnableIpip::shell() const {
  // The module's per-namespace init creates tunl0 (ip6tnl0) in every namespace; the check
  // fails loudly when the host set net.core.fb_tunnels_only_for_init_net.
  const bool v6 = family == AF_INET6;
  return std::string(v6 ? "modprobe ip6_tunnel && " : "modprobe ipip && ") +
         shell_join(ip_cmd(ns, {"link", "show", "dev", v6 ? "ip6tnl0" : "tunl0"})) + " >/dev/null";
}
// tunl0 cannot be deleted, and unloading ipip would hit every other namespace.
std::string EnableIpip::undo() const { return std::string(); }
std::string EnableIpip::describe() const {
  return std::string(family == AF_INET6 ? "enable ip6_tunnel (ip6tnl0) in "
                                        : "enable ipip (tunl0) in ") +
         ns;
}
json EnableIpip::fields() const { return {{"family", family == AF_INET6 ? "inet6" : "inet"}}; }

// CreateIpip.
std::string CreateIpip::shell() const {
  const Tunnel& t = tunnel;
  std::vector<std::string> w{"link",   "add",          "name",  t.name,
                             "type",   "ipip",         "local", t.local.str(),
                             "remote", t.remote.str(), "ttl",   std::to_string(t.ttl)};
  if (!t.dev.empty()) {
    w.push_back("dev");
    w.push_back(t.dev);
  }
  return shell_join(ip_cmd(ns, w));
}
std::string CreateIpip::undo() const {
  return shell_join(ip_cmd(ns, {"link", "del", "dev", tunnel.name}));
}
std::string CreateIpip::describe() const {
  return "create ipip tunnel " + tunnel.name + " in " + ns;
}
json CreateIpip::fields() const {
  const Tunnel& t = tunnel;
  json addrs = json::array();
  for (const auto& a : t.addresses) addrs.push_back(a.str());
  return {{"name", t.name}, {"local", t.local.str()}, {"remote", t.remote.str()},
          {"ttl", t.ttl},   {"dev", t.dev},           {"addresses", addrs}};
}

// CreateVxlan. `ip link add` without -n: the device is made from the namespace the script
// runs in, which keeps its UDP socket, and born in ns (`netns`), never created here and moved.
std::string CreateVxlan::shell() const {
  std::vector<std::string> w{"ip", "link", "add", "name", name};
  if (mtu > 0) w.insert(w.end(), {"mtu", std::to_string(mtu)});
  if (!mac.empty()) w.insert(w.end(), {"address", mac});
  w.insert(w.end(), {"netns", ns, "type", "vxlan", "id", std::to_string(vni), "local", local.str(),
                     "dstport", std::to_string(port)});
  std::string out = shell_join(w) + "; " +
                    shell_join(ip_cmd(ns, {"link", "set", "dev", name, "master", master}));
  for (const auto& r : remotes)
    out += "; " + shell_join({"bridge", "-n", ns, "fdb", "append", "00:00:00:00:00:00", "dev",
                              name, "dst", r.str()});
  return out;
}
// Its FDB entries and its UDP socket (in the host's namespace) go with the device.
std::string CreateVxlan::undo() const {
  return shell_join(ip_cmd(ns, {"link", "del", "dev", name}));
}
std::string CreateVxlan::describe() const {
  std::string to;
  for (const auto& r : remotes) to += (to.empty() ? "" : ", ") + r.str();
  return "stretch bridge " + master + " in " + ns + " over vxlan " + name + " (vni " +
         std::to_string(vni) + ", " + local.str() + " to " + (to.empty() ? "no other host" : to) +
         ")";
}
json CreateVxlan::fields() const {
  json rs = json::array();
  for (const auto& r : remotes) rs.push_back(r.str());
  return {{"name", name}, {"vni", vni},   {"local", local.str()}, {"remotes", rs},
          {"port", port}, {"mtu", mtu},   {"mac", mac},           {"master", master}};
}

}  // namespace labctl::step
