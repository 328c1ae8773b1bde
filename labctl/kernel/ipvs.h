// IPVS over generic netlink (family "IPVS"): virtual services and their real servers in the
// namespace the socket was opened in. Requests are built with libmnl as Request values by
// the factories in namespace ipvs (unit-tested without a kernel); Ipvs sends them. A
// topology's service is turned into the live type (live_service, live_dest) and encoded as
// one read back from the kernel is. What only /proc shows is in ipvs_proc.h, the schedulers a
// kernel can load in ipvs_modules.h.
//
// Message layout of every request (see include/uapi/linux/ip_vs.h):
//   nlmsghdr | genlmsghdr{cmd, version 1} | IPVS_CMD_ATTR_SERVICE { AF u16, PROTOCOL u16,
//   ADDR 16 bytes, PORT be16 | FWMARK u32, [SCHED_NAME, FLAGS{flags,mask}, TIMEOUT u32,
//   NETMASK u32] } | IPVS_CMD_ATTR_DEST { ADDR 16 bytes, PORT be16, ADDR_FAMILY u16,
//   [FWD_METHOD u32, WEIGHT u32, U_THRESH u32, L_THRESH u32] }
// and of the sync daemon commands (NEW_DAEMON, DEL_DAEMON; GET_DAEMON replies alike):
//   nlmsghdr | genlmsghdr | IPVS_CMD_ATTR_DAEMON { STATE u32 (MASTER 1, BACKUP 2),
//   [MCAST_IFN string, SYNC_ID u32] }
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "labctl/base/error.h"
#include "labctl/model/ip.h"
#include "labctl/kernel/netlink.h"
#include "labctl/model/topology.h"

namespace labctl {

/// Counters of a service or destination. From STATS64 when the kernel sends it, else STATS.
/// The kernel's estimator refreshes them about every 2 s.
struct IpvsStats {
  uint64_t conns = 0;
  uint64_t inpkts = 0;
  uint64_t outpkts = 0;
  uint64_t inbytes = 0;
  uint64_t outbytes = 0;
  uint64_t cps = 0;  ///< Rates: connections, packets and bytes per second.
  uint64_t inpps = 0;
  uint64_t outpps = 0;
  uint64_t inbps = 0;
  uint64_t outbps = 0;
};

struct IpvsInfo {
  uint32_t version = 0;  ///< e.g. 0x010201
  uint32_t conn_tab_size = 0;
  [[nodiscard]] std::string version_str() const;  ///< "1.2.1"
};

struct IpvsService {
  int family = 0;
  int protocol = 0;  ///< IPPROTO_TCP/UDP/SCTP; 0 for fwmark services.
  IpAddr addr;
  uint16_t port = 0;  ///< Host order.
  uint32_t fwmark = 0;
  std::string scheduler;
  std::string pe_name;
  uint32_t flags = 0;    ///< IP_VS_SVC_F_*.
  uint32_t timeout = 0;  ///< Persistence timeout in seconds.
  uint32_t netmask =
      0;  ///< As the kernel keeps it: IPv4 mask bits in network order, IPv6 prefix length.
  IpvsStats stats;
};

struct IpvsDest {
  IpAddr addr;
  uint16_t port = 0;
  uint32_t fwd_method = 0;  ///< IP_VS_CONN_F_MASQ 0, LOCALNODE 1, TUNNEL 2, DROUTE 3, BYPASS 4.
  std::optional<FwdMethod> method;  ///< fwd_method as labctl names it (NAT, DR, TUN, LOCALNODE).
  int weight = 0;
  uint32_t u_thresh = 0;
  uint32_t l_thresh = 0;
  uint32_t active_conns = 0;
  uint32_t inact_conns = 0;
  uint32_t persist_conns = 0;
  int tun_type = 0;  ///< IP_VS_CONN_F_TUNNEL_TYPE_IPIP 0, GUE 1, GRE 2.
  uint16_t tun_port = 0;   ///< GUE's UDP port, host order.
  uint16_t tun_flags = 0;  ///< IP_VS_TUNNEL_ENCAP_FLAG_*.
  IpvsStats stats;
};

/// The connection timeouts of a namespace's IPVS, in seconds (ipvsadm --set tcp tcpfin udp).
/// In a SET_CONFIG request 0 means "leave unchanged".
struct IpvsTimeouts {
  uint32_t tcp = 0;
  uint32_t tcp_fin = 0;
  uint32_t udp = 0;
};

/// A connection-sync daemon of a namespace's IPVS (ipvsadm --start-daemon): the master
/// multicasts the changes of its connection table from `interface`; a backup learns them
/// there, so that it can carry on the master's connections after a takeover.
struct IpvsDaemon {
  enum class Role { Master, Backup };
  Role role = Role::Master;
  std::string interface;  ///< The multicast interface (IPVS_DAEMON_ATTR_MCAST_IFN).
  uint32_t sync_id = 0;   ///< 0..255; a backup of id 0 takes every master's.
  // Read back only (the kernel's defaults when not asked for): Linux 4.3 and later.
  uint16_t maxlen = 0;    ///< Largest sync message payload.
  IpAddr group;           ///< Multicast group (224.0.0.81 by default).
  uint16_t port = 0;      ///< UDP port, host order (8848 by default).
  uint8_t ttl = 0;
};

namespace ipvs {

inline constexpr const char* kFamilyName = "IPVS";

// Factories. `family` is the generic netlink family id (Ipvs::family()).
[[nodiscard]] Request get_info(uint16_t family);
[[nodiscard]] Result<Request> new_service(uint16_t family, const VirtualService& s);
[[nodiscard]] Result<Request> del_service(uint16_t family, const VirtualService& s);
[[nodiscard]] Result<Request> new_dest(uint16_t family, const VirtualService& s,
                                       const RealServer& d);
[[nodiscard]] Result<Request> del_dest(uint16_t family, const VirtualService& s,
                                       const RealServer& d);
[[nodiscard]] Request get_services(uint16_t family);  ///< A dump of every service.
[[nodiscard]] Result<Request> get_dests(uint16_t family, const VirtualService& s);  ///< A dump.
[[nodiscard]] Request flush(uint16_t family);
/// IPVS_CMD_SET_SERVICE from a service as the kernel reported it: its identity, scheduler,
/// flags (full mask), persistence timeout and netmask, so only the fields the caller changed
/// change. ENOENT (an unknown scheduler) names the schedulers this kernel can load.
[[nodiscard]] Result<Request> set_service(uint16_t family, const IpvsService& s);
/// IPVS_CMD_SET_DEST from a destination as the kernel reported it (method, weight,
/// thresholds and tunnel settings are all sent: the kernel replaces every one).
[[nodiscard]] Result<Request> set_dest(uint16_t family, const IpvsService& s, const IpvsDest& d);
/// IPVS_CMD_NEW_DEST / DEL_DEST for a service as the kernel reported it.
[[nodiscard]] Result<Request> new_dest(uint16_t family, const IpvsService& s, const IpvsDest& d);
[[nodiscard]] Result<Request> del_dest(uint16_t family, const IpvsService& s, const IpvsDest& d);
[[nodiscard]] Result<Request> get_dests(uint16_t family, const IpvsService& s);  ///< A dump.
[[nodiscard]] Request get_config(uint16_t family);
/// IPVS_CMD_SET_CONFIG; a 0 timeout leaves that one unchanged (the kernel's rule).
[[nodiscard]] Request set_config(uint16_t family, const IpvsTimeouts& t);

/// IPVS_CMD_NEW_DAEMON: start `d` (its role, interface and sync id; the kernel's defaults
/// for the rest, as ipvsadm --start-daemon without options).
[[nodiscard]] Result<Request> new_daemon(uint16_t family, const IpvsDaemon& d);
/// IPVS_CMD_DEL_DAEMON: stop the daemon of that role.
[[nodiscard]] Request del_daemon(uint16_t family, IpvsDaemon::Role role);
/// IPVS_CMD_GET_DAEMON, a dump: one reply per running daemon.
[[nodiscard]] Request get_daemons(uint16_t family);
/// "master" or "backup", as ipvsadm names the roles.
[[nodiscard]] const char* role_name(IpvsDaemon::Role role);
/// The hint for an errno from a daemon command (exposed for tests).
[[nodiscard]] std::string daemon_hint(int errnum, const std::string& where);

// Decoders for reply messages.
[[nodiscard]] Result<IpvsInfo> parse_info(const nlmsghdr& nlh);
[[nodiscard]] Result<IpvsService> parse_service(const nlmsghdr& nlh);
[[nodiscard]] Result<IpvsDest> parse_dest(const nlmsghdr& nlh);
[[nodiscard]] Result<IpvsTimeouts> parse_config(const nlmsghdr& nlh);
[[nodiscard]] Result<IpvsDaemon> parse_daemon(const nlmsghdr& nlh);
/// A service of the topology as the kernel would report it (no counters): the one type the
/// encoders take, so a service is encoded one way whichever side it comes from.
[[nodiscard]] IpvsService live_service(const VirtualService& s);
/// A real server of `s` as the kernel would report it: the service's port when it names none,
/// the kernel's forwarding flag for its method.
[[nodiscard]] IpvsDest live_dest(const VirtualService& s, const RealServer& d);
/// IP_VS_SVC_F_* of a service: persistent, one-packet, its scheduler flags.
[[nodiscard]] uint32_t service_flags(const VirtualService& s);
/// The kernel's forwarding flag (IP_VS_CONN_F_MASQ, DROUTE, TUNNEL, LOCALNODE) for a method.
[[nodiscard]] uint32_t fwd_flags(FwdMethod m);
/// "tcp 10.0.0.100:80" or "fwmark 7", as ipvsadm names a service.
[[nodiscard]] std::string service_name(const IpvsService& s);
[[nodiscard]] std::string service_name(const VirtualService& s);
/// The hint for an errno from a service or destination command (exposed for tests).
/// `scheduler` is named in the ENOENT hint of NEW_SERVICE.
[[nodiscard]] std::string service_hint(int errnum, const std::string& where,
                                       const std::string& scheduler);
[[nodiscard]] std::string dest_hint(int errnum, const std::string& where);
/// The Error when the kernel has no "IPVS" generic netlink family.
[[nodiscard]] Error no_ipvs_error(const std::string& where);

}  // namespace ipvs

/// The IPVS table of the namespace the socket was opened in.
class Ipvs {
 public:
  /// Opens in the calling thread's current namespace and resolves the "IPVS" family; fails
  /// with ipvs::no_ipvs_error() when the kernel has no IPVS.
  static Result<Ipvs> open(std::string where = {});

  [[nodiscard]] Result<IpvsInfo> info();
  [[nodiscard]] Status add_service(const VirtualService& s);
  [[nodiscard]] Status del_service(const VirtualService& s);
  /// d.port 0 means the service's port.
  [[nodiscard]] Status add_dest(const VirtualService& s, const RealServer& d);
  [[nodiscard]] Status del_dest(const VirtualService& s, const RealServer& d);
  [[nodiscard]] Result<std::vector<IpvsService>> services();
  /// Destinations of a service; empty when the service does not exist (the kernel's answer).
  [[nodiscard]] Result<std::vector<IpvsDest>> dests(const VirtualService& s);
  /// Removes every service (and so every destination) in this namespace.
  [[nodiscard]] Status flush();
  /// Edits a service in place (ipvsadm -E): `s` as read back, with the fields to change
  /// changed.
  [[nodiscard]] Status set_service(const IpvsService& s);
  /// Edits a destination in place (ipvsadm -e).
  [[nodiscard]] Status set_dest(const IpvsService& s, const IpvsDest& d);
  [[nodiscard]] Status add_dest(const IpvsService& s, const IpvsDest& d);
  [[nodiscard]] Status del_dest(const IpvsService& s, const IpvsDest& d);
  /// Destinations of a service as the kernel reported it.
  [[nodiscard]] Result<std::vector<IpvsDest>> dests(const IpvsService& s);
  [[nodiscard]] Result<IpvsTimeouts> timeouts();
  [[nodiscard]] Status set_timeouts(const IpvsTimeouts& t);
  /// Starts a connection-sync daemon (ipvsadm --start-daemon).
  [[nodiscard]] Status start_daemon(const IpvsDaemon& d);
  [[nodiscard]] Status stop_daemon(IpvsDaemon::Role role);
  /// The sync daemons running in this namespace (ipvsadm -L --daemon): none, one or both.
  [[nodiscard]] Result<std::vector<IpvsDaemon>> daemons();

  [[nodiscard]] uint16_t family() const { return family_; }
  [[nodiscard]] NetlinkSocket& socket() { return sock_; }

 private:
  Ipvs(NetlinkSocket s, uint16_t family) : sock_(std::move(s)), family_(family) {}
  Status send(Result<Request> r);  ///< One request (or the error of building it), its answer.
  Result<std::vector<IpvsDest>> dump_dests(Result<Request> r);
  NetlinkSocket sock_;
  uint16_t family_ = 0;
};

}  // namespace labctl
