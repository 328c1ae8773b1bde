// IPVS over generic netlink (family "IPVS"): virtual services and their real servers in the
// namespace the socket was opened in. Requests are built with libmnl as Request values by
// the factories in namespace ipvs (unit-tested without a kernel); Ipvs sends them.
//
// Message layout of every request (see include/uapi/linux/ip_vs.h):
//   nlmsghdr | genlmsghdr{cmd, version 1} | IPVS_CMD_ATTR_SERVICE { AF u16, PROTOCOL u16,
//   ADDR 16 bytes, PORT be16 | FWMARK u32, [SCHED_NAME, FLAGS{flags,mask}, TIMEOUT u32,
//   NETMASK u32] } | IPVS_CMD_ATTR_DEST { ADDR 16 bytes, PORT be16, ADDR_FAMILY u16,
//   [FWD_METHOD u32, WEIGHT u32, U_THRESH u32, L_THRESH u32] }
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

/// One entry of a namespace's connection table (/proc/net/ip_vs_conn; no netlink command
/// reads it).
struct IpvsConn {
  std::string protocol;  ///< As the kernel names it: "TCP", "UDP", "SCTP", ...
  IpAddr client;
  uint16_t client_port = 0;
  IpAddr vip;
  uint16_t vport = 0;
  IpAddr dest;
  uint16_t dport = 0;
  std::string state;     ///< "ESTABLISHED", "TIME_WAIT", "FIN_WAIT", "UDP", "NONE", ...
  uint32_t expires = 0;  ///< Seconds left.
  std::string pe_name;   ///< Persistence engine ("sip"), "" without one.
  std::string pe_data;
};

/// A namespace's IPVS totals from /proc/net/ip_vs_stats_percpu: the per-cpu counters summed
/// (exact: updated per packet) and the estimator's rates (refreshed about every 2 s).
struct IpvsTotals {
  IpvsStats exact;   ///< conns, in/out packets and bytes; rates 0.
  IpvsStats rates;   ///< cps, in/out pps and bps from the estimator.
  size_t cpus = 0;
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

// Decoders for reply messages.
[[nodiscard]] Result<IpvsInfo> parse_info(const nlmsghdr& nlh);
[[nodiscard]] Result<IpvsService> parse_service(const nlmsghdr& nlh);
[[nodiscard]] Result<IpvsDest> parse_dest(const nlmsghdr& nlh);
[[nodiscard]] Result<IpvsTimeouts> parse_config(const nlmsghdr& nlh);
/// The text of /proc/net/ip_vs_conn (IPv4 addresses in hex, IPv6 ones as %pI6 prints them).
[[nodiscard]] Result<std::vector<IpvsConn>> parse_conn_table(const std::string& text);
/// The text of /proc/net/ip_vs_stats_percpu.
[[nodiscard]] Result<IpvsTotals> parse_stats_percpu(const std::string& text);
/// The connection table of the calling thread's namespace (/proc/thread-self/net: after
/// setns, /proc/self/net would be the thread-group leader's namespace).
[[nodiscard]] Result<std::vector<IpvsConn>> read_conn_table();
/// The totals of the calling thread's namespace.
[[nodiscard]] Result<IpvsTotals> read_totals();

/// Schedulers this kernel can use: ip_vs_NAME modules under `modules_dir` (default
/// /lib/modules/$(uname -r)) in kernel/net/netfilter/ipvs/, plus those built in
/// (modules.builtin). Sorted; empty when neither can be read.
[[nodiscard]] std::vector<std::string> loadable_schedulers(const std::string& modules_dir = {});
/// The scheduler names among module file names ("ip_vs_wrr.ko", "ip_vs_sh.ko.xz", ...) and
/// the lines of modules.builtin (exposed for tests). Not schedulers: ip_vs itself, ip_vs_ftp
/// (an application helper) and ip_vs_pe_* (persistence engines).
[[nodiscard]] std::vector<std::string> schedulers_among(const std::vector<std::string>& files,
                                                        const std::string& builtin);
/// The hint for ENOENT from NEW/SET_SERVICE: the scheduler, and those the kernel can load.
[[nodiscard]] std::string unknown_scheduler_hint(const std::string& scheduler,
                                                 const std::vector<std::string>& loadable);

/// IP_VS_SVC_F_* of a service: persistent, one-packet, its scheduler flags.
[[nodiscard]] uint32_t service_flags(const VirtualService& s);
/// The kernel's forwarding flag (IP_VS_CONN_F_MASQ, DROUTE, TUNNEL, LOCALNODE) for a method.
[[nodiscard]] uint32_t fwd_flags(FwdMethod m);
/// "tcp 10.0.0.100:80" or "fwmark 7", as ipvsadm names a service.
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

  [[nodiscard]] uint16_t family() const { return family_; }
  [[nodiscard]] NetlinkSocket& socket() { return sock_; }

 private:
  Ipvs(NetlinkSocket s, uint16_t family) : sock_(std::move(s)), family_(family) {}
  NetlinkSocket sock_;
  uint16_t family_ = 0;
};

}  // namespace labctl
