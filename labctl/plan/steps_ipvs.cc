// The steps that configure a director's IPVS table: each as the ipvsadm command an
// administrator would type, its inverse, a description and its fields.
#include <sys/socket.h>

#include <nlohmann/json.hpp>

#include "labctl/base/shell_quote.h"
#include "labctl/plan/plan.h"
#include "labctl/plan/step_shell.h"

namespace labctl::step {
namespace {

using nlohmann::json;
using step_shell::in_netns;

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
  const char* flag = s.proto == Proto::Udp    ? "-u"
                     : s.proto == Proto::Sctp ? "--sctp-service"
                                              : "-t";
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

json service_json(const VirtualService& s) {
  return {{"name", s.name},
          {"proto", to_string(s.proto)},
          {"vip", s.vip.str()},
          {"port", s.port},
          {"fwmark", s.fwmark},
          {"scheduler", s.scheduler},
          {"persistence", s.persistence},
          {"netmask", s.netmask ? json(*s.netmask) : json()},
          {"sched_flags", s.sched_flags},
          {"one_packet", s.one_packet}};
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
    case FwdMethod::Nat:
      return "-m";
    case FwdMethod::Dr:
      return "-g";
    case FwdMethod::Tun:
      return "-i";
    // ipvsadm cannot ask for the kernel's Local method; gatewaying to one of the
    // director's own addresses is delivered locally the same way (ipvsadm -Ln: Route).
    case FwdMethod::Local:
      return "-g";
  }
  return "-g";
}

}  // namespace

// AddIpvsService.
std::string AddIpvsService::shell() const {
  std::vector<std::string> w{"ipvsadm", "-A"};
  auto id = service_id(service);
  w.insert(w.end(), id.begin(), id.end());
  w.insert(w.end(), {"-s", service.scheduler});
  if (service.persistence > 0) w.insert(w.end(), {"-p", std::to_string(service.persistence)});
  if (service.netmask) w.insert(w.end(), {"-M", netmask_arg(service)});
  if (!service.sched_flags.empty()) {
    std::string flags;
    for (const auto& f : service.sched_flags) flags += (flags.empty() ? "" : ",") + f;
    w.insert(w.end(), {"-b", flags});
  }
  if (service.one_packet) w.push_back("-o");
  return shell_join(in_netns(ns, w));
}
std::string AddIpvsService::undo() const {
  std::vector<std::string> w{"ipvsadm", "-D"};
  auto id = service_id(service);
  w.insert(w.end(), id.begin(), id.end());
  return shell_join(in_netns(ns, w));
}
std::string AddIpvsService::describe() const {
  return "add IPVS service " + service_text(service) + " in " + ns;
}
json AddIpvsService::fields() const { return service_json(service); }

// AddIpvsDest.
std::string AddIpvsDest::shell() const {
  std::vector<std::string> w{"ipvsadm", "-a"};
  auto id = service_id(service);
  auto rid = dest_id(service, dest);
  w.insert(w.end(), id.begin(), id.end());
  w.insert(w.end(), rid.begin(), rid.end());
  w.push_back(method_flag(dest.method));
  w.insert(w.end(), {"-w", std::to_string(dest.weight)});
  if (dest.u_thresh > 0) w.insert(w.end(), {"-x", std::to_string(dest.u_thresh)});
  if (dest.l_thresh > 0) w.insert(w.end(), {"-y", std::to_string(dest.l_thresh)});
  return shell_join(in_netns(ns, w));
}
std::string AddIpvsDest::undo() const {
  std::vector<std::string> w{"ipvsadm", "-d"};
  auto id = service_id(service);
  auto rid = dest_id(service, dest);
  w.insert(w.end(), id.begin(), id.end());
  w.insert(w.end(), rid.begin(), rid.end());
  return shell_join(in_netns(ns, w));
}
std::string AddIpvsDest::describe() const {
  return "add real server " + dest.addr.str() + " (" + to_string(dest.method) + ") to " +
         service_text(service) + " in " + ns;
}
json AddIpvsDest::fields() const {
  return {{"service", service_json(service)},
          {"address", dest.addr.str()},
          {"port", dest_port(service, dest)},
          {"method", to_string(dest.method)},
          {"weight", dest.weight},
          {"u_thresh", dest.u_thresh},
          {"l_thresh", dest.l_thresh}};
}

// StartIpvsSync.
std::string StartIpvsSync::shell() const {
  return shell_join(in_netns(ns, {"ipvsadm", "--start-daemon", master ? "master" : "backup",
                                  "--mcast-interface", interface, "--syncid", std::to_string(id)}));
}
std::string StartIpvsSync::undo() const {
  return shell_join(in_netns(ns, {"ipvsadm", "--stop-daemon", master ? "master" : "backup"}));
}
std::string StartIpvsSync::describe() const {
  return std::string("start the IPVS ") + (master ? "master" : "backup") + " sync daemon on " + interface +
         " (syncid " + std::to_string(id) + ") in " + ns;
}
json StartIpvsSync::fields() const {
  return {{"role", master ? "master" : "backup"}, {"interface", interface}, {"syncid", id}};
}

}  // namespace labctl::step
