// What each node of a topology is for, derived from what the topology says (services,
// addresses, forwarding), never from node names: a node is a DR real server because a
// service on another node names one of its addresses with method dr. The planner's whys,
// explain and the graph all read roles from here.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "labctl/model/topology.h"

namespace labctl {

/// One service a node takes part in as a real server.
struct Membership {
  const Node* director = nullptr;
  const VirtualService* service = nullptr;
  const RealServer* dest = nullptr;
};

/// A node's part in a keepalived (VRRP) director pair: the state its keepalived starts in
/// and the services it programs in the node's IPVS table (written on any director).
struct KeepalivedRole {
  bool master = false;
  std::vector<const VirtualService*> services;
};

class Roles {
 public:
  /// Keeps pointers into `t`, which must outlive this object.
  explicit Roles(const Topology& t);

  /// The node whose interface or tunnel carries `a` (lo and tunl0 VIPs are shared, so they
  /// do not count), or nullptr.
  [[nodiscard]] const Node* owner(const IpAddr& a) const;
  [[nodiscard]] bool is_director(const Node& n) const { return !n.services.empty(); }
  /// Set when a keepalived agent of `n` programs services: a director of a VRRP pair, the
  /// BACKUP one too, although the services are written on the other.
  [[nodiscard]] std::optional<KeepalivedRole> keepalived_role(const Node& n) const;
  /// A director by its own services or by keepalived's.
  [[nodiscard]] bool directs(const Node& n) const { return is_director(n) || keepalived_role(n); }
  /// The services this node is a real server of.
  [[nodiscard]] std::vector<Membership> memberships(const Node& n) const;
  [[nodiscard]] bool is_real_server(const Node& n, FwdMethod m) const;
  [[nodiscard]] bool is_real_server(const Node& n) const { return !memberships(n).empty(); }
  /// Forwards packets (ip_forward or conf.all.forwarding = 1) without being a director.
  [[nodiscard]] bool is_router(const Node& n) const;
  /// Whether any service of the lab forwards with method `m`.
  [[nodiscard]] bool lab_uses(FwdMethod m) const;
  /// Whether any node of the lab has an IPVS service: without one there are no clients,
  /// only hosts (net-basics, home-nat).
  [[nodiscard]] bool lab_has_services() const;
  /// A service of `n` (as director) whose VIP is `a`, or nullptr.
  [[nodiscard]] const VirtualService* service_with_vip(const Node& n, const IpAddr& a) const;
  /// Runs an nginx agent: an L7 proxy that takes each client's handshake.
  [[nodiscard]] bool is_proxy(const Node& n) const;
  /// Named by an upstream of some node's nginx agent: an application server behind a proxy.
  [[nodiscard]] bool is_app(const Node& n) const;
  /// "director (DR)", "real server (NAT, TUN)", "router", "client": one short phrase.
  [[nodiscard]] std::string role_name(const Node& n) const;
  /// The methods a director uses (its keepalived's services too), in the order NAT, DR, TUN.
  [[nodiscard]] std::vector<FwdMethod> director_methods(const Node& n) const;

  [[nodiscard]] const Topology& topology() const { return t_; }

 private:
  const Topology& t_;
};

/// Whether the node sets `key` to `value` among its sysctls.
[[nodiscard]] bool sets_sysctl(const Node& n, const std::string& key, const std::string& value);
/// "NAT", "DR", "TUN".
[[nodiscard]] std::string method_upper(FwdMethod m);
/// "VIP:port" / "[v6]:port" / "fwmark N": how a student would name the service.
[[nodiscard]] std::string service_label(const VirtualService& s);

}  // namespace labctl
