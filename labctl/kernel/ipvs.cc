#include "labctl/kernel/ipvs.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/ip_vs.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "labctl/kernel/ipvs_modules.h"
#include "labctl/model/rules.h"

namespace labctl {
namespace ipvs {
namespace {

// Our largest request (NEW_DEST) is about 130 bytes.
constexpr size_t kMaxRequest = 512;
constexpr uint32_t kV4FullMask = 0xffffffff;
constexpr uint32_t kV6FullPrefix = 128;

std::string in_where(const std::string& where) { return where.empty() ? "" : " in " + where; }

// A genl request under construction; finish() trims it to its length.
class Builder {
 public:
  Builder(uint16_t family, uint8_t cmd, uint16_t flags) : buf_(kMaxRequest, 0) {
    nlh_ = mnl_nlmsg_put_header(buf_.data());
    nlh_->nlmsg_type = family;
    nlh_->nlmsg_flags = NLM_F_REQUEST | flags;
    auto* genl = static_cast<genlmsghdr*>(mnl_nlmsg_put_extra_header(nlh_, sizeof(genlmsghdr)));
    genl->cmd = cmd;
    genl->version = IPVS_GENL_VERSION;
  }
  nlmsghdr* nlh() { return nlh_; }
  Request finish(std::string what, HintFn hint) {
    buf_.resize(nlh_->nlmsg_len);
    return Request{std::move(buf_), std::move(what), std::move(hint), 0};
  }

 private:
  std::vector<uint8_t> buf_;
  nlmsghdr* nlh_;
};

// IPVS keeps addresses in a union nf_inet_addr (16 bytes) and echoes that size; ipvsadm and
// keepalived send the same, an IPv4 address in the first 4 bytes.
void put_addr(nlmsghdr* nlh, uint16_t type, const IpAddr& a) {
  std::array<uint8_t, 16> bytes{};
  std::memcpy(bytes.data(), a.bytes.data(), a.size());
  mnl_attr_put(nlh, type, bytes.size(), bytes.data());
}

// The kernel keeps the persistence netmask as IPv4 mask bits in network order, or as an
// IPv6 prefix length.
uint32_t service_netmask(const VirtualService& s) {
  if (s.vip.v6()) return s.netmask ? static_cast<uint32_t>(*s.netmask) : kV6FullPrefix;
  const int len = s.netmask.value_or(32);
  return htonl(len == 0 ? 0 : kV4FullMask << (32 - len));
}

// The identity of a service (AF + FWMARK, or AF + PROTOCOL + ADDR + PORT, any protocol, SCTP
// too) and, when `full`, its settings.
Status check_service(const IpvsService& s, const std::string& what) {
  if (s.family != AF_INET && s.family != AF_INET6)
    return fail(what + ": the service has no address family");
  if (s.scheduler.size() >= IP_VS_SCHEDNAME_MAXLEN)
    return fail(what + ": scheduler name '" + s.scheduler + "' is longer than " +
                std::to_string(IP_VS_SCHEDNAME_MAXLEN - 1) + " characters");
  return {};
}

void put_service_nest(nlmsghdr* nlh, const IpvsService& s, bool full) {
  nlattr* nest = mnl_attr_nest_start(nlh, IPVS_CMD_ATTR_SERVICE);
  mnl_attr_put_u16(nlh, IPVS_SVC_ATTR_AF, static_cast<uint16_t>(s.family));
  if (s.fwmark != 0) {
    mnl_attr_put_u32(nlh, IPVS_SVC_ATTR_FWMARK, s.fwmark);
  } else {
    mnl_attr_put_u16(nlh, IPVS_SVC_ATTR_PROTOCOL, static_cast<uint16_t>(s.protocol));
    put_addr(nlh, IPVS_SVC_ATTR_ADDR, s.addr);
    mnl_attr_put_u16(nlh, IPVS_SVC_ATTR_PORT, htons(s.port));
  }
  if (full) {
    mnl_attr_put_strz(nlh, IPVS_SVC_ATTR_SCHED_NAME, s.scheduler.c_str());
    if (!s.pe_name.empty()) mnl_attr_put_strz(nlh, IPVS_SVC_ATTR_PE_NAME, s.pe_name.c_str());
    // The kernel applies flags under mask on top of the existing service's flags: a full
    // mask makes the request say exactly which flags are set. HASHED is the kernel's own
    // bookkeeping, reported but never requested.
    ip_vs_flags flags{};
    flags.flags = s.flags & ~static_cast<uint32_t>(IP_VS_SVC_F_HASHED);
    flags.mask = ~0U;
    mnl_attr_put(nlh, IPVS_SVC_ATTR_FLAGS, sizeof flags, &flags);
    mnl_attr_put_u32(nlh, IPVS_SVC_ATTR_TIMEOUT, s.timeout);
    mnl_attr_put_u32(nlh, IPVS_SVC_ATTR_NETMASK, s.netmask);
  }
  mnl_attr_nest_end(nlh, nest);
}

// A request about one service that carries its identity only (DEL_SERVICE, GET_DEST).
Result<Request> service_id_request(uint16_t family, uint8_t cmd, uint16_t flags,
                                   const IpvsService& s, std::string what, HintFn hint) {
  TRY(check_service(s, what));
  Builder b(family, cmd, flags);
  put_service_nest(b.nlh(), s, /*full=*/false);
  return b.finish(std::move(what), std::move(hint));
}

std::string dest_name(const IpvsDest& d) {
  const std::string a = d.addr.v6() ? "[" + d.addr.str() + "]" : d.addr.str();
  return a + ":" + std::to_string(d.port);
}

Result<Request> dest_request(uint16_t family, uint8_t cmd, const IpvsService& s, const IpvsDest& d,
                             std::string what) {
  TRY(check_service(s, what));
  if (!d.addr.v4() && !d.addr.v6()) return fail(what + ": the real server has no address");
  const uint32_t method = d.fwd_method & IP_VS_CONN_F_FWD_MASK;
  if (d.addr.family != s.family && method != IP_VS_CONN_F_TUNNEL)
    return fail(what +
                ": an IPv4 service can only reach an IPv6 real server (and back) in TUN mode");
  const bool full = cmd != IPVS_CMD_DEL_DEST;
  if (full && d.weight < 0) return fail(what + ": weight must be >= 0");
  if (full && d.u_thresh != 0 && d.l_thresh > d.u_thresh)
    return fail(what + ": l_thresh must not exceed u_thresh");
  Builder b(family, cmd, 0);
  put_service_nest(b.nlh(), s, /*full=*/false);
  nlattr* nest = mnl_attr_nest_start(b.nlh(), IPVS_CMD_ATTR_DEST);
  put_addr(b.nlh(), IPVS_DEST_ATTR_ADDR, d.addr);
  mnl_attr_put_u16(b.nlh(), IPVS_DEST_ATTR_PORT, htons(d.port));
  mnl_attr_put_u16(b.nlh(), IPVS_DEST_ATTR_ADDR_FAMILY, static_cast<uint16_t>(d.addr.family));
  if (full) {
    mnl_attr_put_u32(b.nlh(), IPVS_DEST_ATTR_FWD_METHOD, method);
    mnl_attr_put_u32(b.nlh(), IPVS_DEST_ATTR_WEIGHT, static_cast<uint32_t>(d.weight));
    mnl_attr_put_u32(b.nlh(), IPVS_DEST_ATTR_U_THRESH, d.u_thresh);
    mnl_attr_put_u32(b.nlh(), IPVS_DEST_ATTR_L_THRESH, d.l_thresh);
    // The kernel resets what a SET_DEST leaves out: a GUE or GRE tunnel stays one only if
    // the request says so again.
    if (method == IP_VS_CONN_F_TUNNEL && d.tun_type != 0) {
      mnl_attr_put_u8(b.nlh(), IPVS_DEST_ATTR_TUN_TYPE, static_cast<uint8_t>(d.tun_type));
      mnl_attr_put_u16(b.nlh(), IPVS_DEST_ATTR_TUN_PORT, htons(d.tun_port));
      mnl_attr_put_u16(b.nlh(), IPVS_DEST_ATTR_TUN_FLAGS, d.tun_flags);
    }
  }
  mnl_attr_nest_end(b.nlh(), nest);
  return b.finish(std::move(what), dest_hint);
}

uint32_t u32_or(const nlattr* a, uint32_t dflt = 0) {
  return a && mnl_attr_validate(a, MNL_TYPE_U32) == 0 ? mnl_attr_get_u32(a) : dflt;
}
uint16_t u16_or(const nlattr* a, uint16_t dflt = 0) {
  return a && mnl_attr_validate(a, MNL_TYPE_U16) == 0 ? mnl_attr_get_u16(a) : dflt;
}
uint64_t u64_or(const nlattr* a) {
  return a && mnl_attr_validate(a, MNL_TYPE_U64) == 0 ? mnl_attr_get_u64(a) : 0;
}
// STATS carries u32 counters and u64 byte counters; STATS64 only u64. Read each by its size.
uint64_t counter(const nlattr* a) {
  if (!a) return 0;
  if (mnl_attr_get_payload_len(a) == sizeof(uint64_t)) return u64_or(a);
  return u32_or(a);
}

Result<IpvsStats> parse_stats(const nlattr* nest) {
  AttrTable<IPVS_STATS_ATTR_MAX + 1> t;
  if (mnl_attr_parse_nested(nest, AttrTable<IPVS_STATS_ATTR_MAX + 1>::cb, &t) < 0)
    return fail("malformed IPVS stats");
  IpvsStats s;
  s.conns = counter(t[IPVS_STATS_ATTR_CONNS]);
  s.inpkts = counter(t[IPVS_STATS_ATTR_INPKTS]);
  s.outpkts = counter(t[IPVS_STATS_ATTR_OUTPKTS]);
  s.inbytes = counter(t[IPVS_STATS_ATTR_INBYTES]);
  s.outbytes = counter(t[IPVS_STATS_ATTR_OUTBYTES]);
  s.cps = counter(t[IPVS_STATS_ATTR_CPS]);
  s.inpps = counter(t[IPVS_STATS_ATTR_INPPS]);
  s.outpps = counter(t[IPVS_STATS_ATTR_OUTPPS]);
  s.inbps = counter(t[IPVS_STATS_ATTR_INBPS]);
  s.outbps = counter(t[IPVS_STATS_ATTR_OUTBPS]);
  return s;
}

std::optional<IpAddr> addr_of(int family, const nlattr* a) {
  if (!a || (family != AF_INET && family != AF_INET6)) return std::nullopt;
  IpAddr ip;
  ip.family = family;
  if (mnl_attr_get_payload_len(a) < ip.size()) return std::nullopt;
  std::memcpy(ip.bytes.data(), mnl_attr_get_payload(a), ip.size());
  return ip;
}

// The top-level attributes of a genl reply, and the nest `type` among them.
Result<const nlattr*> top_nest(const nlmsghdr& nlh, uint16_t type, const char* what) {
  if (nlh.nlmsg_len < NLMSG_LENGTH(sizeof(genlmsghdr)))
    return fail(std::string("malformed ") + what);
  AttrTable<IPVS_CMD_ATTR_MAX + 1> top;
  if (mnl_attr_parse(&nlh, sizeof(genlmsghdr), AttrTable<IPVS_CMD_ATTR_MAX + 1>::cb, &top) < 0)
    return fail(std::string("malformed attributes in ") + what);
  if (!top[type]) return fail(std::string(what) + " without its nested attribute");
  return top[type];
}

// The attributes inside the nest `type` of a genl reply (a service's, a destination's).
template <size_t N>
Result<AttrTable<N>> nested_attrs(const nlmsghdr& nlh, uint16_t type, const char* what,
                                  const char* malformed) {
  TRY_ASSIGN(const nlattr* nest, top_nest(nlh, type, what));
  AttrTable<N> t;
  if (mnl_attr_parse_nested(nest, AttrTable<N>::cb, &t) < 0) return fail(malformed);
  return t;
}

// The counters of a reply: STATS64 when the kernel sends it, else STATS; none without both.
Result<IpvsStats> stats_of(const nlattr* stats64, const nlattr* stats) {
  const nlattr* st = stats64 ? stats64 : stats;
  if (!st) return IpvsStats{};
  return parse_stats(st);
}

std::string nul_string(const nlattr* a) {
  if (!a) return "";
  const auto* p = static_cast<const char*>(mnl_attr_get_payload(a));
  return std::string(p, strnlen(p, mnl_attr_get_payload_len(a)));
}

}  // namespace

// ---- hints -------------------------------------------------------------------------------

std::string service_hint(int errnum, const std::string& where, const std::string& scheduler) {
  switch (errnum) {
    case ENOENT:
      return "scheduler '" + scheduler + "' not found: the kernel could not load ip_vs_" +
             scheduler + " (known: rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos)";
    case EEXIST:
      return "that virtual service exists already" + in_where(where) +
             " (remove it first, or labctl down the old lab)";
    case ESRCH:
      return "no such virtual service" + in_where(where);
    case EPERM:
    case EACCES:
      return "IPVS needs CAP_NET_ADMIN in the initial user namespace (root inside a user "
             "namespace or container is not enough)";
    case EAFNOSUPPORT:
      return "this kernel's IPVS has no IPv6 support (CONFIG_IP_VS_IPV6)";
    case EINVAL:
      return "the kernel rejected the service's attributes (address family, protocol, "
             "persistence netmask); an SCTP service needs IPVS built with SCTP "
             "(CONFIG_IP_VS_PROTO_SCTP)";
    case EPROTONOSUPPORT:
      return "this kernel's IPVS does not balance that protocol (SCTP needs "
             "CONFIG_IP_VS_PROTO_SCTP)";
    default:
      return "";
  }
}

std::string dest_hint(int errnum, const std::string& where) {
  switch (errnum) {
    case EEXIST:
      return "that real server is a destination of the service already";
    case ESRCH:
      return "no such virtual service" + in_where(where) +
             ": add the service before its real servers";
    case ENOENT:
      return "that real server is not a destination of the service";
    case ERANGE:
      return "weight must be >= 0 and l_thresh must not exceed u_thresh";
    case EINVAL:
      // ip_vs_new_dest accepts an IPv4 real server only if inet_addr_type() calls it unicast
      // or local, and that answers "broadcast" while the namespace has no local routing
      // table yet (no address anywhere, not even lo up).
      return "the kernel refused the real server's address: it must be a unicast address, "
             "mixing IPv4 and IPv6 needs TUN forwarding, and the namespace needs an address "
             "(or at least lo up)" +
             in_where(where) + " before it accepts IPv4 real servers";
    case EPERM:
    case EACCES:
      return service_hint(errnum, where, "");
    default:
      return "";
  }
}

Error no_ipvs_error(const std::string& where) {
  return Error{"open IPVS" + in_where(where) +
                   ": this kernel has no IPVS (CONFIG_IP_VS): the \"IPVS\" generic netlink "
                   "family does not exist and the ip_vs module could not be loaded",
               ENOENT,
               {},
               "run the lab in the micro-VM: labctl vm exec -- labctl up LAB"};
}

uint32_t service_flags(const VirtualService& s) {
  uint32_t flags = s.persistence > 0 ? IP_VS_SVC_F_PERSISTENT : 0;
  if (s.one_packet) flags |= IP_VS_SVC_F_ONEPACKET;
  for (const auto& name : s.sched_flags)
    if (const auto* f = topo::find_sched_flag(name)) flags |= f->bit;
  return flags;
}

uint32_t fwd_flags(FwdMethod m) {
  switch (m) {
    case FwdMethod::Nat:
      return IP_VS_CONN_F_MASQ;
    case FwdMethod::Dr:
      return IP_VS_CONN_F_DROUTE;
    case FwdMethod::Tun:
      return IP_VS_CONN_F_TUNNEL;
    case FwdMethod::Local:
      return IP_VS_CONN_F_LOCALNODE;
  }
  return IP_VS_CONN_F_MASQ;
}

std::string service_name(const IpvsService& s) {
  if (s.fwmark != 0) return "fwmark " + std::to_string(s.fwmark);
  const char* proto = s.protocol == IPPROTO_TCP    ? "tcp"
                      : s.protocol == IPPROTO_UDP  ? "udp"
                      : s.protocol == IPPROTO_SCTP ? "sctp"
                                                   : "proto";
  const std::string a = s.addr.v6() ? "[" + s.addr.str() + "]" : s.addr.str();
  return std::string(proto) + " " + a + ":" + std::to_string(s.port);
}

std::string service_name(const VirtualService& s) { return service_name(live_service(s)); }

IpvsService live_service(const VirtualService& s) {
  IpvsService out;
  out.family = s.vip.family;
  out.protocol = ip_protocol(s.proto);
  out.addr = s.vip;
  out.port = s.port;
  out.fwmark = s.fwmark;
  out.scheduler = s.scheduler;
  out.flags = service_flags(s);
  out.timeout = s.persistence;
  out.netmask = service_netmask(s);
  return out;
}

IpvsDest live_dest(const VirtualService& s, const RealServer& d) {
  IpvsDest out;
  out.addr = d.addr;
  out.port = d.port != 0 ? d.port : s.port;
  out.fwd_method = fwd_flags(d.method);
  out.method = d.method;
  out.weight = d.weight;
  out.u_thresh = d.u_thresh;
  out.l_thresh = d.l_thresh;
  return out;
}

// ---- factories ---------------------------------------------------------------------------
// The topology's services and real servers are turned into the live types first: every
// request below is encoded from IpvsService and IpvsDest alone.

Request get_info(uint16_t family) {
  return Builder(family, IPVS_CMD_GET_INFO, 0).finish("read IPVS info", {});
}

Result<Request> new_service(uint16_t family, const VirtualService& model) {
  const IpvsService s = live_service(model);
  std::string what = "add virtual service " + service_name(s) + " (scheduler " + s.scheduler + ")";
  TRY(check_service(s, what));
  Builder b(family, IPVS_CMD_NEW_SERVICE, 0);
  put_service_nest(b.nlh(), s, /*full=*/true);
  const std::string sched = s.scheduler;
  return b.finish(std::move(what), [sched](int errnum, const std::string& where) {
    return service_hint(errnum, where, sched);
  });
}

Result<Request> del_service(uint16_t family, const VirtualService& model) {
  const IpvsService s = live_service(model);
  return service_id_request(
      family, IPVS_CMD_DEL_SERVICE, 0, s, "delete virtual service " + service_name(s),
      [](int errnum, const std::string& where) { return service_hint(errnum, where, ""); });
}

Result<Request> new_dest(uint16_t family, const VirtualService& s, const RealServer& d) {
  return dest_request(family, IPVS_CMD_NEW_DEST, live_service(s), live_dest(s, d),
                      "add real server " + dest_name(live_dest(s, d)) + " (" + to_string(d.method) +
                          ", weight " + std::to_string(d.weight) + ") to " + service_name(s));
}

Result<Request> del_dest(uint16_t family, const VirtualService& s, const RealServer& d) {
  return del_dest(family, live_service(s), live_dest(s, d));
}

Request get_services(uint16_t family) {
  return Builder(family, IPVS_CMD_GET_SERVICE, NLM_F_DUMP).finish("list virtual services", {});
}

Result<Request> get_dests(uint16_t family, const VirtualService& model) {
  const IpvsService s = live_service(model);
  return service_id_request(
      family, IPVS_CMD_GET_DEST, NLM_F_DUMP, s, "list real servers of " + service_name(s),
      [](int errnum, const std::string& where) { return service_hint(errnum, where, ""); });
}

Request flush(uint16_t family) {
  return Builder(family, IPVS_CMD_FLUSH, 0).finish("flush IPVS", [](int e, const std::string& w) {
    return service_hint(e, w, "");
  });
}

Result<Request> set_service(uint16_t family, const IpvsService& s) {
  std::string what =
      "edit virtual service " + service_name(s) + " (scheduler " + s.scheduler +
      (s.flags & IP_VS_SVC_F_PERSISTENT ? ", persistent " + std::to_string(s.timeout) + " s" : "") +
      ")";
  TRY(check_service(s, what));
  if (s.scheduler.empty()) return fail(what + ": no scheduler named");
  Builder b(family, IPVS_CMD_SET_SERVICE, 0);
  put_service_nest(b.nlh(), s, /*full=*/true);
  const std::string sched = s.scheduler;
  return b.finish(std::move(what), [sched](int errnum, const std::string& where) {
    if (errnum == ENOENT) return unknown_scheduler_hint(sched, loadable_schedulers());
    return service_hint(errnum, where, sched);
  });
}

Result<Request> set_dest(uint16_t family, const IpvsService& s, const IpvsDest& d) {
  return dest_request(family, IPVS_CMD_SET_DEST, s, d,
                      "set real server " + dest_name(d) + " of " + service_name(s) + " to weight " +
                          std::to_string(d.weight));
}

Result<Request> new_dest(uint16_t family, const IpvsService& s, const IpvsDest& d) {
  return dest_request(family, IPVS_CMD_NEW_DEST, s, d,
                      "add real server " + dest_name(d) + " (weight " + std::to_string(d.weight) +
                          ") to " + service_name(s));
}

Result<Request> del_dest(uint16_t family, const IpvsService& s, const IpvsDest& d) {
  return dest_request(family, IPVS_CMD_DEL_DEST, s, d,
                      "remove real server " + dest_name(d) + " from " + service_name(s));
}

Result<Request> get_dests(uint16_t family, const IpvsService& s) {
  return service_id_request(family, IPVS_CMD_GET_DEST, NLM_F_DUMP, s,
                            "list real servers of " + service_name(s), {});
}

Request get_config(uint16_t family) {
  return Builder(family, IPVS_CMD_GET_CONFIG, 0).finish("read IPVS timeouts", {});
}

Request set_config(uint16_t family, const IpvsTimeouts& t) {
  Builder b(family, IPVS_CMD_SET_CONFIG, 0);
  if (t.tcp) mnl_attr_put_u32(b.nlh(), IPVS_CMD_ATTR_TIMEOUT_TCP, t.tcp);
  if (t.tcp_fin) mnl_attr_put_u32(b.nlh(), IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, t.tcp_fin);
  if (t.udp) mnl_attr_put_u32(b.nlh(), IPVS_CMD_ATTR_TIMEOUT_UDP, t.udp);
  return b.finish("set IPVS timeouts (tcp " + std::to_string(t.tcp) + ", tcpfin " +
                      std::to_string(t.tcp_fin) + ", udp " + std::to_string(t.udp) + ")",
                  [](int e, const std::string& w) { return service_hint(e, w, ""); });
}

// ---- decoders ----------------------------------------------------------------------------

Result<IpvsInfo> parse_info(const nlmsghdr& nlh) {
  if (nlh.nlmsg_len < NLMSG_LENGTH(sizeof(genlmsghdr))) return fail("malformed IPVS info reply");
  AttrTable<IPVS_INFO_ATTR_MAX + 1> t;
  if (mnl_attr_parse(&nlh, sizeof(genlmsghdr), AttrTable<IPVS_INFO_ATTR_MAX + 1>::cb, &t) < 0)
    return fail("malformed attributes in IPVS info reply");
  if (!t[IPVS_INFO_ATTR_VERSION]) return fail("IPVS info reply without a version");
  return IpvsInfo{u32_or(t[IPVS_INFO_ATTR_VERSION]), u32_or(t[IPVS_INFO_ATTR_CONN_TAB_SIZE])};
}

Result<IpvsService> parse_service(const nlmsghdr& nlh) {
  TRY_ASSIGN(const auto t,
             nested_attrs<IPVS_SVC_ATTR_MAX + 1>(nlh, IPVS_CMD_ATTR_SERVICE, "IPVS service reply",
                                                 "malformed IPVS service attributes"));
  IpvsService s;
  s.family = u16_or(t[IPVS_SVC_ATTR_AF]);
  s.fwmark = u32_or(t[IPVS_SVC_ATTR_FWMARK]);
  if (s.fwmark == 0) {
    s.protocol = u16_or(t[IPVS_SVC_ATTR_PROTOCOL]);
    auto a = addr_of(s.family, t[IPVS_SVC_ATTR_ADDR]);
    if (!a) return fail("IPVS service reply without a valid address");
    s.addr = *a;
    s.port = ntohs(u16_or(t[IPVS_SVC_ATTR_PORT]));
  } else {
    s.addr.family = s.family;
  }
  s.scheduler = nul_string(t[IPVS_SVC_ATTR_SCHED_NAME]);
  s.pe_name = nul_string(t[IPVS_SVC_ATTR_PE_NAME]);
  if (const nlattr* f = t[IPVS_SVC_ATTR_FLAGS];
      f && mnl_attr_get_payload_len(f) >= sizeof(ip_vs_flags)) {
    ip_vs_flags flags{};
    std::memcpy(&flags, mnl_attr_get_payload(f), sizeof flags);
    s.flags = flags.flags;
  }
  s.timeout = u32_or(t[IPVS_SVC_ATTR_TIMEOUT]);
  s.netmask = u32_or(t[IPVS_SVC_ATTR_NETMASK]);
  TRY_ASSIGN(s.stats, stats_of(t[IPVS_SVC_ATTR_STATS64], t[IPVS_SVC_ATTR_STATS]));
  return s;
}

Result<IpvsDest> parse_dest(const nlmsghdr& nlh) {
  TRY_ASSIGN(const auto t,
             nested_attrs<IPVS_DEST_ATTR_MAX + 1>(nlh, IPVS_CMD_ATTR_DEST, "IPVS destination reply",
                                                  "malformed IPVS destination attributes"));
  IpvsDest d;
  // Kernels before 3.18 send no ADDR_FAMILY; their destinations share the service's family,
  // which a 4-byte-long address cannot tell us, so IPv4 is the only safe guess for them.
  const int af = u16_or(t[IPVS_DEST_ATTR_ADDR_FAMILY], AF_INET);
  auto a = addr_of(af, t[IPVS_DEST_ATTR_ADDR]);
  if (!a) return fail("IPVS destination reply without a valid address");
  d.addr = *a;
  d.port = ntohs(u16_or(t[IPVS_DEST_ATTR_PORT]));
  d.fwd_method = u32_or(t[IPVS_DEST_ATTR_FWD_METHOD]) & IP_VS_CONN_F_FWD_MASK;
  // fwd_flags read backwards; BYPASS has no labctl name.
  for (FwdMethod m : {FwdMethod::Nat, FwdMethod::Dr, FwdMethod::Tun, FwdMethod::Local})
    if (fwd_flags(m) == d.fwd_method) d.method = m;
  d.weight = static_cast<int>(u32_or(t[IPVS_DEST_ATTR_WEIGHT]));
  d.u_thresh = u32_or(t[IPVS_DEST_ATTR_U_THRESH]);
  d.l_thresh = u32_or(t[IPVS_DEST_ATTR_L_THRESH]);
  d.active_conns = u32_or(t[IPVS_DEST_ATTR_ACTIVE_CONNS]);
  d.inact_conns = u32_or(t[IPVS_DEST_ATTR_INACT_CONNS]);
  d.persist_conns = u32_or(t[IPVS_DEST_ATTR_PERSIST_CONNS]);
  if (const nlattr* tt = t[IPVS_DEST_ATTR_TUN_TYPE]; tt && mnl_attr_validate(tt, MNL_TYPE_U8) == 0)
    d.tun_type = mnl_attr_get_u8(tt);
  d.tun_port = ntohs(u16_or(t[IPVS_DEST_ATTR_TUN_PORT]));
  d.tun_flags = u16_or(t[IPVS_DEST_ATTR_TUN_FLAGS]);
  TRY_ASSIGN(d.stats, stats_of(t[IPVS_DEST_ATTR_STATS64], t[IPVS_DEST_ATTR_STATS]));
  return d;
}

Result<IpvsTimeouts> parse_config(const nlmsghdr& nlh) {
  if (nlh.nlmsg_len < NLMSG_LENGTH(sizeof(genlmsghdr)))
    return fail("malformed IPVS config reply");
  AttrTable<IPVS_CMD_ATTR_MAX + 1> t;
  if (mnl_attr_parse(&nlh, sizeof(genlmsghdr), AttrTable<IPVS_CMD_ATTR_MAX + 1>::cb, &t) < 0)
    return fail("malformed attributes in IPVS config reply");
  if (!t[IPVS_CMD_ATTR_TIMEOUT_TCP] && !t[IPVS_CMD_ATTR_TIMEOUT_UDP])
    return fail("IPVS config reply without timeouts");
  return IpvsTimeouts{u32_or(t[IPVS_CMD_ATTR_TIMEOUT_TCP]), u32_or(t[IPVS_CMD_ATTR_TIMEOUT_TCP_FIN]),
                      u32_or(t[IPVS_CMD_ATTR_TIMEOUT_UDP])};
}

// ---- sync daemons ------------------------------------------------------------------------

const char* role_name(IpvsDaemon::Role role) {
  return role == IpvsDaemon::Role::Master ? "master" : "backup";
}

namespace {
uint32_t daemon_state(IpvsDaemon::Role role) {
  return role == IpvsDaemon::Role::Master ? IP_VS_STATE_MASTER : IP_VS_STATE_BACKUP;
}
}  // namespace

std::string daemon_hint(int errnum, const std::string& where) {
  switch (errnum) {
    case EEXIST:
      return "a sync daemon of that role runs already" + in_where(where) +
             " (ipvsadm -L --daemon shows it; stop it with ipvsadm --stop-daemon)";
    case ESRCH:
      return "no sync daemon of that role runs" + in_where(where);
    case ENODEV:
      return "the multicast interface does not exist" + in_where(where);
    case EADDRNOTAVAIL:
      return "the multicast interface has no IPv4 address: the master sends its sync messages "
             "from it";
    case EINVAL:
      return "the kernel rejected the daemon's attributes (role, interface name, sync id)";
    case EPERM:
    case EACCES:
      return service_hint(errnum, where, "");
    default:
      return "";
  }
}

Result<Request> new_daemon(uint16_t family, const IpvsDaemon& d) {
  std::string what = std::string("start the IPVS sync daemon (") + role_name(d.role) + " on " +
                     (d.interface.empty() ? "?" : d.interface) + ", syncid " +
                     std::to_string(d.sync_id) + ")";
  if (d.interface.empty() || d.interface.size() >= IP_VS_IFNAME_MAXLEN)
    return fail(what + ": the multicast interface name must have 1 to " +
                std::to_string(IP_VS_IFNAME_MAXLEN - 1) + " characters");
  if (d.sync_id > 255) return fail(what + ": the sync id must be 0..255");
  Builder b(family, IPVS_CMD_NEW_DAEMON, 0);
  nlattr* nest = mnl_attr_nest_start(b.nlh(), IPVS_CMD_ATTR_DAEMON);
  mnl_attr_put_u32(b.nlh(), IPVS_DAEMON_ATTR_STATE, daemon_state(d.role));
  mnl_attr_put_strz(b.nlh(), IPVS_DAEMON_ATTR_MCAST_IFN, d.interface.c_str());
  mnl_attr_put_u32(b.nlh(), IPVS_DAEMON_ATTR_SYNC_ID, d.sync_id);
  mnl_attr_nest_end(b.nlh(), nest);
  return b.finish(std::move(what), daemon_hint);
}

Request del_daemon(uint16_t family, IpvsDaemon::Role role) {
  Builder b(family, IPVS_CMD_DEL_DAEMON, 0);
  nlattr* nest = mnl_attr_nest_start(b.nlh(), IPVS_CMD_ATTR_DAEMON);
  mnl_attr_put_u32(b.nlh(), IPVS_DAEMON_ATTR_STATE, daemon_state(role));
  mnl_attr_nest_end(b.nlh(), nest);
  return b.finish(std::string("stop the IPVS ") + role_name(role) + " sync daemon", daemon_hint);
}

Request get_daemons(uint16_t family) {
  return Builder(family, IPVS_CMD_GET_DAEMON, NLM_F_DUMP).finish("list IPVS sync daemons", {});
}

Result<IpvsDaemon> parse_daemon(const nlmsghdr& nlh) {
  TRY_ASSIGN(const auto t, nested_attrs<IPVS_DAEMON_ATTR_MAX + 1>(
                               nlh, IPVS_CMD_ATTR_DAEMON, "IPVS sync daemon reply",
                               "malformed IPVS sync daemon attributes"));
  IpvsDaemon d;
  const uint32_t state = u32_or(t[IPVS_DAEMON_ATTR_STATE]);
  if (state != IP_VS_STATE_MASTER && state != IP_VS_STATE_BACKUP)
    return fail("IPVS sync daemon reply with state " + std::to_string(state) +
                ", neither master nor backup");
  d.role = state == IP_VS_STATE_MASTER ? IpvsDaemon::Role::Master : IpvsDaemon::Role::Backup;
  d.interface = nul_string(t[IPVS_DAEMON_ATTR_MCAST_IFN]);
  d.sync_id = u32_or(t[IPVS_DAEMON_ATTR_SYNC_ID]);
  d.maxlen = u16_or(t[IPVS_DAEMON_ATTR_SYNC_MAXLEN]);
  d.port = u16_or(t[IPVS_DAEMON_ATTR_MCAST_PORT]);
  if (const nlattr* ttl = t[IPVS_DAEMON_ATTR_MCAST_TTL]; ttl && mnl_attr_validate(ttl, MNL_TYPE_U8) == 0)
    d.ttl = mnl_attr_get_u8(ttl);
  if (auto g = addr_of(AF_INET, t[IPVS_DAEMON_ATTR_MCAST_GROUP])) d.group = *g;
  if (auto g6 = addr_of(AF_INET6, t[IPVS_DAEMON_ATTR_MCAST_GROUP6])) d.group = *g6;
  return d;
}

}  // namespace ipvs

std::string IpvsInfo::version_str() const {
  return std::to_string((version >> 16) & 0xff) + "." + std::to_string((version >> 8) & 0xff) +
         "." + std::to_string(version & 0xff);
}

// ---- Ipvs --------------------------------------------------------------------------------

Result<Ipvs> Ipvs::open(std::string where) {
  TRY_ASSIGN(NetlinkSocket s, NetlinkSocket::open(NETLINK_GENERIC, where));
  auto id = resolve_genl_family(s, ipvs::kFamilyName);
  if (!id) {
    if (id.error().errnum == ENOENT) return tl::unexpected(ipvs::no_ipvs_error(where));
    return tl::unexpected(std::move(id).error());
  }
  return Ipvs(std::move(s), *id);
}

namespace {

// The one reply to `r`, decoded by `parse`; `what` names it when none came.
template <class T>
Result<T> one_reply(NetlinkSocket& sock, const Request& r, Result<T> (*parse)(const nlmsghdr&),
                    const std::string& what) {
  std::optional<T> out;
  TRY(sock.transact(r, [&](const nlmsghdr& nlh) -> Status {
    TRY_ASSIGN(out, parse(nlh));
    return {};
  }));
  if (!out) return fail(what + ": the kernel sent no reply");
  return *out;
}

}  // namespace

Result<IpvsInfo> Ipvs::info() {
  return one_reply(sock_, ipvs::get_info(family_), ipvs::parse_info, "read IPVS info");
}

Status Ipvs::add_service(const VirtualService& s) { return send(ipvs::new_service(family_, s)); }

Status Ipvs::del_service(const VirtualService& s) { return send(ipvs::del_service(family_, s)); }

Status Ipvs::add_dest(const VirtualService& s, const RealServer& d) {
  return send(ipvs::new_dest(family_, s, d));
}

Status Ipvs::del_dest(const VirtualService& s, const RealServer& d) {
  return send(ipvs::del_dest(family_, s, d));
}

Result<std::vector<IpvsService>> Ipvs::services() {
  std::vector<IpvsService> out;
  TRY(sock_.dump(ipvs::get_services(family_), [&](const nlmsghdr& nlh) -> Status {
    TRY_ASSIGN(IpvsService s, ipvs::parse_service(nlh));
    out.push_back(std::move(s));
    return {};
  }));
  return out;
}

Result<std::vector<IpvsDest>> Ipvs::dests(const VirtualService& s) {
  return dump_dests(ipvs::get_dests(family_, s));
}

Status Ipvs::send(Result<Request> r) {
  if (!r) return tl::unexpected(std::move(r).error());
  return sock_.transact(*r);
}

Result<std::vector<IpvsDest>> Ipvs::dump_dests(Result<Request> r) {
  if (!r) return tl::unexpected(std::move(r).error());
  std::vector<IpvsDest> out;
  TRY(sock_.dump(*r, [&](const nlmsghdr& nlh) -> Status {
    TRY_ASSIGN(IpvsDest d, ipvs::parse_dest(nlh));
    out.push_back(std::move(d));
    return {};
  }));
  return out;
}

Status Ipvs::flush() { return sock_.transact(ipvs::flush(family_)); }

Status Ipvs::set_service(const IpvsService& s) { return send(ipvs::set_service(family_, s)); }

Status Ipvs::set_dest(const IpvsService& s, const IpvsDest& d) {
  return send(ipvs::set_dest(family_, s, d));
}

Status Ipvs::add_dest(const IpvsService& s, const IpvsDest& d) {
  return send(ipvs::new_dest(family_, s, d));
}

Status Ipvs::del_dest(const IpvsService& s, const IpvsDest& d) {
  return send(ipvs::del_dest(family_, s, d));
}

Result<std::vector<IpvsDest>> Ipvs::dests(const IpvsService& s) {
  return dump_dests(ipvs::get_dests(family_, s));
}

Result<IpvsTimeouts> Ipvs::timeouts() {
  return one_reply(sock_, ipvs::get_config(family_), ipvs::parse_config, "read IPVS timeouts");
}

Status Ipvs::set_timeouts(const IpvsTimeouts& t) { return sock_.transact(ipvs::set_config(family_, t)); }

Status Ipvs::start_daemon(const IpvsDaemon& d) { return send(ipvs::new_daemon(family_, d)); }

Status Ipvs::stop_daemon(IpvsDaemon::Role role) { return sock_.transact(ipvs::del_daemon(family_, role)); }

Result<std::vector<IpvsDaemon>> Ipvs::daemons() {
  std::vector<IpvsDaemon> out;
  TRY(sock_.dump(ipvs::get_daemons(family_), [&](const nlmsghdr& nlh) -> Status {
    TRY_ASSIGN(IpvsDaemon d, ipvs::parse_daemon(nlh));
    out.push_back(std::move(d));
    return {};
  }));
  return out;
}

}  // namespace labctl
